"""What every benchmark shares: a local Serve cluster on a derived config, a bounded HTTP
load generator, percentiles, a printed table, JSON results and a machine description.

Benchmarks run as scripts (``python benchmarks/<name>.py [--quick]``); each measures its
baseline in the same run and exits 2 when the baseline could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
# tests/speech.py holds the Piper test speech with its true text
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("SONARAY_MODEL_STORE", str(REPO / "model_store"))

# Threads a model gets, served or direct: the served replica's num_cpus, so the two match.
MODEL_THREADS = 1
# Logical CPUs for the local Ray: enough for every replica here; torch threads follow
# each replica's num_cpus, not this number.
RAY_CPUS = 8


class BaselineFailed(RuntimeError):
    """The baseline of a comparison could not run, so no ratio can be reported."""


# --- clusters -------------------------------------------------------------------------


def derive_config(
    port: int,
    models: list[dict[str, Any]],
    *,
    pipelines: dict[str, list[str]] | None = None,
    deployments: dict[str, dict[str, Any]] | None = None,
    source: str = "serve_config.yaml",
    time_bound: bool = False,
):
    """``source`` with only ``models`` (and ``pipelines``), on ``port``, each deployment's
    options from the file updated by ``deployments[name]``. Without ``time_bound`` the
    admission's queue-time bound is off: a benchmark that drives a chosen concurrency
    measures speed, not refusals (the soak and the overload benchmark keep it)."""
    from deployments.config import SonarayArgs
    from deployments.launch import load_config

    config = load_config(REPO / source)
    config.http_options.host = "127.0.0.1"
    config.http_options.port = port
    app = config.applications[0]
    args = dict(app.args)
    args["models"] = models
    args["pipelines"] = pipelines or {}
    if (args.get("realtime") or {}).get("pipeline") not in (None, *args["pipelines"]):
        args.pop("realtime")  # its pipeline is not served here
    if not time_bound:
        args["limits"] = {**args.get("limits", {}), "max_queue_seconds": None}
    tasks = set(SonarayArgs.model_validate(args).tasks)
    app.args = args
    kept = []
    for dep in app.deployments:
        if dep.name != "Router" and dep.name not in tasks:
            continue
        raw = dep.model_dump(exclude_unset=True)
        raw.update((deployments or {}).get(dep.name, {}))
        if "num_replicas" in raw:
            raw.pop("autoscaling_config", None)
        kept.append(type(dep).model_validate(raw))
    app.deployments = kept
    return config


def build_models(names: list[str]) -> None:
    """Build the store entries the benchmark serves (no-op when already built)."""
    from deployments.models import store

    for name in names:
        store.build_one(name)


def model_path(name: str) -> Path:
    from deployments.models import store

    store.build_one(name)
    return store.store_root() / name


def transcribe_direct(engine, clip: np.ndarray):
    """One 16 kHz clip through a seq2seq engine in this process, default options."""
    from sonaray_client.types import TranscriptionOptions

    from deployments.protocol import AudioItem

    return engine.forward([AudioItem(clip, 16000, TranscriptionOptions())])[0]


def ct2_whisper(name: str, warm_up_clip: np.ndarray):
    """The CTranslate2 Whisper engine of store model ``name`` in this process, as a replica
    loads it (``MODEL_THREADS`` threads), warmed up on one clip; BaselineFailed if not."""
    from deployments.tasks.registry import load_engine

    try:
        engine = load_engine(
            "seq2seq", "ctranslate2", model_path(name), name=name, num_threads=MODEL_THREADS
        )
        transcribe_direct(engine, warm_up_clip)
    except Exception as exc:
        raise BaselineFailed(f"direct CT2WhisperEngine ({name}): {exc}") from exc
    return engine


@contextlib.contextmanager
def serve_cluster(config) -> Iterator[str]:
    """Start a local Ray, deploy ``config``, yield the base URL; always shut both down."""
    import ray
    from ray import serve

    from deployments.launch import deploy_config

    ray.init(
        address="local",  # a fresh cluster, never one someone started with `ray start`
        num_cpus=RAY_CPUS,
        include_dashboard=False,
        log_to_driver=False,
        namespace="serve",
        runtime_env={"env_vars": {"SONARAY_MODEL_STORE": os.environ["SONARAY_MODEL_STORE"]}},
    )
    try:
        yield deploy_config(config, timeout_s=900, quiet=True)
    finally:
        serve.shutdown()
        ray.shutdown()


def redeploy(config) -> None:
    """Apply a changed config to the running cluster (user_config changes apply in place)."""
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    from deployments.launch import deploy_config

    deploy_config(config, timeout_s=900, quiet=True)
    # the status can still read RUNNING from before the update was picked up
    time.sleep(2)
    while any(a.status != ApplicationStatus.RUNNING for a in serve.status().applications.values()):
        time.sleep(0.5)


def deployment_stats(name: str, app: str = "sonaray") -> list[dict]:
    """``stats()`` of one deployment's replica (batch sizes seen)."""
    from ray import serve

    handle = serve.get_deployment_handle(name, app_name=app)
    return handle.options(method_name="stats").remote().result(timeout_s=60)


