"""Serve a Serve config file on a local (embedded) or existing Ray cluster and wait for it.

``python -m deployments.launch serve_config.yaml`` is what ``scripts/serve`` runs: the
same path as ``serve run serve_config.yaml``, plus a readiness wait with progress and a
banner that says where to send requests. Tests deploy through ``deploy_config`` too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

import yaml
from rich.console import Console

console = Console(stderr=True)


def load_config(path: str | Path):
    """Read a Serve config file into Ray's own schema (the validation KubeRay runs too)."""
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(yaml.safe_load(Path(path).read_text()))


def deploy_config(config, *, timeout_s: float = 600.0, quiet: bool = False) -> str:
    """Deploy every application of ``config`` and block until all are RUNNING.

    Needs a connected Ray (``ray.init``); returns the HTTP base URL.
    """
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ApplicationStatus

    client = serve_api.serve_start(
        http_options=config.http_options.model_dump(), proxy_location=config.proxy_location
    )
    client.deploy_apps(config, _blocking=False)
    names = [app.name for app in config.applications]
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        statuses = serve.status().applications
        states = {n: statuses[n].status if n in statuses else "NOT_STARTED" for n in names}
        summary = ", ".join(f"{n}: {s}" for n, s in states.items())
        if summary != last and not quiet:
            console.print(f"  {summary}")
            last = summary
        if all(s == ApplicationStatus.RUNNING for s in states.values()):
            break
        failed = [n for n, s in states.items() if s == ApplicationStatus.DEPLOY_FAILED]
        if failed:
            message = statuses[failed[0]].message
            raise RuntimeError(f"application {failed[0]} failed to deploy:\n{message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"applications not running after {timeout_s:.0f}s: {summary}")
        time.sleep(0.5)
    port = config.http_options.port
    return f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="serve_config.yaml")
    parser.add_argument("--address", default=None, help="Ray address (default: start a local one)")
    parser.add_argument("--num-gpus", type=float, default=None, help="logical GPUs for a local Ray")
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM/SIGINT, how long in-flight requests may take to finish",
    )
    args = parser.parse_args(argv)

    import ray

    config = load_config(args.config)
    store = os.environ.setdefault(
        "SONARAY_MODEL_STORE", str(Path(__file__).resolve().parents[1] / "model_store")
    )
    started = time.perf_counter()
    where = f"Ray at {args.address}" if args.address else "a local Ray"
    console.print(f"[bold]Sonaray[/bold]: starting {where}")
    ray.init(
        address=args.address or "local",  # never silently join a cluster left running
        namespace="serve",
        include_dashboard=False,
        num_gpus=args.num_gpus if args.address is None else None,
        runtime_env={"env_vars": {"SONARAY_MODEL_STORE": store}},
    )
    base = deploy_config(config)
    seconds = time.perf_counter() - started
    console.print(
        f"\n[bold green]Sonaray is up[/bold green] in {seconds:.0f}s at {base}\n"
        f"  docs:        {base}/docs\n"
        f"  models:      curl {base}/v1/models\n"
        f"  transcribe:  curl -F file=@speech.wav {base}/v1/audio/transcriptions\n"
        f"  speak:       curl -H 'content-type: application/json' "
        f'-d \'{{"input": "Hello from Sonaray", "response_format": "wav"}}\' '
        f"{base}/v1/audio/speech -o hello.wav\n"
        "Ctrl-C stops it (in-flight requests finish first)."
    )
    stop, hurry = _stop_on_signals()
    stop.wait()
    drain(config, args.grace_seconds, hurry)
    return 0


def _stop_on_signals() -> tuple[threading.Event, threading.Event]:
    """SIGTERM (what Kubernetes sends) or SIGINT sets ``stop``; a second one ``hurry``."""
    stop = threading.Event()
    hurry = threading.Event()

    def handle(signum, frame):
        (hurry if stop.is_set() else stop).set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop, hurry


def drain(config, grace_seconds: float, hurry: threading.Event | None = None) -> None:
    """Refuse new requests (503), let in-flight ones finish, then shut Serve and Ray down."""
    import ray
    from ray import serve

    from deployments.drain import drain_cluster

    drain_cluster([app.name for app in config.applications], grace_seconds, hurry)
    console.print("[bold]Sonaray[/bold]: stopping")
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
