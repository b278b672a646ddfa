"""Soak: mixed load on a local multi-node cluster while replicas, the Router and a node die.

A head node (the Router, the LoadBoard, the only HTTP proxy) and two worker nodes (the
task replicas) run the default real models: Whisper tiny.en, Silero VAD, the Piper voice.
Client loops send short and long transcriptions, TTS, the speech-to-speech pipeline, bad
inputs, streamed transcriptions and streamed speech (OpenAI routes, SSE), and SDK calls;
like the SDK they honour a refusal's Retry-After. On a schedule the soak kills a task
replica, the Router replica, and a whole worker node (then adds a fresh one, as
Kubernetes would). It reports requests sent / answered / lost (sent, and no HTTP answer:
must be 0), streams cut mid-way (the Router serving them was killed: a failed answer),
errors by status and cause, p50/p95 latency per minute, per kill the refusals by the time
bound, the other failed answers and the recovery time (until the last of those), and the
memory of each replica over time: its private memory growing past 10 % after warm-up is
flagged as a leak (RSS is shown too; it also counts shared object-store pages); writes
results/soak.json and results/soak.png.

    .venv/bin/python benchmarks/soak.py --quick     # ~3 minutes of load
    .venv/bin/python benchmarks/soak.py             # 20 minutes
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import harness
import httpx
import numpy as np

PORT = 8297
HEAD, WORKER = "soak_head", "soak_worker"
LEAK_GROWTH = 0.10
CLIENTS = 6
SDK_CLIENTS = 2
# (share of requests, kind); bad inputs expect a 400, everything else a 200.
MIX = [
    (0.3, "short"),
    (0.1, "long"),
    (0.2, "tts"),
    (0.1, "pipeline"),
    (0.1, "bad"),
    (0.1, "stream_asr"),
    (0.1, "stream_tts"),
]
# The event that ends each streamed kind when it completes.
DONE_EVENT = {"stream_asr": "transcript.text.done", "stream_tts": "speech.audio.done"}


@dataclass
class Outcome:
    kind: str
    sent: float  # seconds since the load started
    done: float
    status: int | None  # None: no HTTP answer (lost); a stream cut mid-way is 200, "stream cut"
    cause: str  # error code from the envelope or error event, or the transport error

    @property
    def ok(self) -> bool:
        return self.status == expected(self.kind) and (self.kind == "bad" or not self.cause)


def cluster_config():
    models = [
        {"name": "whisper-tiny.en", "task": "seq2seq", "default": True},
        {"name": "silero-vad", "task": "frames"},
        {"name": "piper-joe-medium", "task": "tts"},
    ]
    on_worker = {"num_gpus": 0, "resources": {WORKER: 1}}
    config = harness.derive_config(
        PORT,
        models,
        pipelines={"speech-to-speech": ["frames", "seq2seq", "tts"]},
        time_bound=True,
        deployments={
            "Router": {"ray_actor_options": {"num_cpus": 0.25, "resources": {HEAD: 1}}},
            "seq2seq": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 1, **on_worker}},
            "frames": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.25, **on_worker}},
            "tts": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.5, **on_worker}},
        },
    )
    config.proxy_location = "HeadOnly"  # one machine: one port
    app = config.applications[0]
    board = type(app.deployments[0]).model_validate(
        {"name": "LoadBoard", "ray_actor_options": {"num_cpus": 0, "resources": {HEAD: 1}}}
    )
    app.deployments.append(board)
    return config


def requests_by_kind() -> dict[str, Any]:
    from speech import SENTENCES, long_clip, synthesize

    short = harness.wav_bytes(synthesize(SENTENCES[0]), 16000)
    long_audio, _ = long_clip(45.0)
    return {
        "short": ("/v1/seq2seq", {"files": {"file": ("a.wav", short)}}),
        "long": (
            "/v1/seq2seq",
            {"files": {"file": ("a.wav", harness.wav_bytes(long_audio, 16000))}},
        ),
        "tts": ("/v1/tts", {"json": {"input": SENTENCES[1], "response_format": "wav"}}),
        "pipeline": ("/v1/pipelines/speech-to-speech", {"files": {"file": ("a.wav", short)}}),
        "bad": ("/v1/seq2seq", {"files": {"file": ("a.wav", b"RIFF not really audio")}}),
        "stream_asr": (
            "/v1/audio/transcriptions",
            {
                "files": {"file": ("long.wav", harness.wav_bytes(long_audio, 16000))},
                "data": {"model": "whisper-1", "stream": "true"},
            },
        ),
        "stream_tts": (
            "/v1/audio/speech",
            {
                "json": {
                    "model": "tts-1",
                    "voice": "alloy",
                    "input": f"{SENTENCES[1]} {SENTENCES[2]}",
                    "response_format": "pcm",
                    "stream_format": "sse",
                }
            },
        ),
        "sdk": short,
    }


def expected(kind: str) -> int:
    return 400 if kind == "bad" else 200


async def client_loop(base: str, reqs: dict, out: list[Outcome], t0: float, until: float):
    kinds, weights = zip(*[(k, w) for w, k in MIX], strict=True)
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        while time.monotonic() < until:
            kind = random.choices(kinds, weights)[0]
            path, body = reqs[kind]
            sent = time.monotonic() - t0
            retry_after = 0.0
            try:
                if kind in DONE_EVENT:
                    status, cause, retry_after = await _streamed(http, path, body, DONE_EVENT[kind])
                else:
                    r = await http.post(path, **body)
                    status = r.status_code
                    cause = "" if status < 400 else _code(r)
                    retry_after = _retry_after(r)
            except httpx.TransportError as exc:
                status, cause = None, type(exc).__name__
            out.append(Outcome(kind, sent, time.monotonic() - t0, status, cause))
            # A polite client, like the SDK: a refusal's Retry-After is honoured (capped),
            # so the load stays near what the cluster serves instead of spinning on 503s.
            await asyncio.sleep(min(retry_after, 5.0))


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", 0))
    except ValueError:
        return 0.0


async def _streamed(http: httpx.AsyncClient, path: str, body: dict, done: str):
    """(status, cause, retry-after) of one SSE request read to its end. A 200 stream must
    end with its done event or an ``error`` event; a connection that closes mid-stream
    (its producer, the Router, was killed) is a failed answer, cause ``stream cut``: the
    client sees the broken transfer at once, but got no status for it."""
    async with http.stream("POST", path, **body) as r:
        if r.status_code >= 400:
            await r.aread()
            return r.status_code, _code(r), _retry_after(r)
        last = None
        try:
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    last = json.loads(line.removeprefix("data:"))
        except httpx.RemoteProtocolError:
            return 200, "stream cut", 0.0
    if last is not None and last.get("type") == done:
        return 200, "", 0.0
    if last is not None and last.get("type") == "error":
        return 200, f"error event: {last['error'].get('code') or last['error'].get('type')}", 0.0
    return 200, "stream cut", 0.0


async def sdk_loop(base: str, clip: bytes, out: list[Outcome], t0: float, until: float):
    from sonaray_client import AsyncSonaray, errors

    async with AsyncSonaray(base_url=base, timeout=120, max_retries=2) as client:
        while time.monotonic() < until:
            sent = time.monotonic() - t0
            try:
                await client.transcribe(clip)
                status, cause = 200, ""
            except errors.APIStatusError as exc:
                status, cause = exc.status_code, exc.code or type(exc).__name__
            except errors.APIConnectionError as exc:
                status, cause = None, type(exc).__name__
            out.append(Outcome("sdk", sent, time.monotonic() - t0, status, cause))


def _code(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["code"] or str(response.status_code)
    except Exception:
        return response.text[:40]


# --- faults ---------------------------------------------------------------------------


def _replica_actor(deployment: str):
    import ray

    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("SERVE_REPLICA::") and f"#{deployment}#" in a["name"]
    ]
    return ray.get_actor(random.choice(names), namespace="serve")


def kill_replica(deployment: str) -> str:
    import ray

    ray.kill(_replica_actor(deployment), no_restart=True)
    return f"killed a {deployment} replica"


def kill_worker_node(cluster, workers: list) -> str:
    """Remove the worker hosting the most task replicas, then add a fresh one."""
    snapshot = board()
    busy = Counter(r.node_id for r in snapshot.reports if r.task != "Router")
    victim = max(workers, key=lambda n: busy.get(n.node_id, 0))
    cluster.remove_node(victim, allow_graceful=False)
    workers.remove(victim)
    workers.append(cluster.add_node(num_cpus=3, resources={WORKER: 1000}))
    return f"removed worker node {victim.node_id[:8]} ({busy.get(victim.node_id, 0)} replicas)"


def board():
    from ray import serve

    handle = serve.get_deployment_handle("LoadBoard", app_name="sonaray")
    return handle.snapshot.remote().result(timeout_s=30)


def sample_memory(samples: list[dict], at: float) -> None:
    try:
        snapshot = board()
    except Exception as exc:  # the board itself may be moving after a kill
        print(f"  memory sample skipped: {type(exc).__name__}", file=sys.stderr)
        return
    for r in snapshot.reports:
        samples.append(
            {
                "t": at,
                "replica": f"{r.task}:{r.replica[:8]}",
                "rss": r.rss_bytes,
                "private": r.private_bytes,
            }
        )


def faults_and_memory(cluster, workers, plan, kills, samples, t0: float, until: float) -> None:
    """The main thread's part (Ray adds nodes only from it): kills on schedule, and the
    memory of every replica every 5 s."""
    plan = list(plan)
    next_sample = t0
    while time.monotonic() < until:
        now = time.monotonic()
        if plan and now - t0 >= plan[0][0]:
            _, what = plan.pop(0)
            # The moment the kill starts (to the ms: rounded up, it could pass answers the
            # kill failed): answers failed by it come after this, even the ones that come
            # back while the kill call is still returning.
            moment = round(time.monotonic() - t0, 3)
            note = kill_worker_node(cluster, workers) if what == "node" else kill_replica(what)
            kills.append({"t": moment, "what": what, "note": note})
            print(f"  t={moment:6.1f}s {note}")
        if now >= next_sample:
            sample_memory(samples, round(now - t0, 1))
            next_sample = now + 5
        time.sleep(0.5)


# --- figures --------------------------------------------------------------------------


def per_minute(outcomes: list[Outcome]) -> list[dict]:
    rows = []
    by_minute = defaultdict(list)
    for o in outcomes:
        by_minute[int(o.sent // 60)].append(o)
    for minute in sorted(by_minute):
        ok = [o.done - o.sent for o in by_minute[minute] if o.ok]
        rows.append(
            {
                "minute": minute,
                "sent": len(by_minute[minute]),
                "ok": len(ok),
                "p50_s": round(float(np.percentile(ok, 50)), 2) if ok else None,
                "p95_s": round(float(np.percentile(ok, 95)), 2) if ok else None,
            }
        )
    return rows


REFUSED = {"queue_full", "deadline_unmeetable"}  # the time bound answering at once


def recoveries(outcomes: list[Outcome], kills: list[dict], window_s: float = 90) -> list[dict]:
    """Per kill, over the answers in the window after it: refusals by the time bound
    (503 ``queue_full``: the admission doing its job while capacity is short), other
    failed answers, and when the last of those came (the time the cluster took to serve
    every accepted request again)."""
    rows = []
    for i, kill in enumerate(kills):
        end = kills[i + 1]["t"] if i + 1 < len(kills) else kill["t"] + window_s
        bad = [
            o for o in outcomes if kill["t"] <= o.done < min(end, kill["t"] + window_s) and not o.ok
        ]
        failed = [o for o in bad if o.cause not in REFUSED]
        last = max((o.done for o in failed), default=kill["t"])
        rows.append(
            {
                **kill,
                "refused": len(bad) - len(failed),
                "failed_answers": len(failed),
                "recovery_s": round(last - kill["t"], 1),
                "causes": dict(Counter(f"{o.status} {o.cause}" for o in failed)),
            }
        )
    return rows


def _ends(points: list[tuple], column: int) -> tuple[float, float]:
    """The median of ``column`` over the first and the last minute (12 samples) of points."""
    window = max(1, min(12, len(points) // 4))
    values = [p[column] for p in points]
    return float(np.median(values[:window])), float(np.median(values[-window:]))


def leaks(samples: list[dict], warm_up_s: float, min_span_s: float) -> list[dict]:
    """Memory growth per replica from just after its warm-up to its end; growth of its
    private memory past LEAK_GROWTH is flagged. Each end is the median of a minute of
    samples (one every 5 s), so one sample taken mid-batch does not decide it.

    RSS is reported too, but does not decide: it also counts the object-store pages a
    replica has read arguments from (shared memory), which grow until the replica has
    touched the store's working set, leak or not.
    """
    series = defaultdict(list)
    for s in samples:
        series[s["replica"]].append((s["t"], s["rss"], s["private"]))
    rows = []
    for replica, points in sorted(series.items()):
        first_t = points[0][0]
        later = [p for p in points if p[0] >= first_t + warm_up_s and p[2]]
        if len(later) < 2 or later[-1][0] - later[0][0] < min_span_s:
            continue
        (rss_start, rss_end), (start, end) = _ends(later, 1), _ends(later, 2)
        growth = end / start - 1
        rows.append(
            {
                "replica": replica,
                "private_mb_after_warm_up": round(start / 2**20),
                "private_mb_end": round(end / 2**20),
                "growth_pct": round(100 * growth, 1),
                "rss_mb_after_warm_up": round(rss_start / 2**20),
                "rss_mb_end": round(rss_end / 2**20),
                "rss_growth_pct": round(100 * (rss_end / rss_start - 1), 1),
                "leak": growth > LEAK_GROWTH,
            }
        )
    return rows


def plot(outcomes: list[Outcome], samples: list[dict], kills: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for kind in sorted({o.kind for o in outcomes}):
        ok = [(o.sent, o.done - o.sent) for o in outcomes if o.kind == kind and o.ok]
        if ok:
            top.scatter(*zip(*ok, strict=True), s=6, label=kind)
    for label, refused, color in (("refused (time bound)", True, "grey"), ("failed", False, "red")):
        bad = [
            (o.sent, o.done - o.sent)
            for o in outcomes
            if not o.ok and (o.cause in REFUSED) == refused
        ]
        if bad:
            top.scatter(*zip(*bad, strict=True), s=14, marker="x", color=color, label=label)
    top.set_ylabel("latency (s)")
    top.legend(fontsize=7, ncol=4)
    series = defaultdict(list)
    for s in samples:
        series[s["replica"]].append((s["t"], s["private"] / 2**20))
    for replica, points in sorted(series.items()):
        bottom.plot(*zip(*points, strict=True), label=replica, linewidth=1)
    bottom.set_ylabel("private memory (MiB)")
    bottom.set_xlabel("seconds since load started")
    bottom.legend(fontsize=6, ncol=3)
    for kill in kills:
        for ax in (top, bottom):
            ax.axvline(kill["t"], color="grey", linestyle="--", linewidth=0.8)
        top.annotate(
            kill["what"], (kill["t"], top.get_ylim()[1]), fontsize=7, rotation=90, va="top"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# --- the run --------------------------------------------------------------------------


def run(args) -> dict[str, Any]:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from deployments.launch import deploy_config

    duration = 180.0 if args.quick else 1200.0
    every = duration / 4
    plan = [(every, "seq2seq"), (2 * every, "Router"), (3 * every, "node")]
    if not args.quick:  # each fault twice over the long run
        plan = [(every * i / 2, w) for i, w in enumerate(["seq2seq", "Router", "node"] * 2, 1)]
    harness.build_models(["whisper-tiny.en", "silero-vad", "piper-joe-medium"])
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {HEAD: 1000}, "include_dashboard": False},
    )
    workers = [cluster.add_node(num_cpus=3, resources={WORKER: 1000}) for _ in range(2)]
    try:
        ray.init(address=cluster.address, namespace="serve", log_to_driver=False)
        started = time.perf_counter()
        base = deploy_config(cluster_config(), timeout_s=900, quiet=True)
        print(f"cluster up in {time.perf_counter() - started:.0f}s; load for {duration:.0f}s")
        reqs = requests_by_kind()
        outcomes: list[Outcome] = []
        samples: list[dict] = []
        kills: list[dict] = []

        t0 = time.monotonic()
        until = t0 + duration

        async def load():
            await asyncio.gather(
                *(client_loop(base, reqs, outcomes, t0, until) for _ in range(CLIENTS)),
                *(sdk_loop(base, reqs["sdk"], outcomes, t0, until) for _ in range(SDK_CLIENTS)),
            )

        clients = threading.Thread(target=asyncio.run, args=(load(),))
        clients.start()
        faults_and_memory(cluster, workers, plan, kills, samples, t0, until)
        clients.join()
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()

    answered = [o for o in outcomes if o.status is not None]
    lost = [o for o in outcomes if o.status is None]
    cut = [o for o in outcomes if o.cause == "stream cut"]
    errors = Counter(f"{o.status} {o.cause}" for o in outcomes if not o.ok)
    minutes = per_minute(outcomes)
    recovery = recoveries(outcomes, kills)
    memory = leaks(samples, warm_up_s=60 if args.quick else 180, min_span_s=30)
    harness.print_table("per minute", minutes)
    harness.print_table(
        "after each kill", [{k: v for k, v in r.items() if k != "causes"} for r in recovery]
    )
    harness.print_table("memory per replica (MiB)", memory)
    totals = {
        "sent": len(outcomes),
        "answered": len(answered),
        "lost": len(lost),
        "streams_cut": len(cut),
        "as_expected": sum(o.ok for o in outcomes),
        "by_kind": dict(Counter(o.kind for o in outcomes)),
    }
    print(f"\n{totals}\nerrors: {dict(errors)}")
    plot(outcomes, samples, kills, harness.RESULTS / "soak.png")
    return {
        "duration_s": duration,
        "totals": totals,
        "errors": dict(errors),
        "per_minute": minutes,
        "kills": recovery,
        "memory": memory,
        "leaks_flagged": [m["replica"] for m in memory if m["leak"]],
        "outcomes": [asdict(o) for o in outcomes],
        "rss_samples": samples,
    }


if __name__ == "__main__":
    harness.main("soak", run, __doc__)
