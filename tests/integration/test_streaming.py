"""Streaming against the live cluster with the real ``openai`` package: transcripts as
chunks finish, speech as sentences are spoken, and work cancelled when the client leaves.

"Before the rest is done" is read from the task replicas themselves (items forwarded,
requests in flight in ``stats()``), never from the wall clock.
"""

from __future__ import annotations

import base64
import io
import json
import time

import jiwer
import numpy as np
import openai
import pytest
import soundfile as sf
from api_fixtures import encode, speech_wav
from ray import serve
from speech import SENTENCES, long_clip, same_samples, words

from deployments.graph.streams import SENTENCE_WINDOW

pytestmark = pytest.mark.serve
FIVE = " ".join(SENTENCES[:5])


def stats(task: str) -> dict:
    """Requests in flight and items forwarded, summed over the task's running replicas.

    A handle call reaches one replica; calls are repeated until every running replica
    (told apart by pid) has answered, since seq2seq may have scaled up under load.
    """
    status = serve.status().applications["sonaray"].deployments[task]
    running = status.replica_states.get("RUNNING", 1)
    handle = serve.get_deployment_handle(task, app_name="sonaray")
    seen: dict[int, dict] = {}
    for _ in range(100):
        info = handle.stats.remote().result()
        seen[info["pid"]] = info
        if len(seen) >= running:
            break
    return {key: sum(r[key] for r in seen.values()) for key in ("in_flight", "items_forwarded")}


def idle(task: str, polls: int = 200) -> dict:
    """The task's stats once no request is in flight there (polled, 0.05 s apart)."""
    for _ in range(polls):
        info = stats(task)
        if info["in_flight"] == 0:
            return info
        time.sleep(0.05)
    raise AssertionError(f"{task} still busy: {info}")


@pytest.fixture
def client(serve_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{serve_url}/v1", api_key="x", max_retries=0, timeout=300)


def streamed(client, model: str, data: bytes) -> tuple[list[str], object]:
    events = list(
        client.audio.transcriptions.create(model=model, file=("a.wav", data), stream=True)
    )
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert events[-1].type == "transcript.text.done"
    return [e.delta for e in events[:-1]], events[-1]


@pytest.mark.parametrize("model", ["whisper-1", "tiny-wav2vec2-ctc"])
def test_stream_deltas_join_to_the_text_of_the_same_request_unstreamed(client, model):
    data = speech_wav(SENTENCES[1])
    deltas, done = streamed(client, model, data)
    plain = client.audio.transcriptions.create(model=model, file=("a.wav", data))
    assert "".join(deltas) == done.text == plain.text
    assert done.usage.type == "duration" and done.usage.seconds == pytest.approx(
        sf.info(io.BytesIO(data)).duration, abs=0.01
    )
    if model == "whisper-1":  # real weights: the words themselves
        assert deltas and words(done.text) == words(SENTENCES[1])


def test_long_audio_streams_each_chunk_as_it_finishes(client):
    audio, truth = long_clip(180)  # 6+ chunks: more than one window of 4 after the first
    data = encode(audio, 16000)
    before = idle("seq2seq")["items_forwarded"]
    stream = client.audio.transcriptions.create(
        model="whisper-1", file=("long.wav", data), stream=True
    )
    events = iter(stream)
    first = next(events)
    at_first = stats("seq2seq")["items_forwarded"] - before
    rest = list(events)
    chunks = idle("seq2seq")["items_forwarded"] - before
    deltas = [first.delta] + [e.delta for e in rest[:-1]]
    assert len(deltas) == chunks >= 6  # one delta per VAD chunk
    assert at_first < chunks  # the first delta came while later chunks were still queued
    done = rest[-1]
    plain = client.audio.transcriptions.create(model="whisper-1", file=("long.wav", data))
    assert "".join(deltas) == done.text == plain.text
    expected = " ".join(w for _, _, text in truth for w in words(text))
    assert jiwer.wer(expected, " ".join(words(done.text))) <= 0.02


def test_streamed_speech_arrives_sentence_by_sentence_and_equals_the_whole(client):
    before = idle("tts")["items_forwarded"]
    speech = client.audio.speech.with_streaming_response.create
    with speech(model="tts-1", voice="alloy", input=FIVE, response_format="wav") as response:
        chunks = response.iter_bytes()
        first = next(chunks)
        at_first = stats("tts")["items_forwarded"] - before
        data = first + b"".join(chunks)
    assert response.headers.get("content-length") is None  # chunked, not one body
    assert at_first < 5  # first bytes while later sentences were still being spoken
    assert idle("tts")["items_forwarded"] - before == 5  # one tts item per sentence
    whole = client.audio.speech.create(
        model="tts-1", voice="alloy", input=FIVE, response_format="flac"
    )  # flac is not streamed: the text is spoken in one piece
    streamed_audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    whole_audio, whole_rate = sf.read(io.BytesIO(whole.content), dtype="float32")
    assert rate == whole_rate
    assert abs(len(streamed_audio) - len(whole_audio)) / rate < 0.005
    n = min(len(streamed_audio), len(whole_audio))
    assert np.corrcoef(streamed_audio[:n], whole_audio[:n])[0, 1] > 0.95


def test_speech_sse_events_carry_the_same_audio(client):
    body = {"model": "tts-1", "voice": "alloy", "input": FIVE, "response_format": "pcm"}
    chunked = client.audio.speech.create(**body).content
    sse = client.audio.speech.create(**body, stream_format="sse").content.decode()
    events = [line.removeprefix("data: ") for line in sse.splitlines() if line.startswith("data")]
    payloads = [json.loads(e) for e in events]
    assert [p["type"] for p in payloads][-1] == "speech.audio.done"
    audio = b"".join(base64.b64decode(p["audio"]) for p in payloads[:-1])
    assert same_samples(np.frombuffer(audio, "<i2"), np.frombuffer(chunked, "<i2"))
    assert payloads[-1]["usage"]["seconds"] == pytest.approx(len(audio) / 2 / 24000, abs=0.01)


def test_a_client_that_leaves_mid_stream_leaves_no_work_behind(client):
    text = " ".join(SENTENCES * 4)  # 28 sentences
    before = idle("tts")["items_forwarded"]
    speech = client.audio.speech.with_streaming_response.create
    with speech(model="tts-1", voice="alloy", input=text, response_format="pcm") as response:
        next(response.iter_bytes())
        for _ in range(5):  # a slow reader: the stream's window bounds its work in flight
            assert stats("tts")["in_flight"] <= SENTENCE_WINDOW
            time.sleep(0.1)
    after = idle("tts")["items_forwarded"]
    assert after - before < 28
    time.sleep(1.0)  # nothing starts later either
    assert stats("tts")["items_forwarded"] == after


def test_transcription_left_mid_stream_cancels_its_chunks(client):
    audio, _ = long_clip(180)
    before = idle("seq2seq")["items_forwarded"]
    with client.audio.transcriptions.with_streaming_response.create(
        model="whisper-1", file=("long.wav", encode(audio, 16000)), stream=True
    ) as response:
        next(response.iter_lines())
    after = idle("seq2seq")["items_forwarded"]
    plain_chunks = 6  # 180 s in chunks of at most 30 s: at least six
    assert after - before < plain_chunks
