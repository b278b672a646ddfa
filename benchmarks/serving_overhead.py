"""Serving overhead: the same clips through HTTP -> router -> seq2seq vs a direct engine call.

The engine is the default one: Whisper tiny.en on CTranslate2 (int8). Requests are
sequential (concurrency 1) and alternate served / direct clip by clip, so
both sides see the same machine load. ``/healthz`` (no model) isolates the HTTP + router
cost. The overhead ratio is served p50 / direct p50.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness import (
    MODEL_THREADS,
    ct2_whisper,
    derive_config,
    main,
    print_table,
    ratio,
    run_load,
    serve_cluster,
    summary,
    timed,
    transcribe_direct,
    wav_bytes,
)

PORT = 8201
MODEL = "whisper-tiny.en-ct2"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from speech import SENTENCES, synthesize

    clips = [synthesize(s) for s in SENTENCES[: 3 if args.quick else len(SENTENCES)]]
    rounds = 2 if args.quick else 3
    engine = ct2_whisper(MODEL, clips[0])

    config = derive_config(
        PORT,
        [{"name": MODEL, "task": "seq2seq"}],
        deployments={
            "seq2seq": {"num_replicas": 1, "ray_actor_options": {"num_cpus": MODEL_THREADS}}
        },
    )
    direct, served, texts = [], [], set()
    with serve_cluster(config) as base:
        noop = run_load(base, lambda i: {"method": "GET", "url": "/healthz"}, 20, 1)  # warm-up
        noop = run_load(base, lambda i: {"method": "GET", "url": "/healthz"}, 100, 1)
        for k in range(rounds * len(clips) + 1):
            clip = clips[k % len(clips)]
            upload = wav_bytes(clip, 16000)
            one = run_load(
                base,
                lambda i, upload=upload: {
                    "method": "POST",
                    "url": "/v1/seq2seq",
                    "files": {"file": ("clip.wav", upload, "audio/wav")},
                },
                1,
                1,
            )
            seconds, out = timed(lambda clip=clip: transcribe_direct(engine, clip))
            if k == 0:
                continue  # the first served request also fetches the model's sampling rate
            served.append(one.latencies[0])
            direct.append(seconds)
            texts.add(json.loads(one.bodies[0])["text"] == out.text)

    rows = [
        {"path": "direct CT2WhisperEngine.forward", **summary(direct)},
        {"path": "HTTP -> router -> seq2seq", **summary(served)},
        {"path": "HTTP -> router (/healthz)", **summary(noop.latencies)},
    ]
    d50, s50 = rows[0]["p50_ms"], rows[1]["p50_ms"]
    ratios = {
        "served_over_direct_p50": ratio(s50, d50),
        "served_over_direct_p95": ratio(rows[1]["p95_ms"], rows[0]["p95_ms"]),
        "overhead_ms_p50": round(s50 - d50, 1),
        "overhead_pct_of_model_p50": round(100 * (s50 - d50) / d50, 1),
        "http_router_ms_p50": rows[2]["p50_ms"],
        "same_text_served_and_direct": texts == {True},
    }
    print_table(f"serving overhead, {MODEL}, {len(clips)} clips x {rounds}, concurrency 1", rows)
    print_table("ratios", [ratios])
    return {"model": MODEL, "threads": MODEL_THREADS, "rows": rows, "ratios": ratios}


if __name__ == "__main__":
    main("serving_overhead", run, __doc__)
