"""A session's configuration: OpenAI's session object, as ``session.update`` edits it.

The transcription model may be a served ASR model, or an OpenAI name (``whisper-1``,
``gpt-4o-transcribe``, ...) meaning the cluster's default, as on the HTTP routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from deployments.errors import InvalidRequest, ModelNotFound
from deployments.protocol import ROLES, Target, tasks_where
from deployments.router.realtime.events import ServerVad, SessionPatch, new_id
from deployments.router.realtime.turns import TurnSettings
from deployments.router.service import SonarayService

OPENAI_ASR_NAMES = ("whisper-1", "gpt-")


@dataclass(frozen=True)
class SessionSettings:
    kind: Literal["transcription", "realtime"]
    asr: Target
    id: str = field(default_factory=lambda: new_id("sess"))
    input_rate: int = 24000
    language: str | None = None
    prompt: str | None = None
    turns: TurnSettings | None = TurnSettings()
    output_rate: int = 24000
    voice: str | None = None
    speed: float = 1.0
    instructions: str | None = None

    def to_wire(self) -> dict:
        """The session as OpenAI's ``session.created`` / ``session.updated`` carry it."""
        turn = None
        if self.turns is not None:
            turn = {
                "type": "server_vad",
                "threshold": self.turns.threshold,
                "prefix_padding_ms": self.turns.prefix_padding_ms,
                "silence_duration_ms": self.turns.silence_duration_ms,
            }
        audio: dict = {
            "input": {
                "format": {"type": "audio/pcm", "rate": self.input_rate},
                "transcription": {
                    "model": self.asr.model,
                    "language": self.language,
                    "prompt": self.prompt,
                },
                "turn_detection": turn,
            }
        }
        wire = {"type": self.kind, "id": self.id, "object": "realtime.session", "audio": audio}
        if self.kind == "realtime":
            audio["output"] = {
                "format": {"type": "audio/pcm", "rate": self.output_rate},
                "voice": self.voice or "default",
                "speed": self.speed,
            }
            wire["output_modalities"] = ["audio"]
            wire["instructions"] = self.instructions or ""
        return wire

    def updated(self, patch: SessionPatch, service: SonarayService) -> SessionSettings:
        """These settings with a ``session.update`` applied (fields it omits unchanged)."""
        if patch.type is not None and patch.type != self.kind:
            raise InvalidRequest(
                f"this is a {self.kind} session; its type cannot change to {patch.type}",
                param="session.type",
            )
        new = self if patch.instructions is None else replace(self, instructions=patch.instructions)
        audio = patch.audio
        inp = audio.input if audio else None
        if inp is not None:
            fields = inp.model_fields_set
            if inp.format is not None:
                new = replace(new, input_rate=inp.format.rate)
            if inp.transcription is not None:
                t = inp.transcription
                asr = new.asr if t.model is None else asr_target(service, t.model)
                new = replace(new, asr=asr, language=t.language, prompt=t.prompt)
            if "turn_detection" in fields:
                new = replace(new, turns=_turns(inp.turn_detection))
        out = audio.output if audio else None
        if out is not None:
            if out.format is not None:
                new = replace(new, output_rate=out.format.rate)
            if out.voice is not None:
                voice = out.voice.get("id") if isinstance(out.voice, dict) else out.voice
                new = replace(new, voice=voice)
            if out.speed is not None:
                new = replace(new, speed=out.speed)
        return new


def asr_target(service: SonarayService, name: str | None) -> Target:
    """The speech recognition model a transcription model name means; OpenAI's names
    (``whisper-1``, ``gpt-4o-transcribe``, ...) mean the cluster's default."""
    asr = [spec.id for spec in tasks_where(lambda spec: spec.transcribes)]
    served = {m.name: m.task for m in service.args.models if m.task in asr}
    if name in served:
        return service.target(served[name], name)
    if name is None or name.startswith(OPENAI_ASR_NAMES):
        # as on the HTTP routes: the transcribing role's default, else any ASR family's
        for task in sorted(asr, key=lambda task: task != ROLES.transcribe):
            if service.serves(task):
                return service.target(task)
        raise ModelNotFound("this cluster serves no speech recognition model", param="model")
    raise ModelNotFound(
        f"unknown transcription model {name!r}; served: {sorted(served)}",
        param="session.audio.input.transcription.model",
    )


def _turns(vad: ServerVad | None) -> TurnSettings | None:
    if vad is None:
        return None
    return TurnSettings(vad.threshold, vad.prefix_padding_ms, vad.silence_duration_ms)
