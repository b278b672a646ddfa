"""``/v1/realtime`` against the live cluster: recorded speech fed at real-time pace.

The session app (serve_config.all.yaml) answers conversation turns with the echo
responder; the ``agent`` app answers through a fake chat server (tests/fake_chat.py),
which also gives barge-in a reply long enough to interrupt on a loaded machine.
Every server event must parse as the ``openai`` package's GA event types.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time

import httpx
import numpy as np
import openai
import pytest
import ray
import soundfile as sf
import soxr
from fake_chat import FakeChat, say_back
from ray import serve
from realtime_events import b64, from_pcm16, parsed, pcm16
from serve_cluster import CHAT_PORT, PORT
from speech import SENTENCES, heard_as, synthesize, words
from websockets.asyncio.client import ClientConnection, connect

pytestmark = pytest.mark.serve
WS = f"ws://127.0.0.1:{PORT}"
TRANSCRIPTION = "?intent=transcription"
CHUNK_S = 0.1  # what a microphone client sends per append


def pause(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


class Live:
    """A socket with a reader task: every event parsed, kept in order, waited for by type."""

    def __init__(self, ws: ClientConnection):
        self.ws, self.events, self.started = ws, [], time.monotonic()
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            event = json.loads(raw)
            parsed(event)
            event["_at"] = time.monotonic()
            self.events.append(event)
            self._changed.set()

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    async def wait(self, kind: str, count: int = 1, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count:
            if self._reader.done():
                raise AssertionError(f"socket closed before {count} {kind}: {self.kinds()}")
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {count} {kind} within {timeout}s: {self.kinds()}")
            await asyncio.wait([asyncio.ensure_future(self._changed.wait())], timeout=left)
        return self.of(kind)

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps(event))

    async def speak(self, audio: np.ndarray, rate: int = 24000) -> None:
        """Append 16 kHz ``audio`` as pcm16 at ``rate``, paced like a microphone."""
        data = pcm16(soxr.resample(audio, 16000, rate) if rate != 16000 else audio)
        step = int(CHUNK_S * rate) * 2
        began = time.monotonic()
        for i, start in enumerate(range(0, len(data), step)):
            chunk = b64(data[start : start + step])
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})
            await asyncio.sleep(max(0.0, began + (i + 1) * CHUNK_S - time.monotonic()))

    def reply_audio(self, response_id: str) -> np.ndarray:
        deltas = [
            e["delta"]
            for e in self.of("response.output_audio.delta")
            if e["response_id"] == response_id
        ]
        return from_pcm16(b"".join(base64.b64decode(d) for d in deltas))


def heard(audio: np.ndarray, rate: int = 24000) -> str:
    """What the cluster's Whisper hears in ``audio`` (a plain transcription request)."""
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    r = httpx.post(
        f"http://127.0.0.1:{PORT}/v1/audio/transcriptions",
        files={"file": ("reply.wav", buf.getvalue())},
        data={"model": "whisper-1"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()["text"]


def session(path: str = "", query: str = "", **options):
    return connect(f"{WS}{path}/v1/realtime{query}", max_size=None, **options)


@pytest.fixture(scope="module")
def chat(serve_url):
    with FakeChat(CHAT_PORT) as server:
        yield server


def stats(app: str, deployment: str) -> dict:
    return serve.get_deployment_handle(deployment, app_name=app).stats.remote().result()


def forwarded(deployment: str) -> int:
    """Items the agent app's ``deployment`` has run through its model so far."""
    return stats("agent", deployment)["items_forwarded"]


# --- transcription sessions ---------------------------------------------------------


def test_openai_package_transcribes_each_turn_as_it_ends(serve_url):
    first, second = SENTENCES[0], SENTENCES[1]
    audio = np.concatenate(
        [pause(0.6), synthesize(first), pause(1.2), synthesize(second), pause(1.5)]
    )
    client = openai.AsyncOpenAI(base_url=f"{serve_url}/v1", api_key="x")

    async def run() -> list:
        events = []
        async with client.realtime.connect(
            model="whisper-1", extra_query={"intent": "transcription"}
        ) as conn:
            await conn.session.update(
                session={
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": 24000},
                            "transcription": {"model": "whisper-1", "language": "en"},
                            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                        }
                    },
                }
            )
            pcm = pcm16(soxr.resample(audio, 16000, 24000))
            step = int(CHUNK_S * 24000) * 2

            async def feed():
                for start in range(0, len(pcm), step):
                    await conn.input_audio_buffer.append(audio=b64(pcm[start : start + step]))
                    await asyncio.sleep(CHUNK_S)

            feeder = asyncio.create_task(feed())
            done = 0
            async for event in conn:
                events.append(event)
                done += event.type == "conversation.item.input_audio_transcription.completed"
                if done == 2:
                    break
            await feeder
        return events

    events = asyncio.run(asyncio.wait_for(run(), 120))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert kinds.count("input_audio_buffer.speech_started") == 2
    assert kinds.count("input_audio_buffer.speech_stopped") == 2
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    completed = [
        e for e in events if e.type == "conversation.item.input_audio_transcription.completed"
    ]
    assert [c.item_id for c in completed] == [c.item_id for c in committed]
    assert committed[1].previous_item_id == committed[0].item_id
    assert [words(c.transcript) for c in completed] == [words(first), words(second)]
    assert all(c.usage.type == "duration" and c.usage.seconds > 1.0 for c in completed)
    started = [e for e in events if e.type == "input_audio_buffer.speech_started"]
    # the first turn starts near 0.6 s, less the 300 ms prefix padding
    assert 200 <= started[0].audio_start_ms <= 700


