"""GRESO pre-rollout filtering (Zheng et al. 2025, "Act Only When It Pays", arXiv 2506.02177):
skip, before any rollout, prompts whose recent groups had zero reward variance.

A prompt whose last ``z`` groups in a row were all-equal is skipped with probability
``1 - p ** z`` (kept with ``p ** z``); prompts never seen or last informative are always kept.
``p`` is the exploration probability, one for *easy* prompts (last all-equal group all solved)
and one for *hard* ones (all failed). After every step each adapts by ``step``: down (skip
more) when that kind's share of the step's groups reached its target, up otherwise, within
``[min_p, max_p]``. Settings are the authors' (paper and released scripts, Infini-AI-Lab/GRESO):
``p_easy = p_hard = 0.5`` at the start, target zero-variance share ``0.25`` split one third to
easy and two thirds to hard (more exploration of hard prompts, which a learning policy is likelier
to crack), ``step = 0.01``, bounds ``[0.05, 0.95]``, and no adaptation during the first pass over
the pool, when no prompt has a history yet.

Candidates come in the shuffled epoch order; a skipped prompt is passed over for this epoch and
the batch is filled from the following candidates. In the paper the filter sits on top of DAPO
dynamic sampling with an adaptive rollout batch; here it fills a fixed batch of B prompts, so
its effect is measured alone (dynamic sampling is the ``dapo`` strategy). If a whole pool's worth
of candidates was skipped within one selection, the batch is completed with the skipped prompts
that had the shortest zero-variance streaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from baselines.stream import EpochStream
from harness.config.base import check
from strategies.base import SelectionContext, StepFeedback
from strategies.registry import StrategyEntry


@dataclass
class GresoParams:
    """GRESO filtering; defaults are the authors' (``p_easy``/``p_hard``/``target_zero_variance``
    in their scripts, ``step`` and the bounds in their trainer)."""

    p_easy: float = 0.5  # initial exploration probability of easy zero-variance prompts
    p_hard: float = 0.5  # initial exploration probability of hard zero-variance prompts
    target_zero_variance: float = 0.25  # targeted share of zero-variance groups per step
    easy_share: float = 1 / 3  # part of the target for easy groups (the rest is for hard ones)
    step: float = 0.01  # change of an exploration probability per training step
    min_p: float = 0.05  # bounds of the exploration probabilities
    max_p: float = 0.95

    def validate(self, prefix: str = "strategy") -> None:
        check(0.0 < self.min_p <= self.max_p <= 1.0, f"{prefix}.min_p", (self.min_p, self.max_p),
              "need 0 < min_p <= max_p <= 1")
        for name in ("p_easy", "p_hard"):
            value = getattr(self, name)
            check(self.min_p <= value <= self.max_p, f"{prefix}.{name}", value,
                  f"must be in [min_p, max_p] = [{self.min_p}, {self.max_p}]")
        check(0.0 <= self.target_zero_variance <= 1.0, f"{prefix}.target_zero_variance",
              self.target_zero_variance, "must be in [0, 1]")
        check(0.0 <= self.easy_share <= 1.0, f"{prefix}.easy_share", self.easy_share,
              "must be in [0, 1]")
        check(self.step >= 0.0, f"{prefix}.step", self.step, "must be >= 0")


class Greso:
    def __init__(self, params: GresoParams, pool_size: int, seed: int) -> None:
        self.params = params
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        self.stream = EpochStream(pool_size, self.rng)
        self.streak = [0] * pool_size  # most recent consecutive zero-variance groups
        self.easy = [False] * pool_size  # was the latest zero-variance group all solved?
        self.p_easy = params.p_easy
        self.p_hard = params.p_hard

    def skip_probability(self, i: int) -> float:
        p = self.p_easy if self.easy[i] else self.p_hard
        return 1.0 - p ** self.streak[i]

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        if n > self.pool_size:
            raise ValueError(f"cannot select {n} distinct prompts from a pool of {self.pool_size}")
        chosen: list[int] = []
        skipped: list[int] = []
        while len(chosen) < n:
            left = self.pool_size - len(chosen) - len(skipped)
            if left == 0:  # everything was skipped once: take the least stale first
                skipped.sort(key=lambda i: self.streak[i])
                chosen += skipped[: n - len(chosen)]
                break
            for i in self.stream.draw(min(n - len(chosen), left), exclude=chosen + skipped):
                # prompts without a streak are kept without spending a random draw
                keep = self.streak[i] == 0 or self.rng.random() >= self.skip_probability(i)
                (chosen if keep else skipped).append(i)
        return chosen

    def update(self, feedback: StepFeedback) -> None:
        easy = hard = 0
        for g in feedback.groups:
            if g.informative:
                self.streak[g.index] = 0
                continue
            self.streak[g.index] += 1
            self.easy[g.index] = g.rewards[0] >= 1.0  # binary rewards: all solved or all failed
            easy += self.easy[g.index]
            hard += not self.easy[g.index]
        total = len(feedback.groups)
        if total and self.stream.epoch >= 2:
            p = self.params
            self.p_easy = self._adapt(self.p_easy, easy / total,
                                      p.target_zero_variance * p.easy_share)
            self.p_hard = self._adapt(self.p_hard, hard / total,
                                      p.target_zero_variance * (1 - p.easy_share))

    def _adapt(self, prob: float, share: float, target: float) -> float:
        p = self.params
        # at or above target: explore less (skip more); below it: explore more
        prob = prob - p.step if share >= target else prob + p.step
        return min(p.max_p, max(p.min_p, prob))

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "stream": self.stream.state_dict(),
                "streak": self.streak, "easy": self.easy,
                "p_easy": self.p_easy, "p_hard": self.p_hard}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.stream.load_state_dict(state["stream"])
        self.streak = [int(z) for z in state["streak"]]
        self.easy = [bool(e) for e in state["easy"]]
        self.p_easy = float(state["p_easy"])
        self.p_hard = float(state["p_hard"])


ENTRY = StrategyEntry(
    name="greso",
    factory=Greso,
    params_cls=GresoParams,
    description="GRESO: skip prompts with a zero-variance streak z with probability 1 - p^z "
    "before rollout; p adapts (easy and hard apart) towards 25% zero-variance groups",
)
