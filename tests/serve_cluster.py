"""The test session's Serve config: serve_config.all.yaml plus test-only changes.

Ray gets 4 logical GPUs and every task deployment asks for 0.5 of one, so fractional
GPU scheduling is exercised on a machine without a GPU (engines fall back to CPU).
"""

from __future__ import annotations

import os
from pathlib import Path

from fault_engines import faults_app
from speech import NOISE_FREE_PIPER, VOICE_MODEL

REPO = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("SONARAY_TEST_PORT", "8123"))
TASK_GPU_FRACTION = 0.5
LOGICAL_GPUS = 4


# A second, small app whose only task scales fast: the autoscaling test drives it.
SCALING_APP = {
    "name": "scaling",
    "route_prefix": "/scaling",
    "import_path": "deployments.app:build_app",
    "args": {"models": [{"name": "tiny-wav2vec2-vad", "task": "frames"}]},
    "deployments": [
        {"name": "Router", "ray_actor_options": {"num_cpus": 0.1}},
        {
            "name": "frames",
            "ray_actor_options": {"num_cpus": 0.1, "num_gpus": 0},
            "max_ongoing_requests": 4,
            "max_queued_requests": 8,
            "autoscaling_config": {
                "min_replicas": 1,
                "max_replicas": 3,
                "target_ongoing_requests": 1,
                "upscale_delay_s": 1,
                "downscale_delay_s": 3,
                "metrics_interval_s": 0.5,
                "look_back_period_s": 2,
            },
            "user_config": {"max_batch_size": 2, "batch_wait_timeout_s": 0.05},
        },
    ],
}


CHAT_PORT = PORT + 100  # the fake chat server of tests/fake_chat.py
# A small voice-agent app: its realtime sessions answer through the fake chat server,
# with limits small enough to hit in tests.
AGENT_APP = {
    "name": "agent",
    "route_prefix": "/agent",
    "import_path": "deployments.app:build_app",
    "args": {
        "models": [
            {"name": "silero-vad", "task": "frames"},
            {"name": "whisper-tiny.en", "task": "seq2seq"},
            {"name": VOICE_MODEL, "task": "tts", "options": NOISE_FREE_PIPER},
        ],
        "pipelines": {"speech-to-speech": ["frames", "seq2seq", "tts"]},
        "realtime": {
            "pipeline": "speech-to-speech",
            "responder": {
                "type": "chat",
                "url": f"http://127.0.0.1:{CHAT_PORT}/v1/chat/completions",
                "model": "fake-llm",
                "system_prompt": "You are a terse assistant.",
                "timeout_s": 5,
            },
            "call_timeout_s": 20,
        },
        "limits": {"max_append_bytes": 200_000, "max_sessions": 4, "max_session_seconds": 120},
    },
    "deployments": [
        {"name": "Router", "ray_actor_options": {"num_cpus": 0.1}},
        *(
            {"name": task, "ray_actor_options": {"num_cpus": 0.25, "num_gpus": 0}}
            for task in ("frames", "seq2seq", "tts")
        ),
    ],
}


def session_config(seq2seq_user_config: dict | None = None):
    """serve_config.all.yaml with the test port, a GPU fraction and one replica on every
    task, the scaling and voice-agent apps, the reliability tests' ``faults`` app
    (tests/fault_engines.py), a noise-free Piper voice; ``seq2seq_user_config`` overrides
    that deployment's batching."""
    from ray.serve.schema import RayActorOptionsSchema, ServeApplicationSchema

    from deployments.app import get_deployment_options
    from deployments.launch import load_config

    config = load_config(REPO / "serve_config.all.yaml")
    config.http_options.host = "127.0.0.1"
    config.http_options.port = PORT
    for app in config.applications:
        # The time bound on queueing is tested on the `faults` app; here a loaded 2-core
        # box must not refuse the batching and long-audio tests' concurrent work.
        app.args.setdefault("limits", {})["max_queue_seconds"] = None
        for model in app.args["models"]:
            if model["name"] == VOICE_MODEL:
                # Noise-free like tests/speech.py's voice: round trips are repeatable.
                model["options"] = {**model.get("options", {}), **NOISE_FREE_PIPER}
        for dep in app.deployments:
            if dep.name != "Router":
                # An entry without ray_actor_options runs with the code's defaults.
                options = dep.ray_actor_options
                if "ray_actor_options" not in dep.model_fields_set:
                    options = get_deployment_options(dep.name)["ray_actor_options"]
                    options = RayActorOptionsSchema.model_validate(options)
                dep.ray_actor_options = options.model_copy(update={"num_gpus": TASK_GPU_FRACTION})
            if dep.name != "Router" and "autoscaling_config" in dep.model_fields_set:
                # One replica per task: tests read a replica's stats and must find the one
                # that served them (the "scaling" app below tests autoscaling).
                dep.autoscaling_config = None
                dep.num_replicas = 1
            if dep.name == "seq2seq" and seq2seq_user_config is not None:
                dep.user_config = seq2seq_user_config
    config.applications.append(ServeApplicationSchema.model_validate(SCALING_APP))
    config.applications.append(ServeApplicationSchema.model_validate(AGENT_APP))
    config.applications.append(ServeApplicationSchema.model_validate(faults_app()))
    return config
