"""Overload: how fast refusals come back, and how long accepted requests wait, at a bound.

The ``faults`` app of the tests (tests/fault_engines.py: a transcriber at 0.25 s an
item in batches of 4, two replicas, 8 items/s, ``limits.max_queue_seconds`` 2 s) gets bursts
of 1-second clips all at once. Baseline: the same app with the time bound off
(``max_queue_seconds: null``), where only Serve's count bound refuses. Reported: answer
time of refused requests, latency of accepted ones, and how many of each.

    .venv/bin/python benchmarks/overload.py [--quick]
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import harness
import httpx
import soundfile as sf
from ray.serve.schema import ServeDeploySchema

PORT = 8298


def config(bound: float | None) -> ServeDeploySchema:
    from fault_engines import faults_app

    app = faults_app(route_prefix="/")
    app["args"]["limits"]["max_queue_seconds"] = bound
    return ServeDeploySchema.model_validate(
        {"http_options": {"host": "127.0.0.1", "port": PORT}, "applications": [app]}
    )


def clip() -> bytes:
    from fault_engines import RATE, sine

    buf = io.BytesIO()
    sf.write(buf, sine(1.0), RATE, format="WAV", subtype="FLOAT")
    return buf.getvalue()


async def burst(base: str, data: bytes, size: int) -> list[tuple[int, float]]:
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:

        async def one() -> tuple[int, float]:
            started = time.perf_counter()
            r = await client.post("/v1/seq2seq", files={"file": ("a.wav", data)})
            return r.status_code, time.perf_counter() - started

        return await asyncio.gather(*(one() for _ in range(size)))


def measure(bound: float | None, sizes: list[int]) -> list[dict[str, Any]]:
    data = clip()
    rows = []
    with harness.serve_cluster(config(bound)) as base:
        for _ in range(3):  # the replicas measure their service time
            httpx.post(f"{base}/v1/seq2seq", files={"file": ("a.wav", data)}, timeout=60)
        for size in sizes:
            time.sleep(3)  # the queues are empty again
            results = asyncio.run(burst(base, data, size))
            accepted = [t for s, t in results if s == 200]
            refused = [t for s, t in results if s == 503]
            rows.append(
                {
                    "bound_s": bound,
                    "burst": size,
                    "accepted": len(accepted),
                    "refused": len(refused),
                    "other": len(results) - len(accepted) - len(refused),
                    "accepted_p50_s": _pct(accepted, 50),
                    "accepted_max_s": _pct(accepted, 100),
                    "refused_p50_s": _pct(refused, 50),
                    "refused_max_s": _pct(refused, 100),
                }
            )
    return rows


def _pct(values: list[float], q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(values, q)), 3) if values else None


def run(args) -> dict[str, Any]:
    sizes = [40, 120] if args.quick else [40, 120, 240]
    bounded = measure(2.0, sizes)
    try:
        unbounded = measure(None, sizes)
    except Exception as exc:
        raise harness.BaselineFailed(str(exc)) from exc
    harness.print_table("overload bursts", bounded + unbounded)
    last_b, last_u = bounded[-1], unbounded[-1]
    return {
        "rows": bounded + unbounded,
        "ratios": {
            "accepted_max_bounded_over_unbounded": harness.ratio(
                last_b["accepted_max_s"] or 0, last_u["accepted_max_s"] or 0
            ),
        },
    }


if __name__ == "__main__":
    harness.main("overload", run, __doc__)
