"""build_app validates Sonaray's args before anything is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from deployments.app import build_app, get_deployment_options, parse_args
from deployments.errors import ConfigError
from deployments.serving.task_deployment import BatchingConfig

REPO = Path(__file__).resolve().parents[2]
VAD = {"name": "silero-vad", "task": "frames"}
ASR = {"name": "whisper-tiny.en", "task": "seq2seq"}
TTS = {"name": "piper-joe-medium", "task": "tts"}


@pytest.mark.parametrize("config", ["serve_config.yaml", "serve_config.all.yaml"])
def test_shipped_configs_validate_and_build(config):
    raw = yaml.safe_load((REPO / config).read_text())
    ServeDeploySchema.model_validate(raw)
    for app in raw["applications"]:
        built = build_app(app["args"])
        assert built is not None
        names = {d["name"] for d in app["deployments"]}
        assert names <= {"Router", *parse_args(app["args"]).tasks}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"models": [{"name": "x", "task": "speak"}]}, "models.0.task"),
        ({"models": [VAD, VAD]}, "repeated: ['silero-vad']"),
        ({"models": [{"name": "openai/whisper-small", "task": "seq2seq"}]}, "unknown model"),
        ({"models": [{"name": "silero-vad", "task": "seq2seq"}]}, "serves 'frames'"),
        ({"models": [VAD, ASR], "pipelines": {"p": ["seq2seq", "frames"]}}, "pipelines.p[1]"),
        ({"models": [VAD], "pipelines": {"p": ["frames", "seq2seq"]}}, "no model serving it"),
        ({"models": [VAD, ASR, TTS], "pipelines": {"p": ["frames", "tts"]}}, "reads Transcript"),
        ({"models": [VAD], "limits": {"max_upload_bytes": 0}}, "limits.max_upload_bytes"),
        ({"models": [VAD], "auth": {"api_key": "x"}}, "auth.api_key"),
        ({"models": [VAD], "replicas": 2}, "replicas"),
    ],
)
def test_bad_config_fails_at_build_time_naming_the_field(args, field):
    with pytest.raises(ConfigError) as err:
        build_app(args)
    assert field in str(err.value)


def test_pipeline_typing_accepts_the_documented_graphs():
    args = parse_args(
        {
            "models": [VAD, ASR, TTS, {"name": "tiny-wav2vec2-ks", "task": "classify"}],
            "pipelines": {
                "speech-to-speech": ["frames", "seq2seq", "tts"],
                "segment-classify": ["frames", {"task": "classify", "model": "tiny-wav2vec2-ks"}],
            },
        }
    )
    assert [s.task for s in args.steps("speech-to-speech")] == ["frames", "seq2seq", "tts"]
    assert args.default_model("seq2seq").name == "whisper-tiny.en"


def test_deployment_options_keep_batches_within_max_ongoing_requests():
    options = get_deployment_options("seq2seq")
    assert options["max_ongoing_requests"] >= options["user_config"]["max_batch_size"]
    assert options["ray_actor_options"]["num_gpus"] == 0


def test_user_config_rejects_unknown_fields():
    assert BatchingConfig.validate({"max_batch_size": "4"}) == {"max_batch_size": 4}
    with pytest.raises(ValueError, match="max_batch"):
        BatchingConfig.validate({"max_batch": 4})


def test_a_misspelt_engine_option_fails_the_build_naming_it():
    voice = {**TTS, "options": {"noise_scal": 0.0}}
    with pytest.raises(ConfigError, match=r"noise_scal.*piper engine.*noise_scale"):
        build_app({"models": [voice]})
    # the same option spelt right builds
    build_app({"models": [{**TTS, "options": {"noise_scale": 0.0}}]})


def test_options_of_a_dispatching_engine_are_those_of_the_engines_it_picks():
    speecht5 = {"name": "tiny-speecht5", "task": "tts", "options": {"xvector_modle": "x"}}
    with pytest.raises(ConfigError, match="xvector_modle"):
        build_app({"models": [speecht5]})
    build_app({"models": [{**speecht5, "options": {"xvector_model": "tiny-xvector"}}]})


def test_the_router_gets_the_validated_args_not_a_dict():
    app = build_app({"models": [ASR]})
    router_args = app._bound_deployment.init_args
    assert router_args[0] == parse_args({"models": [ASR]})


S2S = {"speech-to-speech": ["frames", "seq2seq", "tts"], "long": ["frames", "seq2seq"]}


@pytest.mark.parametrize(
    ("realtime", "message"),
    [
        ({"pipeline": "nope"}, "realtime.pipeline: no pipeline 'nope'"),
        ({"pipeline": "long"}, "must be [frames, speech recognition, tts]"),
        ({"responder": {"type": "chat", "model": "m"}}, "responder.chat.url"),
        ({"responder": {"type": "chat", "url": "ftp://x", "model": "m"}}, "responder.chat.url"),
        ({"responder": {"type": "parrot"}}, "responder"),
        ({"pipline": "speech-to-speech"}, "realtime.pipline"),
    ],
)
def test_realtime_session_is_checked_when_the_app_is_built(realtime, message):
    with pytest.raises(ConfigError) as caught:
        build_app({"models": [VAD, ASR, TTS], "pipelines": S2S, "realtime": realtime})
    assert message in str(caught.value)


def test_realtime_chat_responder_builds():
    chat = {"type": "chat", "url": "http://llm:8000/v1/chat/completions", "model": "m"}
    args = parse_args(
        {"models": [VAD, ASR, TTS], "pipelines": S2S, "realtime": {"responder": chat}}
    )
    assert args.realtime.responder.timeout_s == 30.0
    assert args.limits.max_sessions > 0
