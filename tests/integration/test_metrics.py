"""The Grafana dashboard in k8s/ reads metrics the cluster really exports, by those names."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import httpx
import pytest
import ray
import soundfile as sf
from fault_engines import RATE, sine

pytestmark = pytest.mark.serve
DASHBOARD = Path(__file__).resolve().parents[2] / "k8s" / "grafana-dashboard.json"
METRIC = re.compile(r"\b(ray_[a-z0-9_]+)\b")


def dashboard_metrics() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    return {name for e in exprs for name in METRIC.findall(e)}


def exported() -> dict[str, set[str]]:
    """Metric name -> label names, scraped from every node's metrics agent."""
    found: dict[str, set[str]] = {}
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        text = httpx.get(f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}").text
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
            if m:
                labels = set(re.findall(r'([a-zA-Z_]+)="', m.group(3) or ""))
                found.setdefault(m.group(1), set()).update(labels)
    return found


def test_every_dashboard_metric_is_exported_by_the_cluster(faults_url):
    buf = io.BytesIO()
    sf.write(buf, sine(1.0), RATE, format="WAV", subtype="FLOAT")
    bad = io.BytesIO()
    sf.write(bad, sine(1.0, first=0.5), RATE, format="WAV", subtype="FLOAT")
    with httpx.Client(base_url=faults_url, timeout=120) as client:
        for _ in range(3):
            assert client.post("/v1/seq2seq", files={"file": ("a.wav", buf.getvalue())}).is_success
        failed = client.post("/v1/seq2seq", files={"file": ("a.wav", bad.getvalue())})
        assert failed.status_code == 500  # counts in the error panels
        refused = client.post(
            "/v1/seq2seq",
            files={"file": ("a.wav", buf.getvalue())},
            headers={"X-Request-Timeout": "0.001"},
        )
        assert refused.status_code == 503  # counts in the rejections panel
    wanted = dashboard_metrics()
    assert {"ray_sonaray_rejections_total", "ray_sonaray_batch_size_sum"} <= wanted
    deadline = time.monotonic() + 90  # Ray exports metrics every few seconds
    while True:
        missing = wanted - set(exported())
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not missing, f"the dashboard reads metrics the cluster does not export: {missing}"
