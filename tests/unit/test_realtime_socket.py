"""The Realtime WebSocket without Ray: auth, session updates, bad input, a manual turn
and a spoken reply, over stand-in task handles. Every server event must parse as the
``openai`` package's GA event types.

The app runs under a real uvicorn server in a thread (as behind Serve's proxy), and the
client is a plain ``websockets`` one.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import uvicorn
from realtime_events import b64, parsed, pcm16
from sonaray_client.types import Transcription
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from deployments.config import SonarayArgs
from deployments.protocol import Waveform
from deployments.router import http
from deployments.router.realtime import route
from deployments.router.service import SonarayService
from deployments.tasks.vad_stream import VadBlock, VadScores, VadState

KEY = "s3cret-key"
SAID = "Hello there. How are you today?"


class StandIn:
    """A task handle: ``.options(...).remote(item)`` answers like the deployment would."""

    def __init__(self, task: str, method: str = "__call__"):
        self.task, self.method = task, method

    def options(self, method_name: str = "__call__", multiplexed_model_id: str = ""):
        return StandIn(self.task, method_name)

    async def remote(self, item=None):
        if self.method == "sampling_rate":
            return 22050 if self.task == "tts" else 16000
        if self.task == "frames":
            assert isinstance(item, VadBlock)
            zeros = np.zeros((1, 1, 128), np.float32)
            state = VadState(zeros, zeros, np.zeros(64, np.float32))
            return VadScores(np.zeros(item.audio.size // 512, np.float32), state, 512)
        if self.task in ("seq2seq", "ctc"):
            text = SAID if self.task == "seq2seq" else "ctc heard this"
            return Transcription(text=text, duration=item.audio.size / 16000)
        return Waveform(np.full(3 * 22050, 0.1, np.float32), 22050)  # 3 s per sentence


class Server:
    """The app served by uvicorn on a free port; ``connect`` opens a socket to it."""

    def __init__(self, app):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    @contextmanager
    def connect(self, query: str = "", **options) -> Iterator[ClientConnection]:
        with connect(f"ws://127.0.0.1:{self.port}/v1/realtime{query}", **options) as ws:
            yield ws

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextmanager
def serving(monkeypatch, keys: set[str], **limits) -> Iterator[Server]:
    args = SonarayArgs.model_validate(
        {
            "models": [
                {"name": "tiny-wav2vec2-ctc", "task": "ctc"},
                {"name": "whisper-tiny.en", "task": "seq2seq"},
                {"name": "silero-vad", "task": "frames"},
                {"name": "piper-joe-medium", "task": "tts"},
            ],
            "pipelines": {"speech-to-speech": ["frames", "seq2seq", "tts"]},
            "realtime": {"pipeline": "speech-to-speech"},
            "limits": {"max_append_bytes": 100_000, **limits},
        }
    )
    handles = {task: StandIn(task) for task in ("ctc", "seq2seq", "frames", "tts")}
    monkeypatch.setattr(http, "_service", SonarayService(args, handles, keys))
    app = http.create_app()
    app.include_router(route.router)
    server = Server(app)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(monkeypatch) -> Iterator[Server]:
    with serving(monkeypatch, set()) as server:
        yield server


def next_event(ws: ClientConnection) -> dict:
    event = json.loads(ws.recv(timeout=20))
    parsed(event)
    return event


def receive(ws: ClientConnection, until: str) -> list[dict]:
    """Events up to and including the first of type ``until``, each parsed by openai."""
    events = []
    while True:
        events.append(next_event(ws))
        if events[-1]["type"] == until:
            return events


def close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=20)
    return closed.value.rcvd.code


def send(ws: ClientConnection, event: dict) -> None:
    ws.send(json.dumps(event))


MANUAL = {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
SECOND = b64(pcm16(np.zeros(24000, np.float32)))


def test_missing_or_wrong_key_is_an_error_event_and_a_policy_close(monkeypatch):
    with serving(monkeypatch, {KEY}) as keyed:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            with keyed.connect("?intent=transcription", additional_headers=headers) as ws:
                assert next_event(ws)["error"]["code"] == "invalid_api_key"
                assert close_code(ws) == 1008


def test_the_right_key_opens_a_session_by_header_or_browser_subprotocol(monkeypatch):
    with serving(monkeypatch, {KEY}) as keyed:
        headers = {"Authorization": f"Bearer {KEY}"}
        with keyed.connect("?intent=transcription", additional_headers=headers) as ws:
            assert next_event(ws)["type"] == "session.created"
        protocols = ["realtime", f"openai-insecure-api-key.{KEY}"]
        with keyed.connect("", subprotocols=protocols) as ws:
            assert ws.subprotocol == "realtime"
            assert next_event(ws)["session"]["type"] == "realtime"


def test_session_update_is_echoed_in_session_updated(client):
    with client.connect("?intent=transcription&model=whisper-1") as ws:
        created = receive(ws, "session.created")[-1]["session"]
        assert created["audio"]["input"]["transcription"]["model"] == "whisper-tiny.en"
        assert created["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        session = {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 16000},
                    "transcription": {"model": "whisper-tiny.en", "language": "en"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                }
            },
        }
        send(ws, {"type": "session.update", "session": session})
        updated = receive(ws, "session.updated")[-1]["session"]["audio"]["input"]
        assert updated["format"]["rate"] == 16000
        assert updated["transcription"]["language"] == "en"
        assert updated["turn_detection"]["silence_duration_ms"] == 300
        assert updated["turn_detection"]["threshold"] == 0.5


@pytest.mark.parametrize(
    ("event", "code", "words"),
    [
        ({"type": "input_audio_buffer.flush"}, "invalid_request", "unknown"),
        ({"type": "input_audio_buffer.append", "audio": "!!"}, "invalid_request", "base64"),
        ({"type": "input_audio_buffer.append", "audio": "x" * 100_004}, "limit_exceeded", "limit"),
        ({"type": "input_audio_buffer.commit"}, "invalid_request", "buffer too small"),
        (
            {
                "type": "session.update",
                "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
            },
            "invalid_request",
            "audio/pcm",
        ),
        (
            {"type": "session.update", "session": {"type": "realtime"}},
            "invalid_request",
            "cannot change",
        ),
        (
            {
                "type": "session.update",
                "session": {"audio": {"input": {"transcription": {"model": "nope"}}}},
            },
            "model_not_found",
            "unknown transcription model",
        ),
        ({"type": "response.create"}, "invalid_request", "conversation session"),
    ],
)
def test_bad_input_is_a_clear_error_and_the_session_stays_usable(client, event, code, words):
    with client.connect("?intent=transcription") as ws:
        receive(ws, "session.created")
        send(ws, {**event, "event_id": "evt_mine"})
        error = receive(ws, "error")[-1]["error"]
        assert error["code"] == code and words in error["message"]
        assert error["event_id"] == "evt_mine"
        send(ws, MANUAL)
        receive(ws, "session.updated")
        send(ws, {"type": "input_audio_buffer.append", "audio": SECOND})
        send(ws, {"type": "input_audio_buffer.commit"})
        events = receive(ws, "conversation.item.input_audio_transcription.completed")
        assert events[-1]["transcript"] == SAID


def test_a_served_ctc_model_can_be_picked_by_name(client):
    with client.connect("?intent=transcription&model=tiny-wav2vec2-ctc") as ws:
        receive(ws, "session.created")
        send(ws, MANUAL)
        send(ws, {"type": "input_audio_buffer.append", "audio": SECOND})
        send(ws, {"type": "input_audio_buffer.commit"})
        events = receive(ws, "conversation.item.input_audio_transcription.completed")
        assert events[-1]["transcript"] == "ctc heard this"


def test_not_json_is_an_error(client):
    with client.connect("?intent=transcription") as ws:
        receive(ws, "session.created")
        ws.send("hello")
        assert "not JSON" in receive(ws, "error")[-1]["error"]["message"]


def test_a_manual_turn_is_committed_then_transcribed_with_usage(client):
    with client.connect("?intent=transcription&model=gpt-4o-transcribe") as ws:
        receive(ws, "session.created")
        send(ws, MANUAL)
        receive(ws, "session.updated")
        send(ws, {"type": "input_audio_buffer.append", "audio": SECOND})
        send(ws, {"type": "input_audio_buffer.commit"})
        events = receive(ws, "conversation.item.input_audio_transcription.completed")
        committed, delta, completed = events[-3:]
        assert completed["transcript"] == SAID  # OpenAI's name: Whisper, the default
        assert committed["type"] == "input_audio_buffer.committed"
        assert delta["delta"] == completed["transcript"] == SAID
        assert committed["item_id"] == delta["item_id"] == completed["item_id"]
        assert completed["usage"] == {"type": "duration", "seconds": pytest.approx(1.0, abs=0.01)}


def test_a_conversation_turn_is_answered_sentence_by_sentence(client):
    with client.connect("") as ws:
        receive(ws, "session.created")
        send(ws, MANUAL)
        receive(ws, "session.updated")
        send(ws, {"type": "input_audio_buffer.append", "audio": SECOND})
        send(ws, {"type": "input_audio_buffer.commit"})
        send(ws, {"type": "response.create"})
        events = receive(ws, "response.done")
        kinds = [e["type"] for e in events]
        start = kinds.index("response.created")
        texts = [
            e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
        ]
        assert texts == ["Hello there.", "How are you today?"]
        audio = [e for e in events if e["type"] == "response.output_audio.delta"]
        assert len(audio) == 30  # six seconds of speech in 200 ms deltas at 24 kHz
        assert kinds[-3:] == [
            "response.output_audio_transcript.done",
            "response.output_audio.done",
            "response.done",
        ]
        assert start < kinds.index("response.output_audio.delta")
        done = events[-1]["response"]
        assert done["status"] == "completed"
        assert done["output"][0]["content"][0]["transcript"] == SAID


def test_response_cancel_stops_the_reply(client):
    with client.connect("") as ws:
        receive(ws, "session.created")
        send(ws, MANUAL)
        send(ws, {"type": "input_audio_buffer.append", "audio": SECOND})
        send(ws, {"type": "input_audio_buffer.commit"})
        send(ws, {"type": "response.create"})
        receive(ws, "response.output_audio.delta")
        send(ws, {"type": "response.cancel"})
        done = receive(ws, "response.done")[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"]["reason"] == "client_cancelled"
        send(ws, {"type": "response.cancel"})
        assert "no response in progress" in receive(ws, "error")[-1]["error"]["message"]


def test_sessions_over_the_replica_limit_are_refused_with_try_again(monkeypatch):
    with (
        serving(monkeypatch, set(), max_sessions=1) as limited,
        limited.connect("?intent=transcription") as first,
    ):
        receive(first, "session.created")
        with limited.connect("?intent=transcription") as second:
            assert "limits.max_sessions" in next_event(second)["error"]["message"]
            assert close_code(second) == 1013


def test_a_session_ends_at_its_time_limit(monkeypatch):
    with (
        serving(monkeypatch, set(), max_session_seconds=0.5) as short,
        short.connect("?intent=transcription") as ws,
    ):
        assert receive(ws, "error")[-1]["error"]["code"] == "session_expired"
        assert close_code(ws) == 1008
