"""Long audio scale-out: a recording of Piper sentences (10 min; 2 min with --quick)
through ``/v1/pipelines/transcribe-long`` (Silero VAD -> Whisper tiny.en chunks fanned out,
CTranslate2 engine) with 1 vs 2 seq2seq replicas; speed-up and WER against the known text.

Each replica has one thread, so on a 2-core machine two replicas can at best double the
speed, minus what VAD, the router and the load generator take.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from harness import (
    MODEL_THREADS,
    BaselineFailed,
    derive_config,
    main,
    print_table,
    ratio,
    redeploy,
    run_load,
    serve_cluster,
    wav_bytes,
)

PORT = 8204
MODEL = "whisper-tiny.en-ct2"


def _config(replicas: int):
    return derive_config(
        PORT,
        [
            {"name": MODEL, "task": "seq2seq", "default": True},
            {"name": "silero-vad", "task": "frames"},
        ],
        pipelines={"transcribe-long": ["frames", "seq2seq"]},
        deployments={
            "seq2seq": {
                "num_replicas": replicas,
                "ray_actor_options": {"num_cpus": MODEL_THREADS},
            },
            "frames": {"num_replicas": 1},
        },
    )


def _wer(hypothesis: str, truth: str) -> float:
    import jiwer

    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())

    return round(jiwer.wer(norm(truth), norm(hypothesis)), 4)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from speech import long_clip

    seconds = 120.0 if args.quick else 600.0
    audio, truth = long_clip(seconds)
    text = " ".join(t for _, _, t in truth)
    upload = wav_bytes(audio, 16000)

    def request(i: int) -> dict[str, Any]:
        file = ("recording.wav", upload, "audio/wav")
        return {"method": "POST", "url": "/v1/pipelines/transcribe-long", "files": {"file": file}}

    warm_up = wav_bytes(audio[: 60 * 16000], 16000)

    def warm(i: int) -> dict[str, Any]:
        file = ("warm-up.wav", warm_up, "audio/wav")
        return {"method": "POST", "url": "/v1/pipelines/transcribe-long", "files": {"file": file}}

    # The machine's speed drifts within minutes: the two settings alternate over rounds,
    # each after a warm-up request that reaches every replica, and the walls are summed.
    rounds = 1 if args.quick else 2
    walls: dict[int, float] = {1: 0.0, 2: 0.0}
    bodies: dict[int, dict] = {}
    with serve_cluster(_config(1)) as base:
        for replicas in [1, 2] * rounds:
            redeploy(_config(replicas))
            run_load(base, warm, 2, 2)
            try:
                result = run_load(base, request, 1, 1)
            except RuntimeError as exc:
                if replicas == 1:
                    raise BaselineFailed(f"one replica: {exc}") from exc
                raise
            walls[replicas] += result.wall
            bodies.setdefault(replicas, json.loads(result.bodies[0]))
    rows, texts = [], []
    for replicas, body in sorted(bodies.items()):
        texts.append(body["transcription"]["text"])
        rows.append(
            {
                "seq2seq_replicas": replicas,
                "rounds": rounds,
                "wall_s": round(walls[replicas] / rounds, 2),
                "x_realtime": round(seconds * rounds / walls[replicas], 2),
                "wer": _wer(body["transcription"]["text"], text),
                "vad_segments": len(body.get("segments") or []),
            }
        )
    ratios = {"speedup_2_over_1": ratio(rows[0]["wall_s"], rows[1]["wall_s"])}
    print_table(f"long audio, {seconds:.0f} s, {len(truth)} sentences, {MODEL}", rows)
    print_table("ratios", [ratios])
    return {
        "model": MODEL,
        "audio_seconds": seconds,
        "rows": rows,
        "ratios": ratios,
        "truth": text,
        "transcripts": texts,
    }


if __name__ == "__main__":
    main("long_audio", run, __doc__)