# --- load -----------------------------------------------------------------------------


@dataclass
class LoadResult:
    """Latencies (s) of answered requests, wall time of the whole run, and failures."""

    latencies: list[float] = field(default_factory=list)
    first_byte: list[float] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


# Builds the i-th request's httpx keyword arguments: method, url, json/files/data.
RequestFactory = Callable[[int], dict[str, Any]]


async def _load(base_url: str, make: RequestFactory, total: int, concurrency: int) -> LoadResult:
    result = LoadResult()
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=900, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                request = client.build_request(**make(i))
                start = time.perf_counter()
                response = await client.send(request, stream=True)
                chunks, first = [], None
                async for chunk in response.aiter_raw():
                    first = first or time.perf_counter()
                    chunks.append(chunk)
                end = time.perf_counter()
                await response.aclose()
                body = b"".join(chunks)
                if response.status_code != 200:
                    result.errors.append(f"{response.status_code}: {body[:300]!r}")
                    continue
                result.latencies.append(end - start)
                result.first_byte.append((first or end) - start)
                result.bodies.append(body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall = time.perf_counter() - started
    return result


def run_load(base_url: str, make: RequestFactory, total: int, concurrency: int) -> LoadResult:
    """Send ``total`` requests with at most ``concurrency`` in flight; raise if any failed."""
    result = asyncio.run(_load(base_url, make, total, concurrency))
    if result.errors:
        raise RuntimeError(f"{len(result.errors)} request(s) failed; first: {result.errors[0]}")
    return result


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# --- figures --------------------------------------------------------------------------


def summary(seconds: list[float]) -> dict[str, float]:
    """n, p50, p95 and mean of a list of durations, in milliseconds."""
    ms = np.asarray(seconds, dtype=float) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "mean_ms": round(float(ms.mean()), 1),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows (dicts with the same keys) as an aligned text table."""
    print(f"\n== {title}")
    if not rows:
        return
    columns = list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def machine() -> dict[str, Any]:
    """CPU model, core count and the versions that decide the figures."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("ray", "torch", "transformers", "ctranslate2", "faster-whisper", "onnxruntime"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "commit": commit,
        "versions": versions,
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, **payload}, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(REPO)}")
    return path


def main(name: str, run: Callable[[argparse.Namespace], dict[str, Any]], doc: str) -> None:
    """Parse ``--quick``, run, write ``results/<name>.json``; exit 2 if the baseline failed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips and requests")
    args = parser.parse_args()
    before = machine()
    started = time.perf_counter()
    try:
        figures = run(args)
    except BaselineFailed as exc:
        traceback.print_exc()
        print(f"\n{name}: baseline could not run: {exc}", file=sys.stderr)
        sys.exit(2)
    payload = {
        "quick": args.quick,
        "machine": {**before, "load_avg_1m_after": round(os.getloadavg()[0], 2)},
        "seconds": round(time.perf_counter() - started, 1),
        **figures,
    }
    write_json(name, payload)
