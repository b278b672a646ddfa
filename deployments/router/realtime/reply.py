"""One spoken response: the responder's text, synthesized sentence by sentence and sent as
``response.output_audio.delta`` events while later sentences are still being spoken.

Cancelling the task (barge-in, ``response.cancel``, a closed socket) stops the sentence
stream, which cancels the tts calls still pending, and sends ``response.done`` with status
``cancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

import soxr
from sonaray_client.types import SpeechOptions

from deployments.errors import SonarayError
from deployments.graph.streams import speak_sentences, split_sentences
from deployments.protocol import Target
from deployments.router.realtime.events import encode_pcm16, error_event, new_id, server_event
from deployments.router.realtime.settings import SessionSettings

DELTA_SECONDS = 0.2
# Audio goes out at playback pace, at most this far ahead of what the client has played:
# a barge-in then cancels what is still unheard, and a slow reader holds little.
PLAYBACK_LEAD_S = 1.0
Send = Callable[[dict], Awaitable[None]]


@dataclass
class Reply:
    """A response in flight; ``status`` is what ``response.done`` reports."""

    settings: SessionSettings
    id: str = field(default_factory=lambda: new_id("resp"))
    item_id: str = field(default_factory=lambda: new_id("item"))
    status: str = "in_progress"
    reason: str | None = None
    spoken: list[str] = field(default_factory=list)
    first_audio: asyncio.Event = field(default_factory=asyncio.Event)

    def wire(self, error: SonarayError | None = None) -> dict:
        details = None
        if self.status == "cancelled":
            details = {"type": "cancelled", "reason": self.reason}
        elif error is not None:
            details = {"type": "failed", "error": {"type": error.type, "code": error.code}}
        output = []
        if self.spoken:
            output.append(
                {
                    "id": self.item_id,
                    "type": "message",
                    "role": "assistant",
                    "status": "completed" if self.status == "completed" else "incomplete",
                    "content": [{"type": "output_audio", "transcript": " ".join(self.spoken)}],
                }
            )
        return {
            "id": self.id,
            "object": "realtime.response",
            "status": self.status,
            "status_details": details,
            "output": output,
            "output_modalities": ["audio"],
            "audio": {
                "output": {
                    "format": {"type": "audio/pcm", "rate": self.settings.output_rate},
                    "voice": self.settings.voice or "default",
                }
            },
        }


async def speak_reply(
    reply: Reply,
    text: Callable[[], Awaitable[str]],
    call: Callable,
    voice: Target,
    send: Send,
) -> str:
    """Send the whole response's events; returns the text spoken."""
    s = reply.settings
    await send(server_event("response.created", response=reply.wire()))
    ids = {"response_id": reply.id, "item_id": reply.item_id, "output_index": 0, "content_index": 0}
    try:
        said = await text()
        options = SpeechOptions(input=said or " ", voice=s.voice, speed=s.speed)
        sentences = split_sentences(said)
        waves = speak_sentences(call, voice, options) if sentences else None
        if waves is not None:
            clock = asyncio.get_running_loop().time
            played_from, sent = 0.0, 0.0
            async with aclosing(waves) as stream:
                index = 0
                async for wave in stream:
                    await send(
                        server_event(
                            "response.output_audio_transcript.delta", delta=sentences[index], **ids
                        )
                    )
                    reply.spoken.append(sentences[index])
                    index += 1
                    audio = soxr.resample(wave.audio, wave.sampling_rate, s.output_rate)
                    step = int(DELTA_SECONDS * s.output_rate)
                    for start in range(0, len(audio), step):
                        if not reply.first_audio.is_set():
                            played_from = clock()
                        ahead = sent - (clock() - played_from) - PLAYBACK_LEAD_S
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                        sent += min(step, len(audio) - start) / s.output_rate
                        await send(
                            server_event(
                                "response.output_audio.delta",
                                delta=encode_pcm16(audio[start : start + step]),
                                **ids,
                            )
                        )
                        reply.first_audio.set()
        transcript = " ".join(reply.spoken)
        await send(
            server_event("response.output_audio_transcript.done", transcript=transcript, **ids)
        )
        await send(server_event("response.output_audio.done", **ids))
        reply.status = "completed"
        await send(server_event("response.done", response=reply.wire()))
        return transcript
    except asyncio.CancelledError:
        reply.status = "cancelled"
        await send(server_event("response.done", response=reply.wire()))
        raise
    except SonarayError as exc:
        reply.status = "failed"
        await send(error_event(exc))
        await send(server_event("response.done", response=reply.wire(exc)))
        return ""
