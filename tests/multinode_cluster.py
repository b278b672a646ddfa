"""Serve the rendered GPU RayService on a local multi-node Ray cluster, report placement.

Run as a script (its own process: a driver joins one Ray cluster at a time). Nodes are
started with the rayStartParams of k8s/rayservice-gpu.yaml (head, CPU worker, "GPU"
worker with a logical GPU), the manifest's serveConfigV2 is deployed, a Piper sentence is
transcribed over HTTP, and a JSON report goes to stdout.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import httpx
import ray
import soundfile as sf
import yaml
from ray import serve
from ray.cluster_utils import Cluster
from ray.serve.schema import ServeDeploySchema

from deployments.launch import deploy_config
from deployments.protocol import TASKS

REPO = Path(__file__).resolve().parents[1]
PORT = 8124


def node_args(params: dict) -> dict:
    """rayStartParams (strings, as KubeRay passes them to `ray start`) to add_node kwargs."""
    resources = params.get("resources")
    return {
        "num_cpus": int(params.get("num-cpus", 1)),
        "num_gpus": int(params.get("num-gpus", 0)),
        "resources": json.loads(json.loads(resources)) if resources else {},
    }


def main() -> dict:
    manifest = yaml.safe_load((REPO / "k8s" / "rayservice-gpu.yaml").read_text())
    spec = manifest["spec"]["rayClusterConfig"]
    cluster = Cluster(
        initialize_head=True, head_node_args=node_args(spec["headGroupSpec"]["rayStartParams"])
    )
    groups = {}
    for group in spec["workerGroupSpecs"]:
        # As KubeRay starts them: minReplicas pods of each group (the GPU group needs two
        # once the default tasks' GPU shares add up to more than one card).
        for _ in range(max(1, group.get("minReplicas", 1))):
            node = cluster.add_node(**node_args(group["rayStartParams"]))
            groups[node.node_id] = group["groupName"]
    try:
        ray.init(address=cluster.address, namespace="serve", log_to_driver=False)
        raw = yaml.safe_load(manifest["spec"]["serveConfigV2"])
        raw["http_options"] = {"host": "127.0.0.1", "port": PORT}
        raw["proxy_location"] = "HeadOnly"  # one machine: one port
        base = deploy_config(ServeDeploySchema.model_validate(raw), timeout_s=600, quiet=True)
        placement = {}
        for app in raw["applications"]:
            for dep in app["deployments"]:
                if dep["name"] not in TASKS:  # the Router and the LoadBoard
                    continue
                info = (
                    serve.get_deployment_handle(dep["name"], app_name=app["name"])
                    .stats.remote()
                    .result()
                )
                placement[dep["name"]] = {
                    "group": groups.get(info["node_id"], "head"),
                    "resources": info["resources"],
                    "device": info["device"],
                }
        sys.path.insert(0, str(REPO / "tests"))
        from speech import SENTENCES, synthesize

        buf = io.BytesIO()
        sf.write(buf, synthesize(SENTENCES[0]), 16000, format="WAV")
        reply = httpx.post(
            f"{base}/v1/seq2seq", files={"file": ("a.wav", buf.getvalue())}, timeout=300
        )
        return {
            "groups": sorted(set(groups.values())),
            "placement": placement,
            "status": reply.status_code,
            "text": reply.json().get("text", reply.text),
        }
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print("REPORT " + json.dumps(main()))
