"""Uniform selection: shuffle the pool without replacement, reshuffle every epoch.

This is plain GRPO's data order (a shuffled dataloader), the baseline every speedup is
measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.base import SelectionContext, StepFeedback
from strategies.registry import StrategyEntry


@dataclass
class UniformParams:
    """Uniform has no knobs."""

    def validate(self, prefix: str = "strategy") -> None:
        return None


class Uniform:
    def __init__(self, params: UniformParams, pool_size: int, seed: int) -> None:
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        self.order: list[int] = []
        self.cursor = 0
        self.epoch = 0

    def _reshuffle(self) -> None:
        self.order = self.rng.permutation(self.pool_size).tolist()
        self.cursor = 0
        self.epoch += 1

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        if n > self.pool_size:
            raise ValueError(f"cannot select {n} distinct prompts from a pool of {self.pool_size}")
        chosen: list[int] = []
        while len(chosen) < n:
            if self.cursor >= len(self.order):
                self._reshuffle()
            take = self.order[self.cursor : self.cursor + n - len(chosen)]
            # across an epoch boundary a prompt could repeat within one batch; skip repeats
            chosen.extend(i for i in take if i not in chosen)
            self.cursor += len(take)
        return chosen

    def update(self, feedback: StepFeedback) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "order": self.order,
                "cursor": self.cursor, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = list(state["order"])
        self.cursor = int(state["cursor"])
        self.epoch = int(state["epoch"])


ENTRY = StrategyEntry(
    name="uniform",
    factory=Uniform,
    params_cls=UniformParams,
    description="plain GRPO order: shuffle the pool without replacement, reshuffle each epoch",
)
