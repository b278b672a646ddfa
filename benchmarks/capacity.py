"""Capacity plan: replicas, CPU/GPU shares, nodes and KubeRay worker groups for a target load.

Turns measured per-replica figures into a Serve config for a load far beyond this machine:
``--sessions N`` concurrent realtime voice sessions (VAD on all audio, ASR on the user's
speech, TTS on the replies), or ``--hours-per-day H`` of recorded audio transcribed in
batch. It writes a copy of ``serve_config.yaml`` whose deployments carry the planned
``ray_actor_options`` and ``autoscaling_config`` (min replicas for the mean load, max for
the peak), renders the KubeRay worker groups from it with ``deployments.k8s.render``
(``sonaray k8s render --config <plan>`` gives the same manifest), and prints the plan.

Figures: the per-replica speed (x_realtime: audio seconds per wall second, one replica at
its CPU share) comes from the quiet run in benchmarks/README.md, from this machine's
``benchmarks/results/*.json`` with ``--from-results``, or from ``--x-realtime TASK=X``
(measure on your own nodes: a busy box gives figures no plan should use). GPU figures are
not measured here: pass ``--gpu-x-realtime`` (one seq2seq replica on its GPU share, 0.5) to plan GPU
workers. The assumptions (speech share of a session, utilisation, what a Router replica
holds) are flags with defaults named in the README's scaling section.

    python benchmarks/capacity.py --sessions 1000 --out /tmp/plan.yaml
    python benchmarks/capacity.py --hours-per-day 10000 --gpu --gpu-x-realtime 150
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"

# One-thread replica speeds (x_realtime) from the quiet full run in benchmarks/README.md
# (2026-11-26, 2 cores): Piper served 11.9x; for seq2seq, faster-whisper int8's 6.28x,
# which the ctranslate2 engine served at 1.31x of in the (noisy) run of 2026-12-01, so
# it is a floor. VAD is an assumption: Silero's ONNX model was not benchmarked alone.
README_FIGURES = {"seq2seq": 6.28, "tts": 11.9, "frames": 100.0}
TURN_SECONDS = 3.0  # a user's turn in a realtime session
CHUNK_SECONDS = 30.0  # batch transcription fans out 30 s chunks


@dataclass(frozen=True)
class TaskLoad:
    """One deployment's load in audio seconds per second, and one replica's speed."""

    name: str
    mean_load: float
    x_realtime: float
    cpus: float
    gpus: float
    source: str


def figures(args: argparse.Namespace) -> dict[str, tuple[float, str]]:
    """x_realtime per task: the README's, this machine's results (--from-results), flags."""
    found = {task: (x, "README figure") for task, x in README_FIGURES.items()}
    asr = RESULTS / "asr_vs_faster_whisper.json"
    if args.from_results and asr.is_file():
        speed = json.loads(asr.read_text())["x_realtime"]
        served = [v for k, v in speed.items() if "ctranslate2" in k and "concurrency 8" in k]
        if served:
            found["seq2seq"] = (served[0], str(asr.relative_to(REPO)))
    for override in args.x_realtime:
        task, _, value = override.partition("=")
        found[task] = (float(value), "--x-realtime")
    return found


def loads(args: argparse.Namespace) -> list[TaskLoad]:
    """Mean audio-seconds-per-second each task must process for the target."""
    from deployments.protocol import TASKS

    speeds = figures(args)
    # the GPU variant puts every task on a GPU share; VAD and TTS keep their CPU speed
    share = {t: TASKS[t].gpu_share if args.gpu else 0.0 for t in ("frames", "seq2seq", "tts")}
    asr_speed, asr_source = speeds["seq2seq"]
    if args.gpu:
        asr_speed, asr_source = args.gpu_x_realtime, "--gpu-x-realtime (user given)"
    if args.sessions:
        audio = float(args.sessions)  # every session streams one second of audio a second
        plan = [
            ("frames", audio, *speeds["frames"], 0.25, share["frames"]),
            ("seq2seq", audio * args.speech_share, asr_speed, asr_source, 1.0, share["seq2seq"]),
            ("tts", audio * args.reply_share, *speeds["tts"], 0.25, share["tts"]),
        ]
    else:
        audio = args.hours_per_day * 3600 / 86400
        plan = [
            ("frames", audio, *speeds["frames"], 0.25, share["frames"]),
            ("seq2seq", audio, asr_speed, asr_source, 1.0, share["seq2seq"]),
        ]
    return [TaskLoad(n, load, x, cpus, g, src) for n, load, x, src, cpus, g in plan]


def replicas(load: float, speed: float, utilisation: float) -> int:
    return max(1, math.ceil(round(load / (speed * utilisation), 6)))


def plan(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Serve config with planned deployments, and one printed row per deployment."""
    from deployments.k8s.render import load_serve_config

    config = load_serve_config(REPO / "serve_config.yaml")
    app = config["applications"][0]
    by_name = {d["name"]: d for d in app["deployments"]}
    rows = []
    for task in loads(args):
        low = replicas(task.mean_load, task.x_realtime, args.utilisation)
        high = replicas(task.mean_load * args.peak, task.x_realtime, args.utilisation)
        deployment = by_name[task.name]
        deployment.pop("num_replicas", None)
        deployment["ray_actor_options"] = {"num_cpus": task.cpus, "num_gpus": task.gpus}
        deployment["autoscaling_config"] = {
            **deployment.get("autoscaling_config", {}),
            "min_replicas": low,
            "max_replicas": high,
        }
        rows.append(
            {
                "deployment": task.name,
                "audio_s_per_s": round(task.mean_load, 1),
                "x_realtime_per_replica": task.x_realtime,
                "figure": task.source,
                "min_replicas": low,
                "max_replicas": high,
                "cpus_each": task.cpus,
                "gpus_each": task.gpus,
            }
        )
    if args.sessions:
        # VAD frames streamed from each session's Router, plus an ASR and a TTS call a turn
        calls = args.sessions * (args.vad_calls + 2 * args.speech_share / TURN_SECONDS)
        routers = max(
            math.ceil(calls / args.router_calls),
            math.ceil(args.sessions / args.sessions_per_router),
        )
    else:
        calls = args.hours_per_day * 3600 / 86400 / CHUNK_SECONDS  # one call per 30 s chunk
        routers = math.ceil(calls * args.peak / args.router_calls)
    routers = max(1, routers)
    router = by_name["Router"]
    router.pop("num_replicas", None)
    router["ray_actor_options"] = {"num_cpus": 1}
    router["autoscaling_config"] = {"min_replicas": routers, "max_replicas": routers}
    rows.append(
        {
            "deployment": "Router",
            "calls_per_s": round(calls, 1),
            "figure": f"{args.router_calls} handle calls/s per Router (shared/RAY_NOTES.md)",
            "min_replicas": routers,
            "max_replicas": routers,
            "cpus_each": 1,
        }
    )
    app["deployments"] = [
        d for d in app["deployments"] if d["name"] in {r["deployment"] for r in rows}
    ]
    return config, rows


