"""Tiny random wav2vec2 and AST models for the ctc, frames and classify tasks.

Each builds offline in about a second, is under 2 MB, and loads back through its Auto
class. Weights are random (fixed seed), so tests on them assert shapes, batching and
errors, never content.
"""

from __future__ import annotations

import json
from pathlib import Path

SEED = 0
SAMPLING_RATE = 16000
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
KS_LABELS = [*KEYWORDS, "_silence_", "_unknown_"]
SOUND_EVENTS = ["speech", "music", "dog", "car_horn", "siren", "applause"]
VAD_LABELS = ["non_speech", "speech"]
SPEAKER_LABELS = ["non_speech", "speaker_0", "speaker_1", "speaker_2"]
# Same special tokens and order as facebook/wav2vec2-base-960h: <pad> is the CTC blank.
# Wider random weights than the default 0.02 spread speech probabilities over 0.1-0.8 from
# frame to frame (not a flat 0.45-0.55), so VAD hysteresis and segment merging get exercised.
_FRAME_INIT = 0.2
CTC_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "'"]


def _wav2vec2_config(labels: list[str] | None = None, **overrides):
    """A 2-layer wav2vec2 with the real conv stack (320 samples per frame, 20 ms)."""
    from transformers import Wav2Vec2Config

    label_kwargs = {}
    if labels is not None:
        label_kwargs = {
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    # Layer norm in the conv stack (not group norm) and an attention mask make a padded
    # batch give the same logits as one item at a time, as in wav2vec2-large-lv60.
    return Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        classifier_proj_size=16,
        mask_time_prob=0.0,
        **label_kwargs,
        **overrides,
    )


def _wav2vec2_feature_extractor():
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLING_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )


def _save(model, target: Path) -> None:
    model.eval()
    model.save_pretrained(target)


def build_tiny_ctc(target: Path) -> None:
    """Wav2Vec2ForCTC over an upper-case character vocabulary, with its processor."""
    import torch
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC, Wav2Vec2Processor

    vocab_file = target / "vocab.json"
    vocab_file.write_text(json.dumps({token: i for i, token in enumerate(CTC_VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_file),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        word_delimiter_token="|",
    )
    Wav2Vec2Processor(
        feature_extractor=_wav2vec2_feature_extractor(), tokenizer=tokenizer
    ).save_pretrained(target)
    torch.manual_seed(SEED)
    config = _wav2vec2_config(
        vocab_size=len(CTC_VOCAB), pad_token_id=0, bos_token_id=1, eos_token_id=2
    )
    _save(Wav2Vec2ForCTC(config), target)


def _build_wav2vec2_head(
    target: Path, model_class: str, labels: list[str], initializer_range: float = 0.02
) -> None:
    import torch
    import transformers

    _wav2vec2_feature_extractor().save_pretrained(target)
    torch.manual_seed(SEED)
    config = _wav2vec2_config(labels, initializer_range=initializer_range)
    _save(getattr(transformers, model_class)(config), target)


def build_tiny_vad(target: Path) -> None:
    """Wav2Vec2ForAudioFrameClassification with labels non_speech/speech."""
    _build_wav2vec2_head(target, "Wav2Vec2ForAudioFrameClassification", VAD_LABELS, _FRAME_INIT)


def build_tiny_speakers(target: Path) -> None:
    """Frame classifier with non_speech + three speakers (a diarization head's shape)."""
    _build_wav2vec2_head(target, "Wav2Vec2ForAudioFrameClassification", SPEAKER_LABELS, _FRAME_INIT)


def build_tiny_classifier(target: Path) -> None:
    """Wav2Vec2ForSequenceClassification with Speech Commands keyword-spotting labels."""
    _build_wav2vec2_head(target, "Wav2Vec2ForSequenceClassification", KS_LABELS)


def build_tiny_ast(target: Path) -> None:
    """Audio Spectrogram Transformer over 1.01 s windows (100 fbank frames) of sound events."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    max_length, mel_bins = 100, 32
    # The extractor pads or cuts every clip to max_length frames; the model's patch grid
    # is sized from the same two numbers, so they must agree.
    ASTFeatureExtractor(
        sampling_rate=SAMPLING_RATE, num_mel_bins=mel_bins, max_length=max_length
    ).save_pretrained(target)
    torch.manual_seed(SEED)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
        max_length=max_length,
        num_mel_bins=mel_bins,
        id2label=dict(enumerate(SOUND_EVENTS)),
        label2id={label: i for i, label in enumerate(SOUND_EVENTS)},
    )
    _save(ASTForAudioClassification(config), target)
