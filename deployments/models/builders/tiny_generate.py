"""Tiny random generative audio models for tests: MusicGen (and Bark, see build_tiny_bark).

Deterministic (fixed seed), offline, about a second each; the directories load through
the same classes as the real checkpoints (``MusicgenForConditionalGeneration`` +
``AutoProcessor``).
"""

from __future__ import annotations

from pathlib import Path

from deployments.models.builders.tiny_speech import train_char_sentencepiece

MUSICGEN_CODEBOOK_SIZE = 64


def _encodec_32khz(codebook_size: int):
    """A small EnCodec with the real 32 kHz geometry: hop 640 samples (50 frames/s), 4 codebooks."""
    from transformers import EncodecConfig

    return EncodecConfig(
        sampling_rate=32000,
        audio_channels=1,
        # 4 codebooks of log2(64) = 6 bits at 50 frames/s: 1.2 kbps (2.2 with the real 2048 codes)
        target_bandwidths=[1.25],
        upsampling_ratios=[8, 5, 4, 4],
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        num_lstm_layers=1,
        codebook_size=codebook_size,
        codebook_dim=16,
        norm_type="weight_norm",
        normalize=False,
        use_causal_conv=False,
    )


def randomize_codebooks(codec) -> None:
    """Give a fresh EnCodec distinct code vectors; they start as zeros, so all codes sound alike."""
    import torch

    with torch.no_grad():
        for layer in codec.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)


def build_tiny_musicgen(target: Path) -> None:
    """MusicgenForConditionalGeneration, a char T5 tokenizer and MusicGen's generation config."""
    import torch
    from transformers import (
        EncodecFeatureExtractor,
        GenerationConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5Tokenizer,
    )

    torch.manual_seed(0)
    spm_dir = target / "spm"
    spm_dir.mkdir()
    train_char_sentencepiece(spm_dir / "spiece.model", pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    # T5Tokenizer(vocab_file=...) ignores the file in transformers 5; from_pretrained reads it.
    tokenizer = T5Tokenizer.from_pretrained(str(spm_dir), extra_ids=0)
    text_config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
    )
    pad = MUSICGEN_CODEBOOK_SIZE  # MusicGen's decoder start/pad token is one past the codebook
    decoder_config = MusicgenDecoderConfig(
        vocab_size=MUSICGEN_CODEBOOK_SIZE,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        num_codebooks=4,
        max_position_embeddings=2048,
        pad_token_id=pad,
        bos_token_id=pad,
        decoder_start_token_id=pad,
    )
    config = MusicgenConfig(
        text_encoder=text_config.to_dict(),
        audio_encoder=_encodec_32khz(MUSICGEN_CODEBOOK_SIZE).to_dict(),
        decoder=decoder_config.to_dict(),
        decoder_start_token_id=pad,
        pad_token_id=pad,
    )
    model = MusicgenForConditionalGeneration(config).eval()
    randomize_codebooks(model.audio_encoder)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad,
        bos_token_id=pad,
        pad_token_id=pad,
        do_sample=True,
        guidance_scale=3.0,
        top_k=250,
        max_length=1500,
    )
    model.save_pretrained(target)
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0)
    MusicgenProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(target)
    for path in spm_dir.iterdir():
        path.unlink()
    spm_dir.rmdir()
