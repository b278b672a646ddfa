"""Streaming: time to the first transcript delta over the time of the same request
unstreamed (a 2-minute recording and a 10-second clip), and time to the first audio byte
over the time to the whole response for a five-sentence text.

Whisper tiny.en, Silero VAD and the Piper voice, one thread each. Streamed and unstreamed
requests alternate, so both sides see the same machine.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
from harness import MODEL_THREADS, derive_config, main, print_table, ratio, serve_cluster, wav_bytes

PORT = 8207
ASR = "whisper-tiny.en"
TTS = "piper-joe-medium"


def _config():
    return derive_config(
        PORT,
        [
            {"name": ASR, "task": "seq2seq", "default": True},
            {"name": "silero-vad", "task": "frames"},
            {"name": TTS, "task": "tts"},
        ],
        deployments={
            name: {"num_replicas": 1, "ray_actor_options": {"num_cpus": MODEL_THREADS}}
            for name in ("seq2seq", "frames", "tts")
        },
    )


def _transcribe(client: httpx.Client, upload: bytes, stream: bool) -> tuple[float, float, str]:
    """(seconds to the first delta or the answer, seconds to the end, text)."""
    data = {"model": "whisper-1", **({"stream": "true"} if stream else {})}
    files = {"file": ("clip.wav", upload, "audio/wav")}
    start = time.perf_counter()
    first, text = None, ""
    with client.stream("POST", "/v1/audio/transcriptions", files=files, data=data) as response:
        response.raise_for_status()
        if not stream:
            text = json.loads(response.read())["text"]
        else:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "transcript.text.delta" and first is None:
                    first = time.perf_counter() - start
                if event["type"] == "transcript.text.done":
                    text = event["text"]
    end = time.perf_counter() - start
    return (first or end), end, text


def _speak(client: httpx.Client, text: str, fmt: str) -> tuple[float, float, int]:
    """(seconds to the first audio byte, seconds to the last, bytes)."""
    body = {"model": "tts-1", "input": text, "response_format": fmt}
    start = time.perf_counter()
    first, size = None, 0
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            first = first or time.perf_counter() - start
            size += len(chunk)
    end = time.perf_counter() - start
    return (first or end), end, size


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from speech import SENTENCES, long_clip

    reps = 2 if args.quick else 5
    clips = {
        "2 min": wav_bytes(long_clip(120.0)[0], 16000),
        "10 s": wav_bytes(long_clip(10.0)[0], 16000),
    }
    five = " ".join(SENTENCES[:5])
    rows, speech_rows = [], []
    with serve_cluster(_config()) as base, httpx.Client(base_url=base, timeout=900) as client:
        _transcribe(client, clips["10 s"], True)  # warm every path once
        _speak(client, five, "wav")
        for name, upload in clips.items():
            firsts, streamed_ends, plains = [], [], []
            for _ in range(reps):
                first, end, text = _transcribe(client, upload, True)
                _, plain, plain_text = _transcribe(client, upload, False)
                assert text == plain_text, (text, plain_text)
                firsts.append(first)
                streamed_ends.append(end)
                plains.append(plain)
            rows.append(
                {
                    "audio": name,
                    "first_delta_s": round(_median(firsts), 3),
                    "streamed_total_s": round(_median(streamed_ends), 3),
                    "unstreamed_s": round(_median(plains), 3),
                    "first_delta_over_unstreamed": ratio(_median(firsts), _median(plains)),
                }
            )
        firsts, ends, wholes = [], [], []
        for _ in range(reps):
            first, end, _ = _speak(client, five, "wav")
            _, whole, _ = _speak(client, five, "flac")  # flac is sent whole: the baseline
            firsts.append(first)
            ends.append(end)
            wholes.append(whole)
        speech_rows.append(
            {
                "text": "five sentences",
                "first_byte_s": round(_median(firsts), 3),
                "streamed_total_s": round(_median(ends), 3),
                "unstreamed_s": round(_median(wholes), 3),
                "first_byte_over_total": ratio(_median(firsts), _median(ends)),
                "first_byte_over_unstreamed": ratio(_median(firsts), _median(wholes)),
            }
        )
    print_table(f"streamed transcription, {ASR}, median of {reps}", rows)
    print_table(f"streamed speech, {TTS}, median of {reps}", speech_rows)
    return {"reps": reps, "transcription": rows, "speech": speech_rows}


if __name__ == "__main__":
    main("streaming", run, __doc__)
