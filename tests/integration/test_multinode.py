"""The rendered GPU RayService, served by a local multi-node cluster built the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from speech import SENTENCES, words

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.serve


def test_gpu_manifest_on_multinode_cluster_puts_tasks_on_the_gpu_worker():
    run = subprocess.run(
        [sys.executable, str(REPO / "tests" / "multinode_cluster.py")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env=os.environ.copy(),
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")]
    assert run.returncode == 0 and lines, run.stderr[-4000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert len(report["groups"]) == 2
    assert report["placement"], "no task deployments placed"
    for name, where in report["placement"].items():
        assert "gpu" in where["group"], (name, where)
        assert 0 < where["resources"]["GPU"] < 1, (name, where)
        assert where["device"] == "cpu"
    assert report["status"] == 200
    assert words(report["text"]) == words(SENTENCES[0])
