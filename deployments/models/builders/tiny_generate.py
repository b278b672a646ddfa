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


# Bark's token layout, shrunk: semantic ids, then eos/pad, then offset text ids and markers.
BARK_SEMANTIC_VOCAB = 32
BARK_CODEBOOK_SIZE = 16
BARK_FINE_CODEBOOKS = 4
BARK_VOICES = ("v2/en_speaker_0", "v2/en_speaker_1")


def _bark_generation_config(text_vocab: int):
    """Bark's nested generation config, with every offset and length fitted to the tiny vocabs."""
    from transformers import GenerationConfig

    eos = BARK_SEMANTIC_VOCAB
    text_offset = eos + 16
    semantic = {
        "eos_token_id": eos,
        "semantic_pad_token": eos,
        "semantic_vocab_size": BARK_SEMANTIC_VOCAB,
        "text_encoding_offset": text_offset,
        "text_pad_token": text_offset + text_vocab,
        "semantic_infer_token": text_offset + text_vocab + 1,
        "max_input_semantic_length": 64,
        "max_new_tokens": 48,
        "semantic_rate_hz": 49.9,
        "renormalize_logits": True,
        "do_sample": True,
        "temperature": 0.7,
    }
    coarse_pad = BARK_SEMANTIC_VOCAB + 2 * BARK_CODEBOOK_SIZE
    coarse = {
        "coarse_semantic_pad_token": coarse_pad,
        "coarse_infer_token": coarse_pad + 2,
        "coarse_rate_hz": 75,
        "n_coarse_codebooks": 2,
        "max_coarse_input_length": 32,
        "max_coarse_history": 60,
        "sliding_window_len": 20,
        "renormalize_logits": True,
        "do_sample": True,
        "temperature": 0.7,
    }
    fine = {
        "temperature": 0.5,
        "max_fine_history_length": 32,
        "max_fine_input_length": 64,
        "n_fine_codebooks": BARK_FINE_CODEBOOKS,
    }
    # BarkGenerationConfig.save_pretrained fails in transformers 5: save the plain nested dicts.
    config = GenerationConfig(
        semantic_config=semantic,
        coarse_acoustics_config=coarse,
        fine_acoustics_config=fine,
        sample_rate=24000,
        codebook_size=BARK_CODEBOOK_SIZE,
    )
    return config, semantic["semantic_infer_token"] + 1, coarse_pad + 3


def build_tiny_bark(target: Path) -> None:
    """BarkModel (semantic, coarse, fine, 24 kHz EnCodec), a char BERT tokenizer, voice presets."""
    import json

    import numpy as np
    import torch
    from transformers import (
        BarkCoarseConfig,
        BarkConfig,
        BarkFineConfig,
        BarkModel,
        BarkProcessor,
        BarkSemanticConfig,
        BertTokenizer,
        EncodecConfig,
    )

    from deployments.models.builders.tiny_speech import LETTERS, PUNCTUATION

    torch.manual_seed(0)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + LETTERS + [p for p in PUNCTUATION if p != " "]
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(target / "vocab.txt"), tokenize_chinese_chars=False)
    generation_config, semantic_vocab, coarse_vocab = _bark_generation_config(len(vocab))
    # At the default initializer_range of 0.02 the logits are near uniform: a voice preset
    # (the history prompt) would not change which tokens a seed samples.
    small = {
        "num_layers": 1,
        "num_heads": 2,
        "hidden_size": 16,
        "block_size": 128,
        "initializer_range": 0.5,
    }
    codec = EncodecConfig(
        sampling_rate=24000,
        audio_channels=1,
        # 4 codebooks of log2(16) = 4 bits at 75 frames/s: 1.2 kbps
        target_bandwidths=[1.25],
        upsampling_ratios=[8, 5, 4, 2],
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        num_lstm_layers=1,
        codebook_size=BARK_CODEBOOK_SIZE,
        codebook_dim=16,
    )
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(
            input_vocab_size=semantic_vocab, output_vocab_size=semantic_vocab, **small
        ).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(
            input_vocab_size=coarse_vocab, output_vocab_size=coarse_vocab, **small
        ).to_dict(),
        fine_acoustics_config=BarkFineConfig(
            input_vocab_size=BARK_CODEBOOK_SIZE + 1,
            output_vocab_size=BARK_CODEBOOK_SIZE,
            n_codes_total=BARK_FINE_CODEBOOKS,
            n_codes_given=2,
            **small,
        ).to_dict(),
        codec_config=codec.to_dict(),
    )
    model = BarkModel(config).eval()
    randomize_codebooks(model.codec_model)
    model.generation_config = generation_config
    model.save_pretrained(target)
    BarkProcessor(tokenizer).save_pretrained(target)
    rng = np.random.default_rng(0)
    presets = {"repo_or_path": "."}
    (target / "speaker_embeddings" / "v2").mkdir(parents=True)
    for voice in BARK_VOICES:
        arrays = {
            "semantic_prompt": rng.integers(0, BARK_SEMANTIC_VOCAB, 30),
            "coarse_prompt": rng.integers(0, BARK_CODEBOOK_SIZE, (2, 45)),
            "fine_prompt": rng.integers(0, BARK_CODEBOOK_SIZE, (BARK_FINE_CODEBOOKS, 45)),
        }
        presets[voice] = {}
        for key, array in arrays.items():
            file = f"speaker_embeddings/{voice}_{key}.npy"
            np.save(target / file, array.astype(np.int64))
            presets[voice][key] = file
    (target / "speaker_embeddings_path.json").write_text(json.dumps(presets, indent=1))
