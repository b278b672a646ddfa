"""SIGTERM to the launcher (what Kubernetes sends on every rollout) drains, then exits 0.

A launcher of its own (a second local Ray, on its own port) serves the ``faults`` app: a
long transcription is in flight when SIGTERM arrives; it finishes, a request sent during
the drain gets a clean 503, and the process exits 0 with no stack trace.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import soundfile as sf
import yaml
from fault_engines import RATE, faults_app, sine
from serve_cluster import PORT

REPO = Path(__file__).resolve().parents[2]
LAUNCH_PORT = PORT + 80  # clear of the other test sessions on PORT ± a few


def test_sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0(tmp_path):
    config = {
        "http_options": {"host": "127.0.0.1", "port": LAUNCH_PORT},
        "applications": [faults_app(route_prefix="/")],
    }
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.launch", str(path), "--grace-seconds", "60"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAY_DEDUP_LOGS": "0"},
    )
    stderr: list[str] = []
    up = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            stderr.append(line)
            if "Sonaray is up" in line:
                up.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        assert up.wait(600), "".join(stderr)
        base = f"http://127.0.0.1:{LAUNCH_PORT}"
        buf = io.BytesIO()
        sf.write(buf, sine(120.0), RATE, format="FLAC")  # 30 chunks: several seconds of work
        answers: dict[str, httpx.Response] = {}

        def long_request():
            answers["long"] = httpx.post(
                f"{base}/v1/seq2seq", files={"file": ("a.flac", buf.getvalue())}, timeout=300
            )

        worker = threading.Thread(target=long_request)
        worker.start()
        time.sleep(2.0)  # sent, decoded and its chunks queued
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # the routers have read the drain switch
        try:
            late = httpx.post(
                f"{base}/v1/seq2seq", files={"file": ("a.flac", buf.getvalue())}, timeout=60
            )
            assert late.status_code == 503, late.text
            assert late.json()["error"]["code"] == "draining" and late.headers["retry-after"]
        except httpx.TransportError:
            pass  # already gone: as clean a refusal as a 503
        worker.join(300)
        long = answers["long"]
        assert long.status_code == 200, long.text
        assert long.json()["text"].count("s") == 30  # every chunk was transcribed
        assert proc.wait(180) == 0, "".join(stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(stderr)
    assert "Traceback" not in log, log
    assert "draining" in log
