"""Oracle difficulty: measure the true pass rate of candidates with fresh rollouts, then select
like DOTS (``softmax(-|p - alpha| / tau)`` without replacement).

Every ``mu`` steps it rolls out ``candidates`` uniformly drawn pool questions ``samples`` times
each through the backbone's extra-rollout channel, so its estimation cost is counted on the
clock (a real, SPEED-like pre-filtering method), and spends the selected prompts over the next
``mu`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config.base import check
from strategies.base import SelectionContext, StepFeedback
from strategies.difficulty import sample_targeted
from strategies.registry import StrategyEntry


@dataclass
class OracleParams:
    """Oracle difficulty selection (the paper's DOTS settings for alpha, tau, mu)."""

    # pool questions rolled out per round (at least twice what the round selects, so that there
    # is a choice; all of the pool if it is smaller)
    candidates: int = 1024
    samples: int = 4  # rollouts per candidate to estimate its pass rate
    alpha: float = 0.5  # target pass rate
    tau: float = 1e-3  # softmax temperature over -|p - alpha|
    mu: int = 2  # steps per selection round

    def validate(self, prefix: str = "strategy") -> None:
        check(self.candidates > 0, f"{prefix}.candidates", self.candidates, "must be > 0")
        check(self.samples >= 2, f"{prefix}.samples", self.samples, "must be >= 2")
        check(0.0 <= self.alpha <= 1.0, f"{prefix}.alpha", self.alpha, "must be in [0, 1]")
        check(self.tau > 0, f"{prefix}.tau", self.tau, "must be > 0")
        check(self.mu >= 1, f"{prefix}.mu", self.mu, "must be >= 1")


class Oracle:
    def __init__(self, params: OracleParams, pool_size: int, seed: int) -> None:
        self.params = params
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        # this round's prompts still to be trained on, in order; a select takes the next n (n
        # may change between calls: the fresh share shrinks once a replay buffer fills)
        self.queue: list[int] = []
        # prompts served in the current step: a refill that starts a round must not repeat them
        self.served_step, self.served = 0, set()

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        if ctx.step != self.served_step:
            self.served_step, self.served = ctx.step, set()
        if len(self.queue) < n:
            self._new_round(ctx, n)
        batch, self.queue = self.queue[:n], self.queue[n:]
        self.served.update(batch)
        return batch

    def _new_round(self, ctx: SelectionContext, n: int) -> None:
        p = self.params
        need = n * p.mu
        free = np.setdiff1d(np.arange(self.pool_size), sorted(self.served), assume_unique=True)
        if len(free) < need:
            raise ValueError(f"cannot choose {need} prompts from a pool of {self.pool_size} with "
                             f"{len(self.served)} already served this step")
        size = min(len(free), max(p.candidates, 2 * need))
        # with nothing served yet this draws exactly as before (free is the whole pool)
        candidates = (self.rng.choice(self.pool_size, size=size, replace=False)
                      if len(free) == self.pool_size else self.rng.choice(free, size=size,
                                                                          replace=False))
        rewards = ctx.rollout(candidates.tolist(), p.samples)
        rates = np.array([sum(r) / len(r) for r in rewards])
        chosen = candidates[sample_targeted(rates, need, self.rng, p.alpha, p.tau)]
        self.rng.shuffle(chosen)
        self.queue = chosen.tolist()

    def update(self, feedback: StepFeedback) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "queue": self.queue,
                "served": [self.served_step, sorted(self.served)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        # checkpoints written before the queue was flat hold a list of batches
        queue = state["queue"]
        self.queue = [int(i) for b in queue for i in (b if isinstance(b, list) else [b])]
        step, served = state.get("served", [0, []])
        self.served_step, self.served = int(step), {int(i) for i in served}


ENTRY = StrategyEntry(
    name="oracle",
    factory=Oracle,
    params_cls=OracleParams,
    description="true pass rates from fresh rollouts of sampled candidates (cost on the clock), "
    "then pick near alpha like DOTS",
)
