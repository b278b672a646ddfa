"""Voice activity scored block by block: what a realtime session sends the ``frames``
deployment, and what it gets back.

The session owns the recurrent state and sends it with each block, so the replica stays
stateless (any replica can score any session's next block) and blocks of many sessions
share one Serve batch. The state is opaque to the session: it starts from ``None`` and
sends back whatever the engine returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class VadState:
    """Silero's LSTM state (``h``, ``c``) and the last samples the next window sees."""

    h: np.ndarray
    c: np.ndarray
    context: np.ndarray


@dataclass
class VadBlock:
    """The next whole windows of a live stream at the engine's rate, and its state so far.

    An empty block with ``state=None`` asks for a fresh state (a session's first call, which
    also tells the session whether the model can score blocks at all).
    """

    audio: np.ndarray
    sampling_rate: int
    state: VadState | None = None


@dataclass
class VadScores:
    """Speech probability of each window of a block, and the state to send with the next."""

    probabilities: np.ndarray
    state: VadState
    window: int
