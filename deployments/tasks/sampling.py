"""Per-item seeded sampling inside a batched ``generate``: each item draws from its own RNG.

transformers samples with ``torch.multinomial`` on the global RNG, so an item's output
depends on what else is in its batch. ``SeededSampler`` is a logits processor that does
the sampling itself (temperature, top-k, Gumbel-max with one ``torch.Generator`` per item)
and hands back scores whose argmax is the chosen token; run ``generate`` greedily.
"""

from __future__ import annotations

import secrets

import torch
from transformers import LogitsProcessor

# Finite, so classifier-free guidance applied after us (cond - uncond) stays free of NaN.
_REJECTED = -1.0e4


def resolve_seed(seed: int | None) -> int:
    """The caller's seed, or a fresh one to report back so the output can be reproduced."""
    return secrets.randbits(31) if seed is None else seed


class SeededSampler(LogitsProcessor):
    """Sample rows of ``rows_per_item`` for each item with that item's seed and settings.

    When the scores hold a classifier-free-guidance pair (conditional rows, then as many
    unconditional rows), guidance is applied here per item and the chosen one-hot is
    returned for both halves, so the guidance processor that runs after it is a no-op.
    """

    def __init__(
        self,
        seeds: list[int],
        *,
        rows_per_item: int,
        temperatures: list[float],
        guidance_scales: list[float],
        top_k: int | None,
    ):
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.rows_per_item = rows_per_item
        self.temperatures = torch.tensor(temperatures).repeat_interleave(rows_per_item)[:, None]
        self.guidance = torch.tensor(guidance_scales).repeat_interleave(rows_per_item)[:, None]
        self.top_k = top_k

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        rows = len(self.generators) * self.rows_per_item
        guided = scores.shape[0] == 2 * rows
        logits = scores.float()
        if guided:
            cond, uncond = logits.split(rows, dim=0)
            logits = uncond + (cond - uncond) * self.guidance.to(scores.device)
        logits = logits / self.temperatures.to(scores.device)
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        shape = (self.rows_per_item, logits.shape[-1])
        uniform = torch.cat([torch.rand(shape, generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0 - 1e-7)))
        chosen = torch.argmax(logits + gumbel.to(logits.device), dim=-1, keepdim=True)
        one_hot = torch.full_like(scores, _REJECTED)[:rows].scatter(1, chosen, 0.0)
        return torch.cat([one_hot, one_hot]) if guided else one_hot
