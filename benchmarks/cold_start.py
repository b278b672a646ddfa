"""Cold start and memory: seconds from ``python -m deployments.launch serve_config.yaml``
(what ``scripts/serve`` runs after set-up) to the first answered request, and the memory
of the idle default cluster summed over all its Ray processes and per replica.

The baseline is one plain Python process that loads the same engines (each task's
default model in ``serve_config.yaml``: Whisper tiny.en on CTranslate2, Silero VAD,
Piper, the Whisper keyword spotter) and transcribes one clip: the ratios say what the cluster
costs over a script. The served config is ``serve_config.yaml`` unchanged but for the
port (and host 127.0.0.1). Memory is read from /proc: RSS, and PSS, which splits shared
pages (torch's libraries, Ray's object store) between the processes that map them, so
its sum does not count them twice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import yaml
from harness import (
    REPO,
    BaselineFailed,
    build_models,
    main,
    print_table,
    ratio,
    wav_bytes,
)

PORT = 8205
CONFIG = "serve_config.yaml"
IDLE_S = 5.0

# Loads the default engines the way a replica does and transcribes one clip.
PLAIN_SCRIPT = """
import json, sys, time
started = float(sys.argv[1])
sys.path.insert(0, "tests")
from speech import synthesize
from sonaray_client.types import TranscriptionOptions
from deployments.models.store import resolve
from deployments.protocol import AudioItem
from deployments.tasks.registry import load_engine
engines = {}
for task, name in json.loads(sys.argv[2]):
    r = resolve(name)
    engines[task] = load_engine(task, r.engine, r.path, name=name)
clip = synthesize("Hello world, this is a test of speech recognition.")
text = engines["seq2seq"].forward([AudioItem(clip, 16000, TranscriptionOptions())])[0].text
first = time.time() - started
status = open("/proc/self/status").read()
rss = int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024
print(json.dumps({"first_answer_s": first, "rss_mib": rss, "text": text}))
""".replace("import json, sys, time", "import json, re, sys, time")


def _cpu_demand(raw: dict) -> float:
    """Logical CPUs the config's replicas need at their minimum scale."""
    total = 0.0
    for app in raw["applications"]:
        for dep in app.get("deployments", []):
            scaling = dep.get("autoscaling_config") or {}
            replicas = scaling.get("min_replicas", dep.get("num_replicas", 1))
            total += replicas * (dep.get("ray_actor_options") or {}).get("num_cpus", 1)
    return total


def _default_models(raw: dict) -> list[tuple[str, str]]:
    """(task, store ref) of each task's default model in the served config."""
    from deployments.config import SonarayArgs

    args = SonarayArgs.model_validate(raw["applications"][0]["args"])
    return [(task, args.default_model(task).ref) for task in args.tasks]


def _plain(models: list[tuple[str, str]]) -> dict[str, Any]:
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_SCRIPT, str(started), json.dumps(models)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise BaselineFailed(f"plain engine process failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree[ppid].append(int(entry.name))
    return tree


def _descendants(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _kind(cmdline: str) -> str:
    """Which part of the cluster a process is, from the title Ray gives it."""
    found = re.search(r"ServeReplica:\w+:(\w+)|SERVE_REPLICA::\w+#(\w+)#", cmdline)
    if found:
        return f"replica {found.group(1) or found.group(2)}"
    for marker, kind in (
        ("ServeController", "serve controller"),
        ("SERVE_CONTROLLER", "serve controller"),
        ("ProxyActor", "serve proxy"),
        ("SERVE_PROXY", "serve proxy"),
        ("deployments.launch", "launcher (driver)"),
        ("raylet", "raylet"),
        ("gcs_server", "gcs_server"),
    ):
        if marker in cmdline:
            return kind
    return "other ray processes"


def _memory(pids: list[int]) -> dict[str, dict[str, float]]:
    """RSS and PSS (MiB) and process count per kind of process."""
    kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"procs": 0, "rss": 0.0, "pss": 0.0})
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.MULTILINE))
        k = kinds[_kind(cmdline)]
        k["procs"] += 1
        k["rss"] += int(fields.get("Rss", 0)) / 1024
        k["pss"] += int(fields.get("Pss", 0)) / 1024
    return dict(kinds)


