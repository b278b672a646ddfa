"""A standard Hugging Face cache holding tiny replicas of every Hub id the README names.

``build_hub_cache(root)`` writes ``root/models--org--name/refs/main`` and
``root/models--org--name/snapshots/<commit>/...`` for each id, the layout
``huggingface_hub`` itself writes, so with ``HF_HUB_CACHE=root`` and ``HF_HUB_OFFLINE=1``
``snapshot_download("org/name")`` and transformers' ``cached_file`` find them without a
network. Each replica keeps its checkpoint's architecture (``architectures``,
``model_type``), the config fields the engines read, and the same kind of processor,
tokenizer and feature-extractor files; only the sizes are tiny and the weights random.

Verified against transformers (installed 5.24: the classes, the audio-classification
pipeline's softmax/sigmoid rule) and the fields the transformers docs and tests use.
Assumed, where no source could be read offline:
- wav2vec2-base-960h / hubert-large-ls960-ft: the 32-token upper-case vocabulary in
  frequency order (``<pad> <s> </s> <unk> | E T A O N I H S R D L U M W C F G Y P B V K '
  X J Q Z``); base uses group norm and no attention mask, HuBERT large layer norm + mask.
- AST AudioSet: 527 labels, but only ``Speech`` (0) and ``Music`` (137) carry their real
  names; the others are ``audioset_<i>``. No ``problem_type``, so the pipeline (and
  Sonaray) apply softmax; ``max_length`` 1024 and 128 mel bins as in the real extractor.
- superb ks: labels in the SUPERB dataset's order (ten words, ``_silence_``,
  ``_unknown_``); superb-sd: two labels ``LABEL_0``/``LABEL_1``, sigmoid per speaker
  (transformers' diarization test thresholds ``logits > 0``), extractor returns a mask.
- bark-small: ``speaker_embeddings_path.json`` points ``repo_or_path`` at the repo itself
  and lists two ``v2/en_speaker_<n>`` presets (the real repo lists many more).
- whisper-large-v3-turbo: 128 mel bins as the real one, but the replica's tokenizer is
  Whisper base's multilingual one (51865 ids; the real v3 vocabulary adds ``<|yue|>``).
- microsoft/wavlm-base-plus-sv: the x-vector companion used for voice cloning (512-d).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from deployments.models.builders import tiny_audio, tiny_generate, tiny_speech

CTC_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]
AUDIOSET_LABELS = [{0: "Speech", 137: "Music"}.get(i, f"audioset_{i}") for i in range(527)]


def commit_of(repo_id: str) -> str:
    """A fixed 40-hex commit per repo, as the Hub's refs hold."""
    return hashlib.sha1(repo_id.encode()).hexdigest()


