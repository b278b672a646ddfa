"""Cross-request batching: req/s, p50/p95 and mean batch at concurrency 1, 4, 16 with the
task deployment's batch queue (max_batch_size 8) vs max_batch_size 1, and vs an offline
batched engine loop (the ceiling), on Whisper tiny.en's CTranslate2 engine (the default).

One seq2seq replica with one thread serves both settings; the batch size is switched live
through the deployment's ``user_config`` between runs, so both see the same replica.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from harness import (
    MODEL_THREADS,
    BaselineFailed,
    deployment_stats,
    derive_config,
    main,
    model_path,
    print_table,
    ratio,
    redeploy,
    run_load,
    serve_cluster,
    summary,
    wav_bytes,
)

from deployments.app import get_deployment_options

PORT = 8202
MODEL = "whisper-tiny.en-ct2"
BATCH = 8
# The shipped default, so the figures describe what users run.
WAIT_S = get_deployment_options("seq2seq")["user_config"]["batch_wait_timeout_s"]


def _config(max_batch_size: int):
    return derive_config(
        PORT,
        [{"name": MODEL, "task": "seq2seq"}],
        deployments={
            "seq2seq": {
                "num_replicas": 1,
                "ray_actor_options": {"num_cpus": MODEL_THREADS},
                "user_config": {"max_batch_size": max_batch_size, "batch_wait_timeout_s": WAIT_S},
            }
        },
    )


def _engine():
    from sonaray_client.types import TranscriptionOptions

    from deployments.models.catalog import CATALOG
    from deployments.protocol import AudioItem
    from deployments.tasks.registry import load_engine

    try:
        engine = load_engine(
            "seq2seq",
            CATALOG[MODEL].engine,
            str(model_path(MODEL)),
            name=MODEL,
            num_threads=MODEL_THREADS,
        )
        engine.forward([AudioItem(_clips()[0], 16000, TranscriptionOptions())])  # warm-up
    except Exception as exc:
        raise BaselineFailed(f"offline engine: {exc}") from exc
    return engine


def _clips() -> list:
    from speech import SENTENCES, synthesize

    return [synthesize(s) for s in SENTENCES]


def _offline(engine, total: int, batch: int) -> dict[str, Any]:
    """req/s of the engine alone over ``total`` clips in batches of ``batch``."""
    from sonaray_client.types import TranscriptionOptions

    from deployments.protocol import AudioItem

    clips = _clips()
    items = [AudioItem(clips[i % len(clips)], 16000, TranscriptionOptions()) for i in range(total)]
    started = time.perf_counter()
    for lo in range(0, total, batch):
        engine.forward(items[lo : lo + batch])
    wall = time.perf_counter() - started
    return {"setting": f"offline engine, batch {batch}", "rps": round(total / wall, 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    engine = _engine()
    uploads = [wav_bytes(c, 16000) for c in _clips()]
    levels = {1: 3, 4: 8, 16: 16} if args.quick else {1: 7, 4: 16, 16: 48}

    def request(i: int) -> dict[str, Any]:
        file = ("clip.wav", uploads[i % len(uploads)], "audio/wav")
        return {"method": "POST", "url": "/v1/seq2seq", "files": {"file": file}}

    rows: list[dict[str, Any]] = []
    with serve_cluster(_config(BATCH)) as base:
        run_load(base, request, 2, 1)  # warm-up
        for concurrency, total in levels.items():
            for size in (BATCH, 1):
                redeploy(_config(size))
                seen = len(deployment_stats("seq2seq")["batch_sizes"])
                result = run_load(base, request, total, concurrency)
                batches = deployment_stats("seq2seq")["batch_sizes"][seen:]
                rows.append(
                    {
                        "setting": f"served, max_batch_size {size}",
                        "concurrency": concurrency,
                        "rps": round(result.rps, 2),
                        **summary(result.latencies),
                        "mean_batch": round(sum(batches) / max(1, len(batches)), 2),
                    }
                )
        # while the replica idles, so the ceiling sees the same machine load
        offline = [_offline(engine, levels[16], 1), _offline(engine, levels[16], BATCH)]

    def rps(size: int, concurrency: int) -> float:
        return next(
            r["rps"]
            for r in rows
            if r["concurrency"] == concurrency and r["setting"].endswith(f" {size}")
        )

    ratios = {
        f"batch{BATCH}_over_batch1_rps_conc{c}": ratio(rps(BATCH, c), rps(1, c)) for c in levels
    }
    ratios["served_batch_over_offline_batch_rps_conc16"] = ratio(rps(BATCH, 16), offline[1]["rps"])
    ratios["offline_batch_over_offline_single_rps"] = ratio(offline[1]["rps"], offline[0]["rps"])
    print_table(f"batching, {MODEL}, one replica, {MODEL_THREADS} thread(s)", rows)
    print_table("offline engine loop (ceiling)", offline)
    print_table("ratios", [ratios])
    return {
        "model": MODEL,
        "threads": MODEL_THREADS,
        "rows": rows,
        "offline": offline,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main("batching", run, __doc__)
