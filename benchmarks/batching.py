"""Cross-request batching: req/s, p50/p95 and mean batch at concurrency 1, 4, 16 with the
task deployment's batch queue (max_batch_size 8) vs max_batch_size 1, vs an offline
batched engine loop (the ceiling), and vs Ray Serve's ``@serve.batch`` on the same engine,
on Whisper tiny.en's CTranslate2 engine (the default).

One seq2seq replica with one thread serves the HTTP settings; the batch size is switched
live through the deployment's ``user_config`` between runs, so both see the same replica.
The ``@serve.batch`` baseline (``serve_batch_baseline.py``, the design the queue replaced,
with its shipped 20 ms wait) is a second one-thread replica of the same engine; both it
and the task deployment are then driven through Serve handles, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from harness import (
    MODEL_THREADS,
    REPO,
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
SERVE_BATCH_WAIT_S = 0.02  # the wait Sonaray shipped with @serve.batch


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


def _with_serve_batch_baseline(config):
    """``config`` plus the ``@serve.batch`` app, on the same engine and resources."""
    from ray.serve.schema import ServeApplicationSchema

    from deployments.models.catalog import CATALOG

    baseline = {
        "name": "servebatch",
        "route_prefix": "/servebatch",
        "import_path": "benchmarks.serve_batch_baseline:build",
        "args": {
            "task": "seq2seq",
            "engine": CATALOG[MODEL].engine,
            "path": str(model_path(MODEL)),
            "name": MODEL,
            "max_batch_size": BATCH,
            "wait_s": SERVE_BATCH_WAIT_S,
        },
        "deployments": [
            {
                "name": "ServeBatchEngine",
                "max_ongoing_requests": get_deployment_options("seq2seq")["max_ongoing_requests"],
                "ray_actor_options": {"num_cpus": MODEL_THREADS, "num_gpus": 0},
            }
        ],
    }
    config.applications.append(ServeApplicationSchema.model_validate(baseline))
    return config


async def _through_handle(app: str, deployment: str, total: int, concurrency: int) -> dict:
    """req/s and latencies of ``total`` clips sent to a deployment's handle, ``concurrency``
    at a time."""
    from ray import serve
    from sonaray_client.types import TranscriptionOptions

    from deployments.protocol import AudioItem

    handle = serve.get_deployment_handle(deployment, app_name=app)
    clips = _clips()
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            item = AudioItem(clips[i % len(clips)], 16000, TranscriptionOptions())
            started = time.perf_counter()
            await handle.remote(item)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"rps": round(total / (time.perf_counter() - started), 2), **summary(latencies)}


def _queue_vs_serve_batch(levels: dict[int, int]) -> list[dict[str, Any]]:
    """The task deployment's batch queue against ``@serve.batch``, both via handles."""
    rows = []
    for concurrency, total in levels.items():
        for app, deployment, setting in (
            ("sonaray", "seq2seq", f"batch queue (wait {WAIT_S * 1000:g} ms)"),
            (
                "servebatch",
                "ServeBatchEngine",
                f"@serve.batch (wait {SERVE_BATCH_WAIT_S * 1000:g} ms)",
            ),
        ):
            seen = len(deployment_stats(deployment, app)["batch_sizes"])
            result = asyncio.run(_through_handle(app, deployment, total, concurrency))
            batches = deployment_stats(deployment, app)["batch_sizes"][seen:]
            rows.append(
                {
                    "setting": setting,
                    "concurrency": concurrency,
                    **result,
                    "mean_batch": round(sum(batches) / max(1, len(batches)), 2),
                }
            )
    return rows


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
    # Ray's workers import the @serve.batch baseline app from the repository root; they
    # inherit the driver's environment (a runtime_env PYTHONPATH stops Serve's proxy).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )
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
        redeploy(_with_serve_batch_baseline(_config(BATCH)))
        _queue_vs_serve_batch({1: 2, 4: 4, 16: 16})  # warm-up of both
        versus = _queue_vs_serve_batch(levels)

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
    for c in levels:
        queue, serve_batch = (r for r in versus if r["concurrency"] == c)
        ratios[f"queue_over_serve_batch_rps_conc{c}"] = ratio(queue["rps"], serve_batch["rps"])
    print_table(f"batching, {MODEL}, one replica, {MODEL_THREADS} thread(s)", rows)
    print_table("offline engine loop (ceiling)", offline)
    print_table("batch queue vs @serve.batch, through handles", versus)
    print_table("ratios", [ratios])
    return {
        "model": MODEL,
        "threads": MODEL_THREADS,
        "rows": rows,
        "offline": offline,
        "queue_vs_serve_batch": versus,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main("batching", run, __doc__)