def snapshot_dir(root: Path, repo_id: str) -> Path:
    """Create ``models--org--name`` with ``refs/main``; return its (empty) snapshot folder."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = commit_of(repo_id)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir(parents=True)
    return snapshot


def _edit_json(path: Path, **fields) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2))


def _feature_extractor(attention_mask: bool):
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=attention_mask,
    )


def _wav2vec2_like(large: bool, **fields):
    """A tiny wav2vec2/HuBERT config: base = group norm, large = stable layer norm."""
    norm = {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}
    if not large:
        norm = {"feat_extract_norm": "group", "do_stable_layer_norm": False, "conv_bias": False}
    return {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "conv_dim": (16,) * 7,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "mask_time_prob": 0.0,
        **norm,
        **fields,
    }


def _ctc(target: Path, model_class: str, config_class: str, large: bool) -> None:
    import torch
    import transformers
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2Processor

    vocab = target / "vocab.json"
    vocab.write_text(json.dumps({token: i for i, token in enumerate(CTC_VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab), word_delimiter_token="|", do_lower_case=False, pad_token="<pad>"
    )
    Wav2Vec2Processor(_feature_extractor(large), tokenizer).save_pretrained(target)
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(
        **_wav2vec2_like(
            large,
            vocab_size=len(CTC_VOCAB),
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            ctc_loss_reduction="sum",
        )
    )
    getattr(transformers, model_class)(config).eval().save_pretrained(target)


def wav2vec2_base_960h(target: Path) -> None:
    _ctc(target, "Wav2Vec2ForCTC", "Wav2Vec2Config", large=False)


def hubert_large_ft(target: Path) -> None:
    _ctc(target, "HubertForCTC", "HubertConfig", large=True)


def _labelled(labels: list[str]) -> dict:
    return {"id2label": dict(enumerate(labels)), "label2id": {x: i for i, x in enumerate(labels)}}


def _wav2vec2_head(target: Path, model_class: str, labels: list[str], mask: bool) -> None:
    import torch
    import transformers
    from transformers import Wav2Vec2Config

    _feature_extractor(mask).save_pretrained(target)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        **_wav2vec2_like(
            False,
            use_weighted_layer_sum=True,
            classifier_proj_size=16,
            initializer_range=0.2,
            **_labelled(labels),
        )
    )
    getattr(transformers, model_class)(config).eval().save_pretrained(target)


def superb_ks(target: Path) -> None:
    _wav2vec2_head(target, "Wav2Vec2ForSequenceClassification", tiny_audio.KS_LABELS, False)


def superb_sd(target: Path) -> None:
    labels = ["LABEL_0", "LABEL_1"]
    _wav2vec2_head(target, "Wav2Vec2ForAudioFrameClassification", labels, True)


def ast_audioset(target: Path) -> None:
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    ASTFeatureExtractor(
        sampling_rate=16000,
        num_mel_bins=128,
        max_length=1024,
        mean=-4.2677393,
        std=4.5689974,
        do_normalize=True,
    ).save_pretrained(target)
    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
        max_length=1024,
        num_mel_bins=128,
        **_labelled(AUDIOSET_LABELS),
    )
    ASTForAudioClassification(config).eval().save_pretrained(target)


def mms_tts_eng(target: Path) -> None:
    tiny_speech.build_tiny_vits(target)
    _edit_json(target / "tokenizer_config.json", language="eng", is_uroman=False)


def speecht5_tts(target: Path) -> None:
    """The TTS repo alone: no vocoder and no speaker embedding (the real repo has neither)."""
    tiny_speech.build_tiny_speecht5(target)
    shutil.rmtree(target / "vocoder")
    shutil.rmtree(target / "voices")
    (target / "speaker_embedding.npy").unlink()


def speecht5_hifigan(target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tiny_speech.build_tiny_speecht5(Path(scratch))
        for file in (Path(scratch) / "vocoder").iterdir():
            shutil.move(file, target / file.name)


def bark_small(target: Path) -> None:
    tiny_generate.build_tiny_bark(target)
    _edit_json(target / "speaker_embeddings_path.json", repo_or_path="suno/bark-small")


def musicgen_small(target: Path) -> None:
    """The store's tiny MusicGen with its text conditioning made strong enough to matter.

    In a random decoder the text moves the logits by ~1e-3 (the sampling noise is ~1), so
    classifier-free guidance could not change a single token; scaling the cross-attention
    output (x20) and the heads (x5) makes conditional and unconditional logits differ.
    """
    import torch
    from transformers import MusicgenForConditionalGeneration

    tiny_generate.build_tiny_musicgen(target)
    model = MusicgenForConditionalGeneration.from_pretrained(target)
    with torch.no_grad():
        for layer in model.decoder.model.decoder.layers:
            layer.encoder_attn.out_proj.weight.mul_(20)
        for head in model.decoder.lm_heads:
            head.weight.mul_(5)
    model.save_pretrained(target)


def _tiny_whisper(target: Path, num_mel_bins: int) -> None:
    """A random multilingual Whisper with Whisper base's real tokenizer (store-built)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from deployments.models.builders.whisper import base_files, save_processor, whisper_configs
    from deployments.models.builders.whisper_ct2 import WhisperShape

    folder, _ = base_files()
    vocab_size = len((folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1])
    shape = WhisperShape(
        vocab_size=vocab_size,
        num_mel_bins=num_mel_bins,
        d_model=8,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        max_source_positions=1500,
        max_target_positions=448,
    )
    config, generation = whisper_configs(folder, shape, multilingual=True)
    generation.max_length = 16  # random text runs to max_length
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    first_timestamp = generation.no_timestamps_token_id + 1
    with torch.no_grad():  # as in the store's tiny-whisper: random timestamps would loop
        model.model.decoder.embed_tokens.weight[first_timestamp:] = 0.0
    model.generation_config = generation
    model.save_pretrained(target)
    save_processor(folder, target, num_mel_bins)


def whisper_small(target: Path) -> None:
    _tiny_whisper(target, 80)


def whisper_large_v3_turbo(target: Path) -> None:
    _tiny_whisper(target, 128)


REPLICAS: dict[str, Callable[[Path], None]] = {
    "facebook/wav2vec2-base-960h": wav2vec2_base_960h,
    "facebook/hubert-large-ls960-ft": hubert_large_ft,
    "MIT/ast-finetuned-audioset-10-10-0.4593": ast_audioset,
    "superb/wav2vec2-base-superb-ks": superb_ks,
    "anton-l/wav2vec2-base-superb-sd": superb_sd,
    "facebook/mms-tts-eng": mms_tts_eng,
    "microsoft/speecht5_tts": speecht5_tts,
    "microsoft/speecht5_hifigan": speecht5_hifigan,
    "microsoft/wavlm-base-plus-sv": tiny_speech.build_tiny_xvector,
    "suno/bark-small": bark_small,
    "facebook/musicgen-small": musicgen_small,
    "openai/whisper-small": whisper_small,
    "openai/whisper-large-v3-turbo": whisper_large_v3_turbo,
}


def build_hub_cache(root: Path) -> Path:
    """Lay out every replica under ``root`` (an ``HF_HUB_CACHE``); return ``root``."""
    for repo_id, build in REPLICAS.items():
        build(snapshot_dir(root, repo_id))
    return root
