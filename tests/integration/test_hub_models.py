"""Every README Hub id, served offline from a Hugging Face cache of tiny replicas.

tests/hub_cluster.py runs the cluster in its own process (its own Ray); the replicas'
weights are random, so these tests assert what the Hub path must get right (it loads,
serves on every route, rates, label sets, vocabularies, voices, shapes), never content.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from api_fixtures import encode
from hub_cache import AUDIOSET_LABELS, CTC_VOCAB
from hub_cluster import HUB_MODELS
from sonaray_client import Sonaray
from sonaray_client.cli import app
from speech import SENTENCES, synthesize
from typer.testing import CliRunner

from deployments.models.builders.tiny_audio import KS_LABELS

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.serve

SPEECHT5 = "microsoft/speecht5_tts"
BARK = "suno/bark-small"


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> str:
    """Base URL of the Hub-ids cluster, up for this module's tests."""
    cache = tmp_path_factory.mktemp("hf_hub_cache")
    port = int(os.environ.get("SONARAY_TEST_PORT", "8123")) + 1000
    log = (cache.parent / "hub_cluster.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "hub_cluster.py"), str(cache), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=REPO,
    )
    url = None
    for line in proc.stdout:
        if line.startswith("READY "):
            url = line.split()[1]
            break
    try:
        assert url, f"the Hub cluster did not start; see {log.name}"
        yield url
    finally:
        proc.stdin.close()  # the script shuts its Serve and Ray down
        proc.wait(timeout=180)
        log.close()


