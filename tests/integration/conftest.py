"""One live Ray Serve cluster for the whole test session (see tests/serve_cluster.py)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from serve_cluster import LOGICAL_GPUS, session_config

TESTS = Path(__file__).resolve().parents[1]


def put_tests_on_worker_path() -> None:
    """Replicas import the ``faults`` app's engines (tests/fault_engines.py) by name: the
    local Ray's workers inherit this process's environment. (A ``PYTHONPATH`` in
    ``runtime_env`` instead kept Serve's proxy actor from starting.)"""
    paths = [str(TESTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


@pytest.fixture(scope="session")
def ray_session():
    import ray
    from ray import serve

    put_tests_on_worker_path()
    ray.init(
        address="local",  # always a fresh cluster, never one left in /tmp/ray
        num_cpus=8,
        num_gpus=LOGICAL_GPUS,
        include_dashboard=False,
        log_to_driver=False,  # replica logs stay in /tmp/ray/session_latest/logs
        namespace="serve",
        runtime_env={"env_vars": {"SONARAY_MODEL_STORE": os.environ["SONARAY_MODEL_STORE"]}},
    )
    yield ray
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_url(ray_session) -> str:
    """Base URL of the session's Sonaray app (deployed once, shared by every test)."""
    from deployments.launch import deploy_config

    return deploy_config(session_config(), timeout_s=900, quiet=True)


@pytest.fixture
def http(serve_url):
    with httpx.Client(base_url=serve_url, timeout=300) as client:
        yield client


@pytest.fixture(scope="session")
def faults_url(ray_session) -> str:
    """Base URL of the ``faults`` app alone (tests/fault_engines.py): apps of the session
    config that are already running stay, the others are not started for it."""
    from ray import serve
    from ray.serve.exceptions import RayServeException

    from deployments.launch import deploy_config

    try:
        running = set(serve.status().applications)
    except RayServeException:  # Serve not started yet
        running = set()
    config = session_config()
    config.applications = [a for a in config.applications if a.name in running | {"faults"}]
    return deploy_config(config, timeout_s=300, quiet=True) + "/faults"
