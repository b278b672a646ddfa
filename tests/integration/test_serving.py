"""The live cluster: placement by GPU fraction, batching, reconfigure, round trips, graphs."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf
from ray import serve
from serve_cluster import PORT, TASK_GPU_FRACTION, session_config
from speech import SENTENCES, heard_as, long_clip, spoken_commands, synthesize, words

pytestmark = pytest.mark.serve
APP = "sonaray"
TASKS = ("ctc", "seq2seq", "classify", "frames", "tts", "generate")


def wav_bytes(audio: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def stats(task: str, app: str = APP) -> dict:
    handle = serve.get_deployment_handle(task, app_name=app)
    return handle.stats.remote().result()


def transcribe(http: httpx.Client, audio: np.ndarray, **form) -> dict:
    response = http.post("/v1/seq2seq", files={"file": ("clip.wav", wav_bytes(audio))}, data=form)
    assert response.status_code == 200, response.text
    return response.json()


def test_models_cover_all_six_families(http):
    cards = http.get("/v1/models").json()["data"]
    assert {c["task"] for c in cards} == set(TASKS)
    defaults = {c["task"]: c["id"] for c in cards if c["default"]}
    assert defaults["seq2seq"] == "whisper-tiny.en"
    assert defaults["frames"] == "silero-vad"


def test_replicas_placed_by_gpu_fraction_and_fall_back_to_cpu(serve_url):
    for task in TASKS:
        info = stats(task)
        assert info["resources"].get("GPU") == TASK_GPU_FRACTION, (task, info["resources"])
        assert info["gpu_ids"], f"{task} got no logical GPU"
        assert info["device"] == "cpu"  # torch sees no CUDA here: engines fall back
    # Four logical GPUs, six tasks at 0.5: some replicas must share a GPU id.
    ids = [stats(task)["gpu_ids"][0] for task in TASKS]
    assert len(set(ids)) < len(ids)


def test_tts_to_asr_round_trip_over_http(http):
    sentence = SENTENCES[1]
    speech = http.post("/v1/tts", json={"input": sentence})
    assert speech.status_code == 200, speech.text
    assert speech.headers["content-type"] == "audio/wav"
    response = http.post("/v1/seq2seq", files={"file": ("speech.wav", speech.content)})
    assert response.status_code == 200, response.text
    assert heard_as(response.json()["text"], sentence)


async def _concurrent_transcriptions(clips: list[np.ndarray]) -> list[str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=300) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/seq2seq", files={"file": ("c.wav", wav_bytes(c))}) for c in clips)
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json()["text"] for r in responses]


def test_concurrent_requests_are_batched_and_match_unbatched(http):
    clips = [synthesize(SENTENCES[i % len(SENTENCES)]) for i in range(16)]
    alone = [transcribe(http, clip)["text"] for clip in clips[: len(SENTENCES)]]
    before = len(stats("seq2seq")["batch_sizes"])
    together = asyncio.run(_concurrent_transcriptions(clips))
    sizes = stats("seq2seq")["batch_sizes"][before:]
    assert max(sizes) > 1, sizes
    assert together[: len(alone)] == alone
    for i, text in enumerate(together):
        assert words(text) == words(SENTENCES[i % len(SENTENCES)])


def test_batching_reconfigures_live_without_restart(ray_session, serve_url):
    from deployments.launch import deploy_config

    pid = stats("seq2seq")["pid"]
    try:
        deploy_config(session_config({"max_batch_size": 1}), quiet=True)
        before = len(stats("seq2seq")["batch_sizes"])
        asyncio.run(_concurrent_transcriptions([synthesize(SENTENCES[0])] * 6))
        after = stats("seq2seq")
        assert after["pid"] == pid  # user_config applied in place, no new replica
        assert set(after["batch_sizes"][before:]) == {1}
    finally:
        deploy_config(session_config(), quiet=True)


def test_speech_to_speech_pipeline_returns_speech_of_the_same_words(http):
    sentence = SENTENCES[0]
    response = http.post(
        "/v1/pipelines/speech-to-speech",
        files={"file": ("in.wav", wav_bytes(synthesize(sentence)))},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert [s["task"] for s in result["steps"]] == ["frames", "seq2seq", "tts"]
    assert "server-timing" in response.headers
    assert words(result["transcription"]["text"]) == words(sentence)
    spoken = base64.b64decode(result["audio_base64"])
    again = http.post("/v1/seq2seq", files={"file": ("out.wav", spoken)})
    assert heard_as(again.json()["text"], sentence)


def test_long_audio_is_transcribed_completely(http):
    """Every sentence of a 90 s clip comes back, in order, from chunks run in parallel.

    Whisper tiny.en itself may drop a short word at a chunk's end (seen: one "the" in
    170 words), so completeness is checked per sentence, not as exact text.
    """
    audio, truth = long_clip(90)
    data = wav_bytes(audio)
    via_pipeline = http.post(
        "/v1/pipelines/transcribe-long", files={"file": ("long.wav", data)}
    ).json()["transcription"]
    via_route = http.post("/v1/seq2seq", files={"file": ("long.wav", data)}).json()
    expected = " ".join(w for _, _, text in truth for w in words(text))
    for result in (via_pipeline, via_route):
        heard = " ".join(words(result["text"]))
        assert jiwer.wer(expected, heard) <= 0.02, heard
        for start, end, text in truth:  # each sentence is in a segment around its time
            spoken = " ".join(
                seg["text"]
                for seg in result["segments"]
                if seg["end"] > start - 1.0 and seg["start"] < end + 1.0
            )
            found = set(words(spoken))
            assert sum(w in found for w in words(text)) >= len(words(text)) - 1, (text, spoken)
        assert result["duration"] == pytest.approx(len(audio) / 16000, abs=0.01)
        ends = [seg["end"] for seg in result["segments"]]
        assert ends == sorted(ends) and ends[-1] <= result["duration"] + 0.05


def test_segment_classify_pipeline_labels_each_speech_segment(http):
    audio, truth = long_clip(30)
    response = http.post(
        "/v1/pipelines/segment-classify",
        files={"file": ("c.wav", wav_bytes(audio))},
        data={"options": json.dumps({"classify": {"top_k": 2}})},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["labels"]) == len(result["segments"]) >= len(truth) - 1
    assert all(len(labels["labels"]) == 2 for labels in result["labels"])


def test_segment_classify_finds_each_command_in_a_recording(http):
    commands = ["yes", "stop", "left", "go", "down", "off"]
    audio, spans = spoken_commands(commands)  # a voice the keyword spotter never heard
    response = http.post(
        "/v1/pipelines/segment-classify",
        files={"file": ("commands.wav", wav_bytes(audio))},
        data={"options": json.dumps({"classify": {"top_k": 1}})},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    found = [
        (seg["start"], seg["end"], labels["labels"][0]["label"])
        for seg, labels in zip(result["segments"], result["labels"], strict=True)
    ]
    # Each command's own segment (the one overlapping it) must carry its label: all but
    # one of six, as a spotter right ~90% of the time on unheard voices mostly manages.
    heard = [
        next((label for s, e, label in found if s < true_end and e > true_start), None)
        for true_start, true_end in spans
    ]
    assert sum(h == c for h, c in zip(heard, commands, strict=True)) >= 5, (heard, found)


def test_every_family_answers_over_http(http):
    clip = wav_bytes(synthesize(SENTENCES[2]))
    for task in ("ctc", "classify", "frames"):
        r = http.post(f"/v1/{task}", files={"file": ("c.wav", clip)})
        assert r.status_code == 200, (task, r.text)
    for model in ("tiny-vits", "tiny-speecht5", "tiny-bark", "piper-joe-medium"):
        r = http.post("/v1/tts", json={"input": "hello there", "model": model, "seed": 1})
        assert r.status_code == 200, (model, r.text)
        audio, rate = sf.read(io.BytesIO(r.content))
        assert rate == int(r.headers["x-sampling-rate"]) and len(audio) > 0
    r = http.post("/v1/generate", json={"prompt": "calm piano", "duration_s": 0.5, "seed": 3})
    assert r.status_code == 200, r.text
    assert sf.info(io.BytesIO(r.content)).samplerate == 32000


def test_multiplexed_model_selection_per_request(http):
    clip = wav_bytes(synthesize(SENTENCES[3]))
    real = http.post("/v1/seq2seq", files={"file": ("c.wav", clip)}).json()
    tiny = http.post(
        "/v1/seq2seq", files={"file": ("c.wav", clip)}, data={"model": "tiny-whisper"}
    ).json()
    assert real["model"] == "whisper-tiny.en" and tiny["model"] == "tiny-whisper"
    assert {"whisper-tiny.en", "tiny-whisper"} <= set(stats("seq2seq")["loaded"])
