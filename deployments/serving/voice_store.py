"""Saved voices (``POST /v1/audio/voices``): one store per application, shared by every
Router replica.

Why a Ray actor: router replicas are many, on any node, and a voice saved through one must
be usable through all of them, so per-replica memory is not enough, and a local directory
is not shared between nodes. One named actor (``get_if_exists``) is reachable from every
replica wherever it runs. It is detached, so it outlives the replica that happened to
create it; it lives as long as the Ray cluster. Set ``args.voices.directory`` (a volume
mounted on the node that runs the actor, e.g. a Kubernetes PersistentVolume) and voices
also survive a cluster restart: each is written there as ``<id>.npy`` (16 kHz float32
samples) + ``<id>.json`` (name, consent, created_at) and read back on start.

What is kept is the clip, not an embedding: the clip serves any cloning model (each
embeds it with its own speaker encoder), and the same voice id keeps working when the
x-vector model changes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

VOICE_RATE = 16000


@dataclass(frozen=True)
class SavedVoice:
    """A saved voice's card, in OpenAI's custom-voice shape."""

    id: str
    name: str
    created_at: int
    consent: str
    object: str = "audio.voice"
    type: str = "audio_sample"

    def public(self) -> dict:
        card = asdict(self)
        del card["consent"]
        return card


class VoiceStore:
    """Voices by id: clips at ``VOICE_RATE`` in memory, mirrored to ``directory`` if set."""

    def __init__(self, directory: str | None = None, max_voices: int = 100):
        self.directory = Path(directory) if directory else None
        self.max_voices = max_voices
        self.voices: dict[str, tuple[SavedVoice, np.ndarray]] = {}
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            for card in sorted(self.directory.glob("voice_*.json")):
                voice = SavedVoice(**json.loads(card.read_text()))
                self.voices[voice.id] = (voice, np.load(card.with_suffix(".npy")))

    def save(self, name: str, consent: str, audio: np.ndarray) -> dict | None:
        """Keep a clip; its public card, or None when the store is full."""
        if len(self.voices) >= self.max_voices:
            return None
        voice = SavedVoice(f"voice_{uuid.uuid4().hex[:24]}", name, int(time.time()), consent)
        clip = np.ascontiguousarray(audio, dtype=np.float32)
        if self.directory is not None:
            np.save(self.directory / f"{voice.id}.npy", clip)
            (self.directory / f"{voice.id}.json").write_text(json.dumps(asdict(voice)))
        self.voices[voice.id] = (voice, clip)
        return voice.public()

    def clip(self, voice_id: str) -> np.ndarray | None:
        found = self.voices.get(voice_id)
        return None if found is None else found[1]

    def cards(self) -> list[dict]:
        return [voice.public() for voice, _ in self.voices.values()]

    def delete(self, voice_id: str) -> bool:
        if self.voices.pop(voice_id, None) is None:
            return False
        if self.directory is not None:
            for suffix in (".npy", ".json"):
                (self.directory / f"{voice_id}{suffix}").unlink(missing_ok=True)
        return True


def voice_store_actor(app_name: str, directory: str | None, max_voices: int):
    """The application's one VoiceStore actor, created by whichever replica asks first."""
    import ray

    actor = ray.remote(num_cpus=0)(VoiceStore)
    return actor.options(
        name=f"sonaray-voices-{app_name}",
        namespace="sonaray",
        get_if_exists=True,
        lifetime="detached",
    ).remote(directory, max_voices)
