"""Tiny random speech models for tests: an x-vector speaker encoder, VITS and SpeechT5.

Each builder is deterministic (fixed seed), runs offline in about a second and writes a
directory that loads through the same classes a real checkpoint does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LETTERS = list("abcdefghijklmnopqrstuvwxyz")
PUNCTUATION = list(" ',.!?-")
# Sentences the sentencepiece models are trained on; char-level, so any letter text works.
SENTENCES = [
    "hello world this is a test of speech synthesis",
    "the quick brown fox jumps over the lazy dog",
    "sonaray serves audio models on a cluster",
    "one two three four five six seven eight nine ten",
]


def build_tiny_xvector(target: Path) -> None:
    """WavLMForXVector with 512-d embeddings (the size SpeechT5 speaker embeddings have)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(0)
    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        num_buckets=32,
        max_bucket_distance=200,
        tdnn_dim=(32, 32, 64),
        tdnn_kernel=(5, 3, 1),
        tdnn_dilation=(1, 2, 1),
        xvector_output_dim=512,
    )
    WavLMForXVector(config).eval().save_pretrained(target)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, return_attention_mask=True
    ).save_pretrained(target)


def build_tiny_vits(target: Path) -> None:
    """VitsModel at 16 kHz with a character VitsTokenizer (no phonemizer needed)."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    torch.manual_seed(0)
    vocab = {"<pad>": 0, "<unk>": 1}
    for ch in LETTERS + PUNCTUATION:
        vocab[ch] = len(vocab)
    (target / "vocab.json").write_text(json.dumps(vocab, indent=1))
    tokenizer = VitsTokenizer(
        str(target / "vocab.json"), add_blank=True, normalize=True, phonemize=False
    )
    config = VitsConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=33,
        upsample_initial_channel=32,
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        duration_predictor_filter_channels=16,
        depth_separable_num_layers=2,
        sampling_rate=16000,
    )
    VitsModel(config).eval().save_pretrained(target)
    tokenizer.save_pretrained(target)


def train_char_sentencepiece(model_file: Path, **special_ids: int) -> Path:
    """Train a character-level sentencepiece model offline; ``special_ids`` sets pad/unk/bos/eos."""
    import sentencepiece as spm

    corpus = model_file.with_suffix(".corpus.txt")
    lines = list(SENTENCES)
    alphabet = "".join(LETTERS)
    lines.append(alphabet.upper() + alphabet + "".join(PUNCTUATION) + "0123456789")
    corpus.write_text("\n".join(lines) + "\n")
    prefix = model_file.with_suffix("")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        model_type="char",
        vocab_size=200,
        hard_vocab_limit=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
        **special_ids,
    )
    corpus.unlink()
    prefix.with_suffix(".vocab").unlink()
    prefix.with_suffix(".model").rename(model_file)
    return model_file


def build_tiny_speecht5(target: Path) -> None:
    """SpeechT5ForTextToSpeech + processor, ``vocoder/`` HiFi-GAN, speaker embeddings.

    ``speaker_embedding.npy`` is the default voice; ``voices/<name>.npy`` are named ones.
    """
    import torch
    from transformers import (
        SpeechT5Config,
        SpeechT5FeatureExtractor,
        SpeechT5ForTextToSpeech,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        SpeechT5Processor,
        SpeechT5Tokenizer,
    )

    torch.manual_seed(0)
    spm_file = train_char_sentencepiece(
        target / "spm_char.model", bos_id=0, pad_id=1, eos_id=2, unk_id=3
    )
    tokenizer = SpeechT5Tokenizer(str(spm_file))
    spm_file.unlink()
    processor = SpeechT5Processor(feature_extractor=SpeechT5FeatureExtractor(), tokenizer=tokenizer)
    config = SpeechT5Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        speech_decoder_prenet_units=32,
        speech_decoder_postnet_units=32,
        speech_decoder_postnet_layers=2,
        speech_decoder_postnet_kernel=3,
        speaker_embedding_dim=512,
        num_mel_bins=80,
        reduction_factor=2,
        max_text_positions=600,
        max_speech_positions=1876,
    )
    SpeechT5ForTextToSpeech(config).eval().save_pretrained(target)
    processor.save_pretrained(target)
    vocoder_config = SpeechT5HifiGanConfig(
        model_in_dim=80,
        sampling_rate=16000,
        upsample_initial_channel=32,
        upsample_rates=[4, 4, 4, 4],
        upsample_kernel_sizes=[8, 8, 8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        # At the default 0.01 a random vocoder outputs ~1e-8 (voices look equal); 0.5 clips.
        initializer_range=0.2,
    )
    SpeechT5HifiGan(vocoder_config).eval().save_pretrained(target / "vocoder")
    rng = np.random.default_rng(0)
    (target / "voices").mkdir()
    for file in ("speaker_embedding.npy", "voices/alice.npy", "voices/bob.npy"):
        embedding = rng.standard_normal(512).astype(np.float32)
        np.save(target / file, embedding / np.linalg.norm(embedding))