def _wait_for(url: str, send, deadline: float, process: subprocess.Popen) -> float:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"launcher exited with {process.returncode}")
        try:
            if send(url).status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"no answer from {url}")


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C the launcher (it shuts Serve down), then end any process of ours left."""
    pids = _descendants(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
    time.sleep(2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _served(config_path: Path, log: Path, cpus: int) -> dict[str, Any]:
    from speech import synthesize

    upload = wav_bytes(synthesize("Hello world, this is a test of speech recognition."), 16000)
    base = f"http://127.0.0.1:{PORT}"
    env = {**os.environ, "RAY_ADDRESS": "local"}  # never join a cluster started elsewhere
    if cpus > (os.cpu_count() or 1):
        # else the replicas that do not fit wait forever for a CPU
        env["RAY_OVERRIDE_RESOURCES"] = json.dumps({"CPU": cpus})
    with log.open("w") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "deployments.launch", str(config_path)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = started + 600
        with httpx.Client(timeout=120) as client:
            health = _wait_for(f"{base}/healthz", client.get, deadline, process)

            def transcribe(url: str) -> httpx.Response:
                return client.post(url, files={"file": ("clip.wav", upload, "audio/wav")})

            first = _wait_for(f"{base}/v1/seq2seq", transcribe, deadline, process)
            text = transcribe(f"{base}/v1/seq2seq").json()["text"]
        time.sleep(IDLE_S)
        memory = _memory(_descendants(process.pid))
    finally:
        _stop(process)
    return {
        "first_healthz_s": round(health - started, 2),
        "first_answer_s": round(first - started, 2),
        "text": text,
        "memory": memory,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / CONFIG).read_text())
    raw["http_options"].update(host="127.0.0.1", port=PORT)
    build_models([m["name"] for app in raw["applications"] for m in app["args"]["models"]])
    demand = _cpu_demand(raw)
    cpus = max(os.cpu_count() or 1, math.ceil(demand))
    if cpus > (os.cpu_count() or 1):
        print(
            f"note: {CONFIG} asks for {demand:g} logical CPUs at minimum scale and this machine "
            f"has {os.cpu_count()}: Ray is given {cpus} (RAY_OVERRIDE_RESOURCES), without "
            "which the README's serve command never gets every replica scheduled",
            file=sys.stderr,
        )
    plain = _plain(_default_models(raw))
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "serve_config.yaml"
        config_path.write_text(yaml.safe_dump(raw))
        try:
            served = _served(config_path, Path(tmp) / "launch.log", cpus)
        except (RuntimeError, TimeoutError) as exc:
            log = (Path(tmp) / "launch.log").read_text()[-3000:]
            raise RuntimeError(f"{exc}\nlauncher log tail:\n{log}") from exc
    memory = served.pop("memory")
    rows = [
        {
            "process": kind,
            "procs": int(m["procs"]),
            "rss_mib": round(m["rss"]),
            "pss_mib": round(m["pss"]),
        }
        for kind, m in sorted(memory.items())
    ]
    total_rss = sum(m["rss"] for m in memory.values())
    total_pss = sum(m["pss"] for m in memory.values())
    rows.append(
        {
            "process": "total",
            "procs": sum(r["procs"] for r in rows),
            "rss_mib": round(total_rss),
            "pss_mib": round(total_pss),
        }
    )
    rows.append({"process": "plain engine process", "procs": 1, "rss_mib": round(plain["rss_mib"])})
    times = [
        {"what": "launch -> first /healthz 200", "seconds": served["first_healthz_s"]},
        {"what": "launch -> first transcription", "seconds": served["first_answer_s"]},
        {
            "what": "plain process -> first transcription",
            "seconds": round(plain["first_answer_s"], 2),
        },
    ]
    ratios = {
        "cold_start_over_plain": ratio(served["first_answer_s"], plain["first_answer_s"]),
        "cluster_pss_over_plain_rss": ratio(total_pss, plain["rss_mib"]),
        "same_text": served["text"] == plain["text"],
    }
    print_table(f"cold start, {CONFIG}", times)
    print_table(f"memory of the idle cluster after {IDLE_S:.0f} s (MiB)", rows)
    print_table("ratios", [ratios])
    return {
        "config": CONFIG,
        "cpu_demand": demand,
        "ray_cpus": cpus,
        "times": times,
        "memory": rows,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main("cold_start", run, __doc__)
