"""MoPPS, model predictive prompt selection (Qu et al. 2025, "Can Prompt Difficulty be Online
Predicted for Accelerating RL Finetuning of Reasoning Models?", arXiv 2507.04632).

Each prompt's pass rate has a Beta(a, b) posterior, updated from the rewards of every group
trained on with a forgetting factor (``decay``, the paper's lambda) that pulls old evidence back
towards the prior as the policy moves::

    a <- decay * a + (1 - decay) * prior_alpha + successes
    b <- decay * b + (1 - decay) * prior_beta + failures

Selection draws ``candidates_ratio * B`` candidates from the shuffled epoch order (the paper's
candidate batch of size B-hat), samples one pass rate per candidate from its posterior (Thompson
sampling) and keeps the B whose samples are nearest ``target`` (top-B by squared distance). No
rollout is spent on selection: that is the method's point. The update rule, the Beta(1, 1) prior,
the squared-distance top-B and target 0.5 are the authors' released code (thu-rllab/MoPPS,
``PosteriorSampler``, strategy ``topk``). ``decay = 0.5`` and ``candidates_ratio = 4`` are our
reading of the paper's setting; neither could be confirmed from the released scripts reachable
here (one of the authors' DeepScaler scripts uses a ratio of 16), so they are settings to sweep.
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
class MoppsParams:
    """MoPPS posterior sampling (see the module docstring for where each default comes from)."""

    candidates_ratio: float = 4.0  # candidates per step as a multiple of the batch (B-hat / B)
    target: float = 0.5  # pass rate to select nearest to (0.5: the largest reward variance)
    decay: float = 0.5  # forgetting factor of the streaming posterior (1: never forget)
    prior_alpha: float = 1.0  # Beta prior pseudo-successes
    prior_beta: float = 1.0  # Beta prior pseudo-failures

    def validate(self, prefix: str = "strategy") -> None:
        check(self.candidates_ratio >= 1.0, f"{prefix}.candidates_ratio", self.candidates_ratio,
              "must be >= 1 (at least one batch of candidates)")
        check(0.0 <= self.target <= 1.0, f"{prefix}.target", self.target, "must be in [0, 1]")
        check(0.0 <= self.decay <= 1.0, f"{prefix}.decay", self.decay, "must be in [0, 1]")
        for name in ("prior_alpha", "prior_beta"):
            value = getattr(self, name)
            check(value > 0, f"{prefix}.{name}", value, "must be > 0")


class Mopps:
    def __init__(self, params: MoppsParams, pool_size: int, seed: int) -> None:
        self.params = params
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        self.stream = EpochStream(pool_size, self.rng)
        self.alpha = np.full(pool_size, params.prior_alpha, dtype=np.float64)
        self.beta = np.full(pool_size, params.prior_beta, dtype=np.float64)
        self.predictions: dict[int, float] = {}  # posterior means of the latest selection

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        if n > self.pool_size:
            raise ValueError(f"cannot select {n} distinct prompts from a pool of {self.pool_size}")
        p = self.params
        size = min(self.pool_size, max(n, math.ceil(round(p.candidates_ratio * n, 9))))
        candidates = np.array(self.stream.draw(size), dtype=np.int64)
        sampled = self.rng.beta(self.alpha[candidates], self.beta[candidates])
        # stable sort: ties go to the earlier candidate, so the order is seed-determined
        chosen = candidates[np.argsort((sampled - p.target) ** 2, kind="stable")[:n]].tolist()
        mean = self.alpha / (self.alpha + self.beta)
        self.predictions = {i: float(mean[i]) for i in chosen}
        return chosen

    def predicted_pass_rates(self, indices: list[int]) -> list[float] | None:
        """Posterior means of the chosen prompts at selection time (the records compare them
        with the observed pass rates; the Thompson draw itself is deliberately noisy)."""
        if not all(i in self.predictions for i in indices):
            return None
        return [self.predictions[i] for i in indices]

    def update(self, feedback: StepFeedback) -> None:
        p = self.params
        for g in feedback.groups:
            successes = float(np.clip(g.rewards, 0.0, 1.0).sum())
            i = g.index
            self.alpha[i] = p.decay * self.alpha[i] + (1 - p.decay) * p.prior_alpha + successes
            self.beta[i] = (p.decay * self.beta[i] + (1 - p.decay) * p.prior_beta
                            + len(g.rewards) - successes)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "stream": self.stream.state_dict(),
                "alpha": self.alpha.tolist(), "beta": self.beta.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.stream.load_state_dict(state["stream"])
        self.alpha = np.array(state["alpha"], dtype=np.float64)
        self.beta = np.array(state["beta"], dtype=np.float64)


ENTRY = StrategyEntry(
    name="mopps",
    factory=Mopps,
    params_cls=MoppsParams,
    description="MoPPS: per-prompt Beta posterior of the pass rate with forgetting; Thompson-"
    "sample 4B candidates, train on the B nearest 0.5; no rollouts spent on selection",
)
