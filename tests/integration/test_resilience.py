"""Autoscaling under load, and a replica killed under load losing no accepted request."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import numpy as np
import pytest
import ray
import soundfile as sf
from ray import serve
from serve_cluster import PORT
from speech import SENTENCES, synthesize

pytestmark = pytest.mark.serve
BASE = f"http://127.0.0.1:{PORT}"


def wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def running_replicas(app: str, deployment: str) -> int:
    status = serve.status().applications[app].deployments[deployment]
    return status.replica_states.get("RUNNING", 0)


def wait_for(predicate, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not {what} within {timeout_s}s")
        time.sleep(0.5)
    return time.monotonic() - started


async def _load(path: str, data: bytes, clients: int, stop: asyncio.Event) -> list[int]:
    """``clients`` concurrent loops posting ``data`` until ``stop`` is set; returns statuses."""
    statuses: list[int] = []

    async def loop(client: httpx.AsyncClient):
        while not stop.is_set():
            r = await client.post(path, files={"file": ("a.wav", data)})
            statuses.append(r.status_code)

    async with httpx.AsyncClient(base_url=BASE, timeout=120) as client:
        await asyncio.gather(*(loop(client) for _ in range(clients)))
    return statuses


def test_deployment_scales_up_under_load_and_back_down(serve_url):
    assert running_replicas("scaling", "frames") == 1
    clip = wav(np.tile(synthesize(SENTENCES[0]), 4))

    async def load_and_watch() -> tuple[list[int], int]:
        # The load runs until a second replica is up: on a busy 2-core box a new replica
        # (a fresh process importing torch) can take most of a minute to start.
        stop = asyncio.Event()
        peak = 0

        async def watch():
            nonlocal peak
            deadline = time.monotonic() + 180
            try:
                while peak < 2 and time.monotonic() < deadline:
                    peak = max(peak, await asyncio.to_thread(running_replicas, "scaling", "frames"))
                    await asyncio.sleep(0.5)
                # A few more seconds of load: the autoscaler may add the third replica.
                await asyncio.sleep(3)
                peak = max(peak, await asyncio.to_thread(running_replicas, "scaling", "frames"))
            finally:
                stop.set()

        statuses, _ = await asyncio.gather(_load("/scaling/v1/frames", clip, 8, stop), watch())
        return statuses, peak

    statuses, peak = asyncio.run(load_and_watch())
    assert set(statuses) == {200}
    assert 2 <= peak <= 3  # max_replicas is 3
    wait_for(lambda: running_replicas("scaling", "frames") == 1, 120, "back to one replica")


def test_a_full_deployment_answers_503_with_retry_after_and_never_hangs(serve_url):
    clip = wav(np.tile(synthesize(SENTENCES[1]), 6))

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=BASE, timeout=120) as client:
            return await asyncio.gather(
                *(
                    client.post("/scaling/v1/frames", files={"file": ("a.wav", clip)})
                    for _ in range(60)
                )
            )

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    for r in responses:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] == "overloaded"
    wait_for(lambda: running_replicas("scaling", "frames") == 1, 90, "back to one replica")


def _replica_actor(app: str, deployment: str):
    info = serve.get_deployment_handle(deployment, app_name=app).stats.remote().result()
    return ray.get_actor(info["actor_name"], namespace="serve"), info["pid"]


def test_killed_replica_loses_no_accepted_request(serve_url):
    clip = wav(synthesize(SENTENCES[4]))
    actor, pid = _replica_actor("sonaray", "classify")

    async def load_and_kill() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=BASE, timeout=120) as client:

            async def one(delay: float) -> httpx.Response:
                await asyncio.sleep(delay)
                return await client.post("/v1/classify", files={"file": ("a.wav", clip)})

            async def kill():
                await asyncio.sleep(0.5)
                ray.kill(actor, no_restart=True)

            results = await asyncio.gather(*(one(i * 0.05) for i in range(40)), kill())
            return results[:-1]

    responses = asyncio.run(load_and_kill())
    for r in responses:
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert r.headers["retry-after"] and r.json()["error"]["code"] == "overloaded"
    assert sum(r.status_code == 200 for r in responses) > 0
    wait_for(lambda: running_replicas("sonaray", "classify") == 1, 120, "replaced")
    _, new_pid = _replica_actor("sonaray", "classify")
    assert new_pid != pid
    after = httpx.post(f"{BASE}/v1/classify", files={"file": ("a.wav", clip)}, timeout=120)
    assert after.status_code == 200
