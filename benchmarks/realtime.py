"""Realtime sessions: N clients speaking at real-time pace over ``/v1/realtime``.

Each session speaks the Piper test sentences with pauses, as pcm16 at 24 kHz in 100 ms
appends, with server VAD at OpenAI's defaults (silence 500 ms). Figures:

- transcription sessions, N = 1, 2, 4, 8: latency from the end of each turn's speech (the
  append carrying its last speech sample) to its ``...transcription.completed``, p50 and
  p95; and from ``speech_stopped`` to ``completed`` (the ASR part); the largest N whose
  p95 stays under 1 s.
- baseline: the same turns as plain ``POST /v1/audio/transcriptions`` requests, N
  clients each sending its turns at the same cadence; latency is the request's.
- speech-to-speech (echo conversation sessions, N = 1 and 2): end of the user's speech to
  the first ``response.output_audio.delta``.

The end-of-speech latency includes the 500 ms of silence that ends a turn: that is the
floor any server VAD client sees with these settings.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from typing import Any

import numpy as np
import soxr
from harness import (
    MODEL_THREADS,
    BaselineFailed,
    derive_config,
    main,
    print_table,
    ratio,
    serve_cluster,
    summary,
    wav_bytes,
)

PORT = 8206
RATE = 24000
CHUNK_S = 0.1
PAUSE_S = 1.2
TARGET_P95_MS = 1000.0
COMPLETED = "conversation.item.input_audio_transcription.completed"
AUDIO = "response.output_audio.delta"


def _turns(session: int, count: int) -> list[np.ndarray]:
    from speech import SENTENCES, _trimmed

    return [_trimmed(SENTENCES[(session + k) % len(SENTENCES)]) for k in range(count)]


def _script(turns: list[np.ndarray], pause_s: float) -> tuple[bytes, list[float]]:
    """The session's audio as pcm16 at 24 kHz and the audio time each turn's speech ends."""
    parts, ends, t = [np.zeros(int(0.5 * 16000), np.float32)], [], 0.5
    for speech in turns:
        parts += [speech, np.zeros(int(pause_s * 16000), np.float32)]
        t += speech.size / 16000
        ends.append(t)
        t += pause_s
    audio = soxr.resample(np.concatenate(parts), 16000, RATE)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes(), ends


async def _session(url: str, turns: list[np.ndarray], pause_s: float, until: str) -> dict:
    """Speak ``turns``; the wall time each speech end was sent, and each ``until`` event."""
    from websockets.asyncio.client import connect

    data, ends = _script(turns, pause_s)
    step = int(CHUNK_S * RATE) * 2
    sent_end: list[float] = []
    got: dict[str, list[float]] = {until: [], "input_audio_buffer.speech_stopped": []}
    errors: list[str] = []
    async with connect(url, max_size=None) as ws:

        async def read() -> None:
            armed = until != AUDIO  # audio: only the first delta of each response counts
            async for raw in ws:
                event = json.loads(raw)
                kind = event["type"]
                if kind == "error":
                    errors.append(event["error"]["message"])
                if kind == "response.created":
                    armed = True
                if kind == "input_audio_buffer.speech_stopped":
                    got[kind].append(time.perf_counter())
                elif kind == until and armed:
                    got[kind].append(time.perf_counter())
                    armed = until != AUDIO

        reader = asyncio.create_task(read())
        began = time.perf_counter()
        for i, start in enumerate(range(0, len(data), step)):
            chunk = base64.b64encode(data[start : start + step]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            now = time.perf_counter()
            while len(sent_end) < len(ends) and (start + step) / 2 / RATE >= ends[len(sent_end)]:
                sent_end.append(now)
            await asyncio.sleep(max(0.0, began + (i + 1) * CHUNK_S - time.perf_counter()))
        deadline = time.perf_counter() + 60
        while len(got[until]) < len(ends) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        reader.cancel()
    return {
        "ends": sent_end,
        "until": got[until],
        "stopped": got["input_audio_buffer.speech_stopped"],
        "errors": errors,
    }


def _sessions(base: str, query: str, n: int, count: int, pause_s: float, until: str) -> dict:
    url = base.replace("http", "ws", 1) + "/v1/realtime" + query

    async def all_of() -> list[dict]:
        return await asyncio.gather(
            *(_session(url, _turns(k, count), pause_s, until) for k in range(n))
        )

    runs = asyncio.run(all_of())
    # a session whose turns were not all answered (or were split) is reported, not timed
    whole = [r for r in runs if len(r["until"]) == len(r["ends"]) == len(r["stopped"])]
    latency = [u - e for r in whole for e, u in zip(r["ends"], r["until"], strict=True)]
    asr = [u - s for r in whole for s, u in zip(r["stopped"], r["until"], strict=True)]
    errors = [e for r in runs for e in r["errors"]]
    if errors or len(whole) < len(runs):
        print(f"  {n} sessions: {len(runs) - len(whole)} incomplete; errors: {errors[:3]}")
    answered = sum(len(r["until"]) for r in runs)
    return {
        "latency": latency,
        "asr": asr,
        "incomplete": len(runs) - len(whole),
        "answered": f"{answered}/{sum(len(r['ends']) for r in runs)}",
    }


def _baseline(base: str, n: int, count: int) -> list[float]:
    """Each of ``n`` clients posts its turns at the cadence the sessions spoke them."""
    import httpx

    async def client(k: int, http: httpx.AsyncClient) -> list[float]:
        out = []
        await asyncio.sleep(0.5)
        for speech in _turns(k, count):
            await asyncio.sleep(speech.size / 16000)  # the turn is being spoken
            started = time.perf_counter()
            r = await http.post(
                "/v1/audio/transcriptions",
                files={"file": ("turn.wav", wav_bytes(speech, 16000))},
                data={"model": "whisper-1"},
            )
            r.raise_for_status()
            out.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, PAUSE_S - out[-1]))
        return out

    async def all_of() -> list[list[float]]:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            return await asyncio.gather(*(client(k, http) for k in range(n)))

    try:
        return [s for one in asyncio.run(all_of()) for s in one]
    except Exception as exc:
        raise BaselineFailed(f"plain transcription requests: {exc}") from exc


def _summary(seconds: list[float]) -> dict[str, Any]:
    """``summary``, or empty figures when no session kept up (all turns answered)."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None}
    return summary(seconds)


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = [1, 2, 4] if args.quick else [1, 2, 4, 8]
    turns = 2 if args.quick else 3
    one_replica = {"num_replicas": 1, "ray_actor_options": {"num_cpus": MODEL_THREADS}}
    config = derive_config(
        PORT,
        [
            {"name": "silero-vad", "task": "frames"},
            {"name": "whisper-tiny.en", "task": "seq2seq"},
            {"name": "piper-joe-medium", "task": "tts"},
        ],
        pipelines={"speech-to-speech": ["frames", "seq2seq", "tts"]},
        deployments={"seq2seq": one_replica, "frames": {"num_replicas": 1}, "tts": one_replica},
    )
    rows, s2s_rows, figures = [], [], {}
    with serve_cluster(config) as base:
        _sessions(base, "?intent=transcription", 1, 1, PAUSE_S, COMPLETED)  # warm-up
        for n in counts:
            print(f"  {n} transcription session(s)", flush=True)
            live = _sessions(base, "?intent=transcription", n, turns, PAUSE_S, COMPLETED)
            plain = _baseline(base, n, turns)
            lat, asr, req = _summary(live["latency"]), _summary(live["asr"]), summary(plain)
            rows.append(
                {
                    "sessions": n,
                    "turns": lat["n"],
                    "answered_within_60s": live["answered"],
                    "end_to_completed_p50_ms": lat["p50_ms"],
                    "end_to_completed_p95_ms": lat["p95_ms"],
                    "stopped_to_completed_p50_ms": asr["p50_ms"],
                    "plain_request_p50_ms": req["p50_ms"],
                    "plain_request_p95_ms": req["p95_ms"],
                    "realtime_over_plain_p50": lat["p50_ms"]
                    and ratio(lat["p50_ms"], req["p50_ms"]),
                }
            )
        for n in (1, 2):
            s2s = _sessions(base, "", n, turns, 5.0, AUDIO)
            first = _summary(s2s["latency"])
            s2s_rows.append(
                {
                    "sessions": n,
                    "turns": first["n"],
                    "end_to_first_audio_p50_ms": first["p50_ms"],
                    "end_to_first_audio_p95_ms": first["p95_ms"],
                }
            )
    under = [
        r["sessions"]
        for r in rows
        if r["end_to_completed_p95_ms"] is not None and r["end_to_completed_p95_ms"] < TARGET_P95_MS
    ]
    figures["largest_sessions_p95_under_1s"] = max(under) if under else 0
    figures["realtime_over_plain_p50_at_1"] = rows[0]["realtime_over_plain_p50"]
    figures["sessions_answering_every_turn"] = max(
        (r["sessions"] for r in rows if r["turns"] == r["sessions"] * turns), default=0
    )
    print_table(f"transcription sessions, {turns} turns each, silence 500 ms", rows)
    print_table("speech-to-speech (echo), end of speech to first reply audio", s2s_rows)
    print_table("figures", [figures])
    return {"rows": rows, "speech_to_speech": s2s_rows, "figures": figures}


if __name__ == "__main__":
    main("realtime", run, __doc__)
