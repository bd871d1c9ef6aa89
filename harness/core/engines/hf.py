"""The default engine: our own batched KV-cached sampler running on the policy itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.core.rollout import Rollouts, sample


class HFEngine:
    """Samples with :func:`harness.core.rollout.sample` on the live policy: there is no copy of the
    weights to keep in sync, so an update is visible to the next sample at once."""

    name = "hf"

    def __init__(self, model: Any) -> None:
        self.model = model

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        temperature: float,
        eos_ids: Sequence[int],
        pad_id: int,
        generator: torch.Generator | None = None,
    ) -> Rollouts:
        return sample(self.model, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                      eos_ids=eos_ids, pad_id=pad_id, generator=generator)

    def sync_weights(self, model: Any) -> None:
        self.model = model

    def close(self) -> None:
        pass