@pytest.fixture
def http(hub):
    with httpx.Client(base_url=hub, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return encode(synthesize(SENTENCES[0]), 16000)


def post_audio(http, task: str, model: str, wav: bytes, **options):
    data = {"model": model, "options": json.dumps(options)}
    response = http.post(f"/v1/{task}", files={"file": ("a.wav", wav)}, data=data)
    assert response.status_code == 200, (model, response.text)
    return response.json()


def audio_of(response) -> tuple[np.ndarray, int]:
    assert response.status_code == 200, response.text
    return sf.read(io.BytesIO(response.content), dtype="float32")


def test_every_hub_id_is_served_with_its_rate_voices_and_speakers(http):
    cards = {card["id"]: card for card in http.get("/v1/models").json()["data"]}
    assert set(cards) == {m["name"] for m in HUB_MODELS}
    rates = {name: card["sampling_rate"] for name, card in cards.items()}
    assert rates == {
        **{name: 16000 for name in cards},
        BARK: 24000,
        "facebook/musicgen-small": 32000,
    }
    assert cards[BARK]["voices"] == ["v2/en_speaker_0", "v2/en_speaker_1"]
    assert cards[SPEECHT5]["voices"] == ["default"]
    assert cards["anton-l/wav2vec2-base-superb-sd"]["speakers"] == ["LABEL_0", "LABEL_1"]


@pytest.mark.parametrize("model", ["facebook/wav2vec2-base-960h", "facebook/hubert-large-ls960-ft"])
def test_ctc_models_spell_in_their_upper_case_vocabulary(http, speech_wav, model):
    result = post_audio(http, "ctc", model, speech_wav, timestamps="word")
    letters = set(CTC_VOCAB[5:]) | {" "}  # "|" is the word delimiter: it decodes to a space
    assert result["text"] and set(result["text"]) <= letters
    assert [w["word"] for w in result["words"]] == result["text"].split()


@pytest.mark.parametrize("model", ["openai/whisper-small", "openai/whisper-large-v3-turbo"])
def test_whisper_models_transcribe_through_the_openai_route(hub, speech_wav, model):
    # large-v3-turbo takes 128 mel bins: it answers only if the engine fed it 128.
    client = openai.OpenAI(base_url=f"{hub}/v1", api_key="x", max_retries=0, timeout=300)
    result = client.audio.transcriptions.create(
        model=model, file=("a.wav", speech_wav), response_format="verbose_json"
    )
    assert result.duration == pytest.approx(len(synthesize(SENTENCES[0])) / 16000, abs=0.01)
    assert isinstance(result.text, str) and result.segments is not None


def test_classifiers_answer_with_their_label_sets_as_softmax_scores(http, speech_wav):
    ast = post_audio(
        http, "classify", "MIT/ast-finetuned-audioset-10-10-0.4593", speech_wav, top_k=100
    )
    every = post_audio(http, "classify", "superb/wav2vec2-base-superb-ks", speech_wav, top_k=12)
    assert {x["label"] for x in ast["labels"]} <= set(AUDIOSET_LABELS) and len(ast["labels"]) == 100
    assert {x["label"] for x in every["labels"]} == set(KS_LABELS)
    # Neither config sets problem_type: the transformers pipeline (and Sonaray) use softmax.
    assert sum(x["score"] for x in every["labels"]) == pytest.approx(1.0, abs=1e-4)


def test_speaker_head_gives_per_speaker_segments(http, speech_wav):
    result = post_audio(http, "frames", "anton-l/wav2vec2-base-superb-sd", speech_wav)
    assert result["segments"]
    assert {s["speaker"] for s in result["segments"]} <= {"LABEL_0", "LABEL_1"}
    starts = [s["start"] for s in result["segments"]]
    assert starts == sorted(starts)
    assert all(0 <= s["start"] < s["end"] <= result["duration"] for s in result["segments"])


def test_tts_models_speak_at_their_rates_and_openai_voices_map_onto_presets(http):
    for model, rate in (("facebook/mms-tts-eng", 16000), (SPEECHT5, 16000), (BARK, 24000)):
        audio, got = audio_of(http.post("/v1/tts", json={"input": "hello there", "model": model}))
        assert got == rate and audio.size > 0, model

    def bark(voice: str) -> np.ndarray:
        body = {"input": "hello there", "model": BARK, "voice": voice, "seed": 4}
        return audio_of(http.post("/v1/tts", json=body))[0]

    alloy, ash = bark("alloy"), bark("ash")
    assert np.array_equal(alloy, bark("v2/en_speaker_0"))
    assert np.array_equal(ash, bark("v2/en_speaker_1"))
    assert not np.array_equal(alloy, ash)


def test_musicgen_guidance_scale_changes_the_output(http):
    def play(guidance: float) -> np.ndarray:
        body = {"prompt": "calm piano", "duration_s": 0.3, "seed": 3, "guidance_scale": guidance}
        body["model"] = "facebook/musicgen-small"
        audio, rate = audio_of(http.post("/v1/generate", json=body))
        assert rate == 32000
        return audio

    assert np.array_equal(play(3.0), play(3.0))
    assert not np.array_equal(play(3.0), play(1.0))


def two_voices() -> np.ndarray:
    """A Piper sentence, a pause, then an espeak-ng (female variant) sentence, at 16 kHz."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed")
    said = subprocess.run(
        [espeak, "-v", "en-us+f3", "--stdout", SENTENCES[1]], capture_output=True, check=True
    ).stdout
    other, rate = sf.read(io.BytesIO(said), dtype="float32")
    import soxr

    other = soxr.resample(other, rate, 16000).astype(np.float32)
    pause = np.zeros(8000, np.float32)
    return np.concatenate([synthesize(SENTENCES[0]), pause, other])


def test_diarized_json_maps_speaker_turns_to_segments(hub, http):
    audio = two_voices()
    wav = encode(audio, 16000)
    frames = post_audio(http, "frames", "anton-l/wav2vec2-base-superb-sd", wav)["segments"]
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": ("two.wav", wav)},
        data={"model": "openai/whisper-small", "response_format": "diarized_json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task", "duration", "text", "segments", "usage"}
    assert body["usage"] == {"type": "duration", "seconds": math.ceil(body["duration"])}
    segments = body["segments"]
    assert segments and [s["id"] for s in segments] == [f"seg_{i}" for i in range(len(segments))]
    assert {s["type"] for s in segments} == {"transcript.text.segment"}
    # Each turn is one speaker's frames segments joined: it starts and ends on theirs.
    assert {s["start"] for s in segments} <= {f["start"] for f in frames}
    assert {s["end"] for s in segments} <= {f["end"] for f in frames}
    assert {s["speaker"] for s in segments} <= {"A", "B"}
    assert body["text"] == " ".join(s["text"] for s in segments)
    refused = http.post(
        "/v1/audio/translations",
        files={"file": ("two.wav", wav)},
        data={"response_format": "diarized_json"},
    )
    assert refused.status_code == 400


def test_a_saved_voice_clones_over_http_and_openai_and_is_deleted(hub, http, speech_wav):
    created = http.post(
        "/v1/audio/voices",
        files={"audio_sample": ("joe.wav", speech_wav)},
        data={"name": "joe", "consent": "consent_1"},
    )
    assert created.status_code == 200, created.text
    voice = created.json()
    assert voice["object"] == "audio.voice" and voice["type"] == "audio_sample"
    assert voice["id"].startswith("voice_") and voice["name"] == "joe"
    listed = http.get("/v1/audio/voices").json()["data"]
    assert voice["id"] in {v["id"] for v in listed}
    assert {v["id"] for v in listed if v.get("model") == BARK} == set(
        ["v2/en_speaker_0", "v2/en_speaker_1"]
    )

    def speak(**body) -> np.ndarray:
        response = http.post(
            "/v1/tts", json={"input": "hi there", "model": SPEECHT5, "seed": 1, **body}
        )
        return audio_of(response)[0]

    cloned = speak(voice=voice["id"])
    assert not np.array_equal(cloned, speak())
    sent = http.post(
        "/v1/tts",
        files={"reference_audio": ("joe.wav", speech_wav)},
        data={"input": "hi there", "model": SPEECHT5, "seed": "1"},
    )
    assert np.array_equal(audio_of(sent)[0], cloned)
    client = openai.OpenAI(base_url=f"{hub}/v1", api_key="x", max_retries=0, timeout=300)
    spoken = client.audio.speech.create(
        model=SPEECHT5, input="hi there", voice={"id": voice["id"]}, response_format="wav"
    )
    assert sf.info(io.BytesIO(spoken.content)).samplerate == 16000
    deleted = http.delete(f"/v1/audio/voices/{voice['id']}").json()
    assert deleted == {"id": voice["id"], "object": "audio.voice.deleted", "deleted": True}
    gone = http.post("/v1/tts", json={"input": "hi", "model": SPEECHT5, "voice": voice["id"]})
    assert gone.status_code == 404
    cannot = http.post(
        "/v1/tts",
        files={"reference_audio": ("joe.wav", speech_wav)},
        data={"input": "hi there", "model": "facebook/mms-tts-eng"},
    )
    assert cannot.status_code == 400 and "clone" in cannot.json()["error"]["message"]


def test_sdk_and_cli_clone_from_a_reference_file(hub, http, speech_wav, tmp_path):
    reference = tmp_path / "joe.wav"
    reference.write_bytes(speech_wav)
    sent = http.post(
        "/v1/tts",
        files={"reference_audio": ("joe.wav", speech_wav)},
        data={"input": "hi there", "model": SPEECHT5, "seed": "1"},
    )
    with Sonaray(base_url=hub, timeout=300) as sonaray:
        wav = sonaray.speak("hi there", model=SPEECHT5, reference=reference, seed=1)
    assert np.array_equal(sf.read(io.BytesIO(wav))[0], audio_of(sent)[0])
    out = tmp_path / "cloned.wav"
    args = ["--base-url", hub, "--timeout", "300", "speak", "hi there", "-o", str(out)]
    args += ["--model", SPEECHT5, "--reference", str(reference)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sf.info(out).samplerate == 16000
