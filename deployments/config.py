"""Sonaray's own application args: models, pipelines, limits, auth. One strict model.

Serve's own fields (replicas, autoscaling, ray_actor_options, max_ongoing_requests) live
in the Serve config's ``deployments:`` list, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sonaray_client.types import TaskId

from deployments.graph.types import check_pipeline
from deployments.models.catalog import CATALOG
from deployments.models.store import check_ref
from deployments.protocol import ROLES, TASKS


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), frozen=True)


class ModelConfig(StrictModel):
    """One served model: a name callers use, the task family it serves, where it comes from."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    task: TaskId
    source: str | None = Field(None, description="Store name, local dir or Hub id (default: name).")
    engine: str | None = Field(None, description="Engine kind; default from the store entry.")
    default: bool = False
    options: dict[str, Any] = Field(default_factory=dict, description="Engine options.")

    @property
    def ref(self) -> str:
        return self.source or self.name

    @model_validator(mode="after")
    def _known_source(self) -> ModelConfig:
        check_ref(self.ref)
        spec = CATALOG.get(self.ref)
        if spec is not None and spec.task != self.task:
            raise ValueError(f"store model {self.ref!r} serves {spec.task!r}, not {self.task!r}")
        return self


class StepConfig(StrictModel):
    task: TaskId
    model: str | None = None


class LimitsConfig(StrictModel):
    max_upload_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_audio_seconds: float = Field(3600.0, gt=0)
    max_text_chars: int = Field(4096, gt=0)
    allowed_formats: list[str] | None = Field(
        None, description="Accepted upload formats by extension (None: anything decodable)."
    )
    long_audio_seconds: float = Field(
        30.0, gt=0, description="Transcriptions longer than this go through VAD chunking."
    )
    chunk_seconds: float = Field(30.0, gt=0, le=30.0, description="Max ASR chunk after VAD.")
    max_session_seconds: float = Field(1800.0, gt=0, description="Longest realtime session.")
    max_sessions: int = Field(64, gt=0, description="Realtime sessions per router replica.")
    max_append_bytes: int = Field(
        15 * 1024 * 1024, gt=0, description="Largest input_audio_buffer.append (base64)."
    )
    # 10 s: a request refused within a second can be retried elsewhere or later, while one
    # queued past ~10 s would, with its own service time, outlast the 30 s timeouts
    # clients commonly set; None turns the time bound off (Serve's count bound remains).
    max_queue_seconds: float | None = Field(
        10.0, gt=0, description="Refuse (503) a request that would queue longer than this."
    )
    per_key_concurrent_requests: int | None = Field(
        None, gt=0, description="Requests one API key may have running at once (429 above)."
    )
    per_key_audio_seconds_per_minute: float | None = Field(
        None, gt=0, description="Audio seconds one API key may send per minute (429 above)."
    )


class AuthConfig(StrictModel):
    api_keys_env: str | None = "SONARAY_API_KEYS"
    api_keys_file: Path | None = None


class EchoResponder(StrictModel):
    """Speak the user's own words back (the ``speech-to-speech`` pipeline, live)."""

    type: Literal["echo"] = "echo"


class ChatResponder(StrictModel):
    """Reply with an OpenAI-compatible ``/v1/chat/completions`` endpoint: a voice agent."""

    type: Literal["chat"]
    url: str = Field(..., pattern=r"^https?://", description="The full chat completions URL.")
    model: str
    system_prompt: str | None = None
    timeout_s: float = Field(30.0, gt=0)
    api_key_env: str | None = Field(None, description="Variable holding the endpoint's key.")


class RealtimeConfig(StrictModel):
    """The live session of ``/v1/realtime``: a frames -> ASR -> tts pipeline and a responder."""

    pipeline: str = "speech-to-speech"
    responder: EchoResponder | ChatResponder = Field(
        default_factory=EchoResponder, discriminator="type"
    )
    call_timeout_s: float = Field(30.0, gt=0, description="Longest wait for one model call.")


class CorsConfig(StrictModel):
    """Cross-origin access for browser clients; off (no origins) by default."""

    allow_origins: list[str] = Field(default_factory=list)
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST"])
    allow_headers: list[str] = Field(
        default_factory=lambda: ["authorization", "content-type", "x-request-timeout"]
    )


class SonarayArgs(StrictModel):
    """The ``args:`` of a Sonaray application in a Serve config."""

    models: list[ModelConfig] = Field(..., min_length=1)
    pipelines: dict[str, list[StepConfig | TaskId]] = Field(default_factory=dict)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    realtime: RealtimeConfig | None = None
    cors: CorsConfig = Field(default_factory=CorsConfig)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelConfig]) -> list[ModelConfig]:
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        for task in TASKS:
            defaults = [m.name for m in models if m.task == task and m.default]
            if len(defaults) > 1:
                raise ValueError(f"task {task!r} has several default models: {defaults}")
        return models

    @model_validator(mode="after")
    def _pipelines_fit(self) -> SonarayArgs:
        for name, steps in self.pipelines.items():
            tasks = [s.task if isinstance(s, StepConfig) else s for s in steps]
            for step in steps:
                task = step.task if isinstance(step, StepConfig) else step
                model = step.model if isinstance(step, StepConfig) else None
                if task not in self.tasks:
                    raise ValueError(f"pipelines.{name}: step {task!r} has no model serving it")
                if model is not None and self.model(model).task != task:
                    raise ValueError(f"pipelines.{name}: model {model!r} does not serve {task!r}")
            check_pipeline(name, tasks)
        if self.realtime is not None:
            self._check_realtime(self.realtime.pipeline)
        return self

    def _check_realtime(self, name: str) -> None:
        if name not in self.pipelines:
            raise ValueError(
                f"realtime.pipeline: no pipeline {name!r}; have {sorted(self.pipelines)}"
            )
        steps = [s.task for s in self.steps(name)]
        live = (
            len(steps) == 3
            and steps[0] == ROLES.segment
            and TASKS[steps[1]].transcribes
            and steps[2] == ROLES.speak
        )
        if not live:
            raise ValueError(
                f"realtime.pipeline {name!r} must be [{ROLES.segment}, speech recognition, "
                f"{ROLES.speak}], not {steps}"
            )

    @property
    def tasks(self) -> list[str]:
        return [t for t in TASKS if any(m.task == t for m in self.models)]

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise ValueError(f"unknown model {name!r}")

    def models_for(self, task: str) -> list[ModelConfig]:
        return [m for m in self.models if m.task == task]

    def default_model(self, task: str) -> ModelConfig:
        candidates = self.models_for(task)
        return next((m for m in candidates if m.default), candidates[0])

    def steps(self, pipeline: str) -> list[StepConfig]:
        return [
            s if isinstance(s, StepConfig) else StepConfig(task=s) for s in self.pipelines[pipeline]
        ]
