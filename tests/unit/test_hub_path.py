"""The Hub path on CPU, without a cluster: the resolver, and the engines on Hub replicas.

A few replicas from tests/hub_cache.py are laid out in a Hugging Face cache; with
``SONARAY_HUB=1`` and ``HF_HUB_OFFLINE=1`` every reference resolves from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hub_cache import REPLICAS, commit_of, snapshot_dir
from sonaray_client.types import GenerationOptions, SpeechOptions, SpeechSegment, VadOptions

from deployments.app import build_app
from deployments.errors import ConfigError, InvalidRequest, ModelNotFound
from deployments.graph.diarize import speaker_turns
from deployments.models.store import check_ref, resolve
from deployments.protocol import AudioItem, TextItem
from deployments.router.voices import openai_voice
from deployments.serving.voice_store import VoiceStore
from deployments.tasks.classify import AudioClassificationEngine
from deployments.tasks.frames import FrameClassificationEngine
from deployments.tasks.generate import MusicgenEngine
from deployments.tasks.piper_tts import PiperEngine
from deployments.tasks.tts import load_tts_engine
from deployments.tasks.tts_auto import TextToWaveformEngine

USED = [
    "anton-l/wav2vec2-base-superb-sd",
    "MIT/ast-finetuned-audioset-10-10-0.4593",
    "microsoft/speecht5_tts",
    "microsoft/speecht5_hifigan",
    "facebook/musicgen-small",
]


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hf_cache")
    for repo_id in USED:
        REPLICAS[repo_id](snapshot_dir(root, repo_id))
    return root


@pytest.fixture
def hub(hub_cache, monkeypatch) -> Path:
    monkeypatch.setenv("SONARAY_HUB", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    return hub_cache


def speech(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * 16000)).astype(np.float32)


# --- resolver ------------------------------------------------------------------------


def test_a_hub_id_resolves_to_its_cached_snapshot_by_branch_or_pinned_commit(hub):
    repo = "anton-l/wav2vec2-base-superb-sd"
    snapshot = hub / "models--anton-l--wav2vec2-base-superb-sd" / "snapshots" / commit_of(repo)
    assert resolve(repo).path == str(snapshot)
    assert resolve(f"{repo}@{commit_of(repo)}").path == str(snapshot)
    with pytest.raises(ModelNotFound, match="v2"):
        resolve(f"{repo}@v2")  # a revision the cache does not hold
    with pytest.raises(ModelNotFound, match="nobody/nothing"):
        resolve("nobody/nothing")


def test_hub_ids_are_refused_unless_sonaray_hub_is_set(hub, monkeypatch):
    monkeypatch.delenv("SONARAY_HUB")
    with pytest.raises(ModelNotFound, match="SONARAY_HUB=1"):
        resolve("anton-l/wav2vec2-base-superb-sd")
    with pytest.raises(ConfigError, match="SONARAY_HUB=1"):
        check_ref("anton-l/wav2vec2-base-superb-sd")


def test_a_model_no_tts_engine_serves_is_refused_at_build_time(hub):
    args = {"models": [{"name": "sd", "task": "tts", "source": "anton-l/wav2vec2-base-superb-sd"}]}
    with pytest.raises(ConfigError, match="'wav2vec2' model, which is not text to speech"):
        build_app(args)


# --- engines on replicas -------------------------------------------------------------


def test_a_sigmoid_speaker_head_segments_each_speaker_with_overlaps(hub, monkeypatch):
    engine = FrameClassificationEngine(resolve("anton-l/wav2vec2-base-superb-sd").path, name="sd")
    assert engine.activation == "sigmoid" and engine.speaker_labels == ["LABEL_0", "LABEL_1"]
    frames = 100  # 2 s of 20 ms frames: LABEL_0 speaks 0.0-1.2 s, LABEL_1 0.8-2.0 s
    logits = np.full((frames, 2), -6.0, np.float32)
    logits[:60, 0] = logits[40:, 1] = 6.0
    monkeypatch.setattr(engine, "frame_logits", lambda clips, chunker: [logits])
    options = VadOptions(speech_pad_s=0.0)
    (result,) = engine.forward([AudioItem(speech(2.0), 16000, options)])
    spans = [(s.speaker, s.start, s.end) for s in result.segments]
    assert spans == [("LABEL_0", 0.0, 1.2), ("LABEL_1", 0.8, 2.0)]


def test_ast_scores_equal_the_transformers_pipeline(hub):
    from transformers import pipeline

    path = resolve("MIT/ast-finetuned-audioset-10-10-0.4593").path
    engine = AudioClassificationEngine(path, name="ast")
    clip = speech(3.0)
    ours = engine.forward([AudioItem(clip, 16000, None)])[0].labels
    classifier = pipeline("audio-classification", model=path)
    theirs = classifier({"raw": clip, "sampling_rate": 16000}, top_k=len(ours))
    assert [x.label for x in ours] == [x["label"] for x in theirs]
    assert [x.score for x in ours] == pytest.approx([x["score"] for x in theirs], abs=1e-5)


def test_speecht5_from_the_hub_needs_its_vocoder_and_defaults_to_the_zero_voice(hub, tmp_path):
    path = resolve("microsoft/speecht5_tts").path
    with pytest.raises(ConfigError, match="microsoft/speecht5_hifigan"):
        load_tts_engine(path, name="t5")
    engine = load_tts_engine(
        path, name="t5", vocoder="microsoft/speecht5_hifigan", minlenratio=2.0, maxlenratio=3.0
    )
    assert engine.voices == ["default"]
    assert not engine.speakers["default"].any()
    (wave,) = engine.forward([TextItem(SpeechOptions(input="hello there", seed=1))])
    assert wave.sampling_rate == 16000 and wave.audio.size > 0
    # A speaker-embeddings companion (any reference: here a local directory) names voices.
    (tmp_path / "voices").mkdir()
    np.save(tmp_path / "speaker_embedding.npy", np.ones(512, np.float32))
    np.save(tmp_path / "voices" / "ann.npy", np.ones(512, np.float32))
    named = load_tts_engine(
        path, name="t5", vocoder="microsoft/speecht5_hifigan", speaker_embeddings=str(tmp_path)
    )
    assert named.voices == ["ann", "default"] and named.speakers["default"].all()


def test_musicgen_guidance_scale_changes_the_output(hub):
    engine = MusicgenEngine(resolve("facebook/musicgen-small").path, name="musicgen")

    def play(guidance: float) -> np.ndarray:
        options = GenerationOptions(prompt="calm piano", duration_s=0.3, seed=3)
        options = options.model_copy(update={"guidance_scale": guidance})
        return engine.forward([TextItem(options)])[0].audio

    assert np.array_equal(play(3.0), play(3.0))
    assert not np.array_equal(play(3.0), play(1.0))


def test_other_text_to_waveform_types_load_through_the_auto_class(model_path):
    engine = load_tts_engine(model_path("tiny-musicgen"), name="mg-as-tts", max_new_tokens=8)
    assert isinstance(engine, TextToWaveformEngine) and engine.sampling_rate == 32000
    (wave,) = engine.forward([TextItem(SpeechOptions(input="hello there. and more"))])
    assert wave.audio.dtype == np.float32 and wave.extras["sentences"] == 2
    with pytest.raises(InvalidRequest, match="speed"):
        engine.forward([TextItem(SpeechOptions(input="hi", speed=2.0))])


# --- seeds, voices, turns ------------------------------------------------------------


def test_piper_refuses_a_seed_its_noise_would_ignore(model_path):
    noisy = PiperEngine(model_path("piper-joe-medium"), name="piper")
    with pytest.raises(InvalidRequest, match="seed") as caught:
        noisy.forward([TextItem(SpeechOptions(input="hello", seed=1))])
    assert caught.value.param == "seed"
    quiet = PiperEngine(model_path("piper-joe-medium"), name="p", noise_scale=0, noise_w_scale=0)
    first, again = (quiet.forward([TextItem(SpeechOptions(input="hello", seed=s))]) for s in (1, 2))
    assert np.array_equal(first[0].audio, again[0].audio)


def test_openai_voices_map_onto_distinct_model_voices_default_first():
    voices = ["alice", "bob", "default"]
    mapped = [openai_voice(name, voices) for name in ("alloy", "ash", "ballad", "coral")]
    assert mapped == ["default", "alice", "bob", "default"]
    assert openai_voice("nova", []) is None


def test_speaker_segments_become_turns_named_in_order_of_appearance():
    def seg(speaker: str, start: float, end: float) -> SpeechSegment:
        return SpeechSegment(start=start, end=end, speaker=speaker)

    segments = [
        seg("s2", 0.0, 1.0),
        seg("s2", 1.2, 2.0),  # a short pause: the same turn
        seg("s1", 1.8, 3.0),  # overlaps s2's turn: a turn of its own
        seg("s2", 3.5, 4.0),  # s1 spoke in between: a new turn
        seg("s1", 4.0, 75.0),  # longer than the ASR window: cut
    ]
    turns = [(t.speaker, t.start, t.end) for t in speaker_turns(segments, max_turn_s=30.0)]
    assert turns == [
        ("A", 0.0, 2.0),
        ("B", 1.8, 3.0),
        ("A", 3.5, 4.0),
        ("B", 4.0, 34.0),
        ("B", 34.0, 64.0),
        ("B", 64.0, 75.0),
    ]


def test_saved_voices_survive_a_store_restart_on_disk(tmp_path):
    store = VoiceStore(str(tmp_path), max_voices=2)
    card = store.save("joe", "consent_1", speech(1.0))
    assert card["object"] == "audio.voice" and "consent" not in card
    again = VoiceStore(str(tmp_path), max_voices=2)
    assert again.cards() == [card]
    assert np.array_equal(again.clip(card["id"]), store.clip(card["id"]))
    assert again.save("ann", "c", speech(1.0)) is not None
    assert again.save("full", "c", speech(1.0)) is None
    assert again.delete(card["id"]) and not again.delete(card["id"])
    assert len(VoiceStore(str(tmp_path)).cards()) == 1
