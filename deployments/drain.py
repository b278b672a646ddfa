"""Drain Sonaray before its processes stop: refuse new work, let in-flight work finish.

Two scopes, one waiting rule (the LoadBoard's in-flight counts):
- the whole cluster (the launcher on SIGTERM, a head pod's ``preStop``): every Sonaray
  app's routers refuse new requests with 503 ``draining``;
- one node (a worker pod's ``preStop``): Ray marks the node draining, Serve starts its
  replicas elsewhere and stops these gracefully (``graceful_shutdown_timeout_s``).

``python -m deployments.drain [--node] --grace-seconds N`` runs on a cluster node.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

from rich.console import Console

console = Console(stderr=True)


def _boards(app_names: list[str]) -> list:
    from ray import serve

    from deployments.serving.load_board import BOARD

    boards = []
    for name in app_names:
        try:
            board = serve.get_deployment_handle(BOARD, app_name=name)
            board.snapshot.remote().result(timeout_s=10)
            boards.append(board)
        except Exception:  # not a Sonaray app, or its board is gone: nothing to wait for
            continue
    return boards


def _wait(boards: list, busy, grace_seconds: float, hurry: threading.Event | None) -> int:
    """Poll the boards until ``busy(snapshots)`` is 0 or the grace runs out; returns it."""
    from deployments.serving.load_board import REPORT_EVERY_S

    deadline = time.monotonic() + grace_seconds
    left = -1
    while time.monotonic() < deadline and not (hurry is not None and hurry.is_set()):
        try:
            left = busy([b.snapshot.remote().result(timeout_s=5) for b in boards])
        except Exception:
            return left
        if left == 0:
            return 0
        time.sleep(REPORT_EVERY_S)
    return left


def drain_cluster(
    app_names: list[str], grace_seconds: float, hurry: threading.Event | None = None
) -> int:
    """Make every router refuse new requests, then wait for in-flight ones (or the grace).

    Returns the requests still in flight when it stopped waiting (0: a clean drain)."""
    from deployments.serving.load_board import REPORT_EVERY_S

    boards = _boards(app_names)
    for board in boards:
        board.drain.remote().result(timeout_s=10)
    console.print(f"[bold]Sonaray[/bold]: draining (up to {grace_seconds:.0f}s)")
    time.sleep(2 * REPORT_EVERY_S)  # every router has read the switch
    return _wait(boards, lambda snaps: sum(s.in_flight() for s in snaps), grace_seconds, hurry)


def drain_node(app_names: list[str], grace_seconds: float) -> int:
    """Ask Ray to drain this node, then wait until none of its replicas is left."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    subprocess.run(
        ["ray", "drain-node", "--node-id", node, "--reason", "DRAIN_NODE_REASON_PREEMPTION",
         "--reason-message", "pod terminating",
         "--deadline-remaining-seconds", str(int(grace_seconds))],
        check=True,
    )  # fmt: skip
    boards = _boards(app_names)

    def here(snaps) -> int:
        return sum(1 for s in snaps for r in s.reports if r.node_id == node)

    return _wait(boards, here, grace_seconds, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", action="store_true", help="drain only this node")
    parser.add_argument("--grace-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)

    import ray
    from ray import serve

    ray.init(address="auto", namespace="serve", log_to_driver=False)
    apps = list(serve.status().applications)
    if args.node:
        left = drain_node(apps, args.grace_seconds)
    else:
        left = drain_cluster(apps, args.grace_seconds)
    console.print(f"[bold]Sonaray[/bold]: drained ({max(left, 0)} still busy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
