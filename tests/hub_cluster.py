"""Serve every README Hub id from a Hub cache of tiny replicas, offline, in its own Ray.

Run as a script (its own process: a driver joins one Ray cluster at a time, and the test
session's cluster is another): ``python tests/hub_cluster.py CACHE_DIR PORT``. It lays out
the cache (tests/hub_cache.py), sets ``SONARAY_HUB=1``, ``HF_HUB_OFFLINE=1`` and
``HF_HUB_CACHE`` (Ray workers inherit them), deploys ``HUB_CONFIG``, prints
``READY <url>`` and serves until its stdin closes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hub_cache import build_hub_cache, commit_of

# What a user with Hub access writes: models named by their Hub ids, nothing else.
PINNED_TTS = f"facebook/mms-tts-eng@{commit_of('facebook/mms-tts-eng')}"
# Random replicas: Whisper's text would run to its token limit and SpeechT5's stop head
# fires at once; these engine options keep them short. Real checkpoints need neither.
HUB_MODELS = [
    {"name": "openai/whisper-small", "task": "seq2seq", "default": True,
     "options": {"max_new_tokens": 8}},
    {"name": "openai/whisper-large-v3-turbo", "task": "seq2seq",
     "options": {"max_new_tokens": 8}},
    {"name": "facebook/wav2vec2-base-960h", "task": "ctc"},
    {"name": "facebook/hubert-large-ls960-ft", "task": "ctc"},
    {"name": "MIT/ast-finetuned-audioset-10-10-0.4593", "task": "classify"},
    {"name": "superb/wav2vec2-base-superb-ks", "task": "classify"},
    {"name": "anton-l/wav2vec2-base-superb-sd", "task": "frames"},
    {"name": "facebook/mms-tts-eng", "task": "tts", "source": PINNED_TTS, "default": True},
    {"name": "microsoft/speecht5_tts", "task": "tts",
     "options": {"vocoder": "microsoft/speecht5_hifigan",
                 "xvector_model": "microsoft/wavlm-base-plus-sv",
                 "minlenratio": 2.0, "maxlenratio": 3.0}},
    {"name": "suno/bark-small", "task": "tts"},
    {"name": "facebook/musicgen-small", "task": "generate"},
]  # fmt: skip
TASKS = ("seq2seq", "ctc", "classify", "frames", "tts", "generate")


def hub_config(port: int):
    from ray.serve.schema import ServeDeploySchema

    light = {"ray_actor_options": {"num_cpus": 0.25, "num_gpus": 0}}
    return ServeDeploySchema.model_validate(
        {
            "http_options": {"host": "127.0.0.1", "port": port},
            "applications": [
                {
                    "name": "hub",
                    "route_prefix": "/",
                    "import_path": "deployments.app:build_app",
                    "args": {"models": HUB_MODELS},
                    "deployments": [
                        {"name": "Router", "ray_actor_options": {"num_cpus": 0.1}},
                        *({"name": task, **light} for task in TASKS),
                    ],
                }
            ],
        }
    )


def main(cache: Path, port: int) -> None:
    import ray
    from ray import serve

    from deployments.launch import deploy_config

    build_hub_cache(cache)
    os.environ.update(SONARAY_HUB="1", HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        url = deploy_config(hub_config(port), timeout_s=900, quiet=True)
        print(f"READY {url}", flush=True)
        sys.stdin.read()  # serve until the test closes our stdin
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