def worker_groups(config: dict[str, Any], *, gpu: bool) -> list[dict[str, Any]]:
    """The KubeRay worker groups (pod shape and count) the k8s renderer derives."""
    from deployments.k8s.render import render

    specs = render(copy.deepcopy(config), gpu=gpu)["spec"]["rayClusterConfig"]
    return [
        {
            "group": g["groupName"],
            "min_pods": g["minReplicas"],
            "max_pods": g["maxReplicas"],
            "pod": g["template"]["spec"]["containers"][0]["resources"]["limits"],
        }
        for g in specs["workerGroupSpecs"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--sessions", type=int, help="concurrent realtime voice sessions")
    target.add_argument("--hours-per-day", type=float, help="hours of audio a day, in batch")
    parser.add_argument("--speech-share", type=float, default=0.4, help="user speaking share")
    parser.add_argument("--reply-share", type=float, default=0.3, help="TTS reply share")
    parser.add_argument("--utilisation", type=float, default=0.6, help="busy share per replica")
    parser.add_argument("--peak", type=float, default=2.0, help="peak load over the mean")
    parser.add_argument("--sessions-per-router", type=int, default=250, help="open sockets")
    parser.add_argument("--vad-calls", type=float, default=2.0, help="VAD calls/s a session")
    parser.add_argument("--router-calls", type=float, default=70.0, help="calls/s per Router")
    parser.add_argument("--gpu", action="store_true", help="tasks on GPU shares (render's)")
    parser.add_argument("--gpu-x-realtime", type=float, default=None)
    parser.add_argument("--x-realtime", action="append", default=[], help="TASK=SPEED")
    parser.add_argument("--from-results", action="store_true", help="use results/*.json")
    parser.add_argument("--out", type=Path, default=None, help="write the planned Serve config")
    args = parser.parse_args()
    if args.gpu and not args.gpu_x_realtime:
        parser.error("--gpu needs --gpu-x-realtime: GPU speed is not measured on this machine")
    config, rows = plan(args)
    groups = worker_groups(config, gpu=args.gpu)
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    for group in groups:
        print("  ".join(f"{k}={v}" for k, v in group.items()))
    if args.out:
        args.out.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"wrote {args.out}: `sonaray k8s render --config {args.out}` renders it")


if __name__ == "__main__":
    main()