def test_plain_websocket_16khz_with_manual_commits(serve_url):
    async def run() -> Live:
        async with session(query=TRANSCRIPTION) as ws:
            live = Live(ws)
            await live.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {
                            "input": {
                                "format": {"type": "audio/pcm", "rate": 16000},
                                "turn_detection": None,
                            }
                        },
                    },
                }
            )
            await live.wait("session.updated")
            for text in (SENTENCES[2], SENTENCES[5]):
                await live.speak(np.concatenate([synthesize(text), pause(0.3)]), rate=16000)
                await live.send({"type": "input_audio_buffer.commit"})
            await live.wait("conversation.item.input_audio_transcription.completed", 2)
            return live

    live = asyncio.run(asyncio.wait_for(run(), 120))
    assert live.of("session.updated")[0]["session"]["audio"]["input"]["turn_detection"] is None
    assert not live.of("input_audio_buffer.speech_started")
    texts = [
        e["transcript"] for e in live.of("conversation.item.input_audio_transcription.completed")
    ]
    assert [words(t) for t in texts] == [words(SENTENCES[2]), words(SENTENCES[5])]


def test_bad_input_through_the_proxy_leaves_the_session_usable(serve_url):
    async def run() -> Live:
        async with session("/agent", TRANSCRIPTION) as ws:
            live = Live(ws)
            await live.send({"type": "input_audio_buffer.append", "audio": "x" * 250_000})
            await live.send({"type": "input_audio_buffer.append", "audio": "not base64!"})
            await live.send({"type": "conversation.item.create", "event_id": "e1"})
            await live.ws.send(b"\x00\x01")
            await live.wait("error", 4)
            await live.speak(np.concatenate([pause(0.5), synthesize(SENTENCES[3]), pause(1.0)]))
            await live.wait("conversation.item.input_audio_transcription.completed")
            return live

    live = asyncio.run(asyncio.wait_for(run(), 120))
    errors = [e["error"] for e in live.of("error")]
    assert errors[0]["code"] == "limit_exceeded" and "200000" in errors[0]["message"]
    assert "base64" in errors[1]["message"]
    assert errors[2]["event_id"] == "e1" and "conversation.item.create" in errors[2]["message"]
    assert "JSON text" in errors[3]["message"]
    (completed,) = live.of("conversation.item.input_audio_transcription.completed")
    assert words(completed["transcript"]) == words(SENTENCES[3])


# --- conversation sessions ----------------------------------------------------------


def test_echo_conversation_speaks_the_users_words_back(serve_url):
    text = SENTENCES[1]

    async def run() -> Live:
        async with session() as ws:
            live = Live(ws)
            await live.speak(np.concatenate([pause(0.5), synthesize(text), pause(1.0)]))
            await live.wait("response.done")
            return live

    live = asyncio.run(asyncio.wait_for(run(), 120))
    kinds = live.kinds()
    assert kinds.index("conversation.item.input_audio_transcription.completed") < kinds.index(
        "response.created"
    )
    (done,) = live.of("response.done")
    assert done["response"]["status"] == "completed"
    (transcript,) = live.of("response.output_audio_transcript.done")
    assert words(transcript["transcript"]) == words(text)
    audio = live.reply_audio(done["response"]["id"])
    assert 1.5 < audio.size / 24000 < 6.0
    assert heard_as(heard(audio), text)


def test_barge_in_cancels_the_reply_and_the_next_turn_is_answered(chat):
    first, second = SENTENCES[6], SENTENCES[4]
    long_reply = " ".join(SENTENCES)  # about 20 s of speech, played at playback pace
    # the first turn gets the long reply; the next one (a cancelled reply adds no
    # assistant message) is said back
    chat.reply = lambda m: long_reply if len(m) <= 2 else say_back(m)

    async def run() -> Live:
        async with session("/agent") as ws:
            live = Live(ws)
            await live.speak(np.concatenate([pause(0.5), synthesize(first), pause(0.8)]))
            await live.wait("response.output_audio.delta")
            await live.speak(np.concatenate([synthesize(second), pause(1.0)]))
            await live.wait("response.done", 2)
            return live

    try:
        live = asyncio.run(asyncio.wait_for(run(), 180))
    finally:
        chat.reply = say_back
    cancelled, answered = (e["response"] for e in live.of("response.done"))
    assert cancelled["status"] == "cancelled"
    assert cancelled["status_details"]["reason"] == "turn_detected"
    # the reply was cut short: far less of it arrived than it lasts
    assert live.reply_audio(cancelled["id"]).size / 24000 < 12.0
    interrupt = live.of("input_audio_buffer.speech_started")[1]["_at"]
    assert live.of("response.done")[0]["_at"] >= interrupt
    assert answered["status"] == "completed"
    spoken = answered["output"][0]["content"][0]["transcript"]
    assert words(spoken) == words("You said: " + second)


