"""DAPO dynamic sampling (Yu et al. 2025, arXiv 2503.14476): over-sample, drop the
groups whose G rewards are all equal, and keep generating until the batch holds B informative
groups.

Settings follow the authors' released recipe (verl ``recipe/dapo``, Qwen2.5-32B run): each
generation round rolls out ``gen_prompt_bsz = 3 * train_prompt_bsz`` prompts
(``oversample = 3``), taken in order from the shuffled dataloader, and gives up after
``max_num_gen_batches = 10`` rounds (``max_rounds``). Informative groups are taken first come,
first served and the surplus is dropped, as the recipe's ``batch[:traj_bsz]`` does.

Here every round goes through ``ctx.rollout(..., reuse=True)``: the backbone counts its samples
on the clock and trains on the groups already rolled out instead of sampling the chosen prompts
again. Where the recipe raises once the rounds are spent, this fills the rest of the batch with
already-rolled groups that were not informative (earliest first), so a step always trains on B
groups and a run on hard data goes on instead of stopping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from baselines.stream import EpochStream
from harness.config.base import check
from strategies.base import SelectionContext, StepFeedback
from strategies.registry import StrategyEntry


@dataclass
class DapoParams:
    """DAPO dynamic sampling; defaults are the authors' recipe."""

    # prompts rolled out per generation round, as a multiple of the batch (recipe: 3)
    oversample: float = 3.0
    # generation rounds per step before the batch is filled with non-informative groups
    # (recipe: max_num_gen_batches = 10)
    max_rounds: int = 10

    def validate(self, prefix: str = "strategy") -> None:
        check(self.oversample >= 1.0, f"{prefix}.oversample", self.oversample,
              "must be >= 1 (a round rolls out at least one batch of prompts)")
        check(self.max_rounds >= 1, f"{prefix}.max_rounds", self.max_rounds, "must be >= 1")


class Dapo:
    def __init__(self, params: DapoParams, pool_size: int, seed: int) -> None:
        self.params = params
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        self.stream = EpochStream(pool_size, self.rng)

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        if n > self.pool_size:
            raise ValueError(f"cannot select {n} distinct prompts from a pool of {self.pool_size}")
        per_round = max(n, math.ceil(round(self.params.oversample * n, 9)))
        rolled: list[int] = []  # every prompt rolled out this step, in order
        informative: list[int] = []
        for _ in range(self.params.max_rounds):
            # a prompt is rolled out at most once per step: its kept group is the one trained on
            k = min(per_round, self.pool_size - len(rolled))
            if k == 0 or len(informative) >= n:
                break
            candidates = self.stream.draw(k, exclude=rolled)
            rewards = ctx.rollout(candidates, ctx.group_size, reuse=True)
            rolled.extend(candidates)
            informative.extend(i for i, r in zip(candidates, rewards, strict=True)
                               if len(set(r)) > 1)
        chosen = informative[:n]
        if len(chosen) < n:  # rounds spent: fill with the earliest all-equal groups
            taken = set(chosen)
            chosen += [i for i in rolled if i not in taken][: n - len(chosen)]
        return chosen

    def update(self, feedback: StepFeedback) -> None:
        return None  # the filter needs no memory: each step judges fresh rollouts

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "stream": self.stream.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.stream.load_state_dict(state["stream"])


ENTRY = StrategyEntry(
    name="dapo",
    factory=Dapo,
    params_cls=DapoParams,
    description="DAPO dynamic sampling: roll out 3B candidates per round, keep groups whose "
    "rewards differ, repeat until B (at most 10 rounds); rollouts reused for training",
)