def test_voice_agent_answers_through_the_chat_server(chat):
    chat.reply, chat.status = say_back, 200
    text = SENTENCES[3]

    async def run() -> Live:
        async with session("/agent") as ws:
            live = Live(ws)
            await live.speak(np.concatenate([pause(0.5), synthesize(text), pause(1.0)]))
            await live.wait("response.done")
            return live

    chat.requests.clear()
    live = asyncio.run(asyncio.wait_for(run(), 120))
    (request,) = chat.requests
    assert request["model"] == "fake-llm"
    assert request["messages"][0] == {"role": "system", "content": "You are a terse assistant."}
    assert request["messages"][-1]["role"] == "user"
    assert words(request["messages"][-1]["content"]) == words(text)
    (done,) = live.of("response.done")
    spoken = live.of("response.output_audio_transcript.done")[0]["transcript"]
    assert words(spoken) == words("You said: " + text)
    assert heard_as(heard(live.reply_audio(done["response"]["id"])), "You said: " + text)


def test_a_failing_chat_server_is_an_error_event_and_the_session_goes_on(chat):
    async def run() -> Live:
        async with session("/agent") as ws:
            live = Live(ws)
            chat.status = 500
            await live.speak(np.concatenate([pause(0.5), synthesize(SENTENCES[5]), pause(1.0)]))
            await live.wait("response.done")
            chat.status = 200
            await live.speak(np.concatenate([synthesize(SENTENCES[2]), pause(1.0)]))
            await live.wait("response.done", 2)
            return live

    try:
        live = asyncio.run(asyncio.wait_for(run(), 120))
    finally:
        chat.status = 200
    failed, completed = (e["response"] for e in live.of("response.done"))
    (error,) = live.of("error")
    assert error["error"]["code"] == "responder_error" and "500" in error["error"]["message"]
    assert failed["status"] == "failed"
    assert completed["status"] == "completed"


# --- faults -------------------------------------------------------------------------


def test_a_client_that_leaves_mid_reply_leaves_the_task_replicas_idle(chat):
    chat.reply = lambda m: " ".join(SENTENCES)  # a long reply: seven sentences to speak
    base = forwarded("tts")
    try:

        async def run() -> None:
            async with session("/agent") as ws:
                live = Live(ws)
                await live.speak(np.concatenate([pause(0.5), synthesize(SENTENCES[0]), pause(1.0)]))
                await live.wait("response.output_audio.delta")

        asyncio.run(asyncio.wait_for(run(), 120))
        time.sleep(1.0)  # let cancelled calls settle
        before = forwarded("tts"), forwarded("frames")
        time.sleep(3.0)
        after = forwarded("tts"), forwarded("frames")
    finally:
        chat.reply = say_back
    assert after == before
    assert 0 < before[0] - base < len(SENTENCES)  # the rest of the reply was never synthesized


def test_a_replica_restart_mid_session_ends_it_with_an_error_not_a_hang(chat):
    info = stats("agent", "seq2seq")
    actor = ray.get_actor(info["actor_name"], namespace="serve")

    async def run() -> Live:
        async with session("/agent", TRANSCRIPTION) as ws:
            live = Live(ws)
            await live.speak(np.concatenate([pause(0.5), synthesize(SENTENCES[1])]))
            ray.kill(actor, no_restart=True)
            await live.speak(pause(1.0))
            await live.wait("input_audio_buffer.committed")
            end = asyncio.ensure_future(live._reader)
            await asyncio.wait(
                [
                    end,
                    asyncio.ensure_future(
                        live.wait("conversation.item.input_audio_transcription.completed")
                    ),
                ],
                timeout=60,
                return_when=asyncio.FIRST_COMPLETED,
            )
            return live

    live = asyncio.run(asyncio.wait_for(run(), 120))
    completed = live.of("conversation.item.input_audio_transcription.completed")
    if not completed:  # the replica was not back within the call timeout: a clear end
        assert live.of("conversation.item.input_audio_transcription.failed")
        assert live.of("error")[-1]["error"]["code"] == "overloaded"
        assert live._reader.done()
    deadline = time.monotonic() + 120
    while (
        serve.status().applications["agent"].deployments["seq2seq"].replica_states.get("RUNNING", 0)
        != 1
    ):
        assert time.monotonic() < deadline, "seq2seq was not replaced"
        time.sleep(0.5)
