"""DOTS: difficulty-targeted online data selection (DESIGN-NOTES section 1).

One round every ``mu`` steps: roll out K uniformly drawn reference questions (on the clock,
through the backbone), predict every pool question's pass rate with the frozen attention-based
predictor from the references' observed pass rates, calibrate the predictions with a 1-D linear
fit on the references, then draw the round's prompts without replacement from
``softmax(-|p - alpha| / tau)``. The round's prompts are spent over the next steps in order.

Two options beyond the paper's public code, both off by default:
- ``reuse_references``: reference groups are rolled out with G samples like training groups, so
  the informative ones (rewards not all equal) are trained on in the round's first step instead of
  being thrown away (with replay on, those not trained on join the buffer).
- ``label_memory``: every observed group (fresh training groups and references) leaves its pass
  rate in a memory; a round then rolls out only ``fresh_references`` new references and fills the
  reference set up to K with remembered labels at most ``memory_age`` steps old.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config.base import check
from strategies.base import SelectionContext, StepFeedback
from strategies.difficulty import apply_linear_calibration, linear_calibration, sample_targeted
from strategies.registry import StrategyEntry


@dataclass
class DotsParams:
    """DOTS settings; defaults are the paper's (K may be scaled with the batch, see configs)."""

    # K: reference questions per round. None: the paper's share, K = mu * B / 4 (256 at its
    # B = 512, mu = 2), so reference rollouts stay a quarter of a round's whatever the batch
    references: int | None = None
    alpha: float = 0.5  # target pass rate
    tau: float = 1e-3  # softmax temperature over -|p - alpha| (near-greedy)
    mu: int = 2  # steps per selection round
    reuse_references: bool = False  # train on informative reference groups (not in the paper's code)
    label_memory: bool = False  # reuse observed groups' pass rates as reference labels
    fresh_references: int | None = None  # with label_memory: new references per round (None: K/4)
    memory_age: int = 2  # with label_memory: oldest remembered label used as a reference, in steps
    # with label_memory: a prompt observed within this many steps is ranked by its observed pass
    # rate instead of the prediction (the frozen predictor cannot see that the policy learned it)
    known_age: int = 10
    # a prompt trained on within this many steps is not a candidate (0: the paper's code, which
    # may pick the same prompts round after round; a frozen predictor cannot see that the
    # policy has since learned them, and a small model memorises what it is shown repeatedly)
    cooldown: int = 0

    def validate(self, prefix: str = "strategy") -> None:
        check(self.references is None or self.references >= 2, f"{prefix}.references",
              self.references, "null (the paper's K = mu * B / 4) or an integer >= 2")
        check(0.0 <= self.alpha <= 1.0, f"{prefix}.alpha", self.alpha, "must be in [0, 1]")
        check(self.tau > 0, f"{prefix}.tau", self.tau, "must be > 0")
        check(self.mu >= 1, f"{prefix}.mu", self.mu, "must be >= 1")
        check(self.fresh_references is None
              or 1 <= self.fresh_references <= (self.references or self.fresh_references),
              f"{prefix}.fresh_references", self.fresh_references,
              f"null (K / 4) or an integer in [1, references={self.references}]")
        check(self.memory_age >= 0, f"{prefix}.memory_age", self.memory_age, "must be >= 0")
        check(self.known_age >= 0, f"{prefix}.known_age", self.known_age, "must be >= 0")
        check(self.cooldown >= 0, f"{prefix}.cooldown", self.cooldown, "must be >= 0 (0: off)")


class Dots:
    def __init__(self, params: DotsParams, pool_size: int, seed: int) -> None:
        if params.references is not None and params.references > pool_size:
            raise ValueError(f"strategy.references={params.references} exceeds the pool "
                             f"({pool_size} questions): lower it")
        self.params = params
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        self.queue: list[int] = []  # this round's prompts still to be trained on
        self.predictions: dict[int, float] = {}  # calibrated predictions of queued prompts
        self.memory: dict[int, tuple[float, int]] = {}  # index -> (observed pass rate, step)
        self.trained: dict[int, int] = {}  # index -> step it was last trained on (cooldown)
        self.last_calibration = (1.0, 0.0)  # (slope, intercept) of the latest round
        # prompts served in the current step: a refill (a second select in one step) that
        # starts a new round must not choose them again
        self.served_step, self.served = 0, set()

    # ------------------------------------------------------------------ selection

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        if ctx.step != self.served_step:
            self.served_step, self.served = ctx.step, set()
        if len(self.queue) < n:
            batch = self._new_round(ctx, n)
        else:
            batch, self.queue = self.queue[:n], self.queue[n:]
        self.served.update(batch)
        return batch

    def references(self, ctx: SelectionContext) -> int:
        """K for this run: the configured value, or the paper's share of a round's prompts."""
        k = self.params.references or max(2, round(self.params.mu * ctx.batch_size / 4))
        return min(k, self.pool_size)

    def _references(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Reference indices, their labels, and the freshly rolled-out ones among them."""
        p = self.params
        k = self.references(ctx)
        remembered: list[int] = []
        n_fresh = k
        if p.label_memory:
            recent = [(step, i) for i, (_, step) in self.memory.items()
                      if ctx.step - step <= p.memory_age]
            recent.sort(reverse=True)  # newest first
            fresh_min = p.fresh_references or max(1, k // 4)
            remembered = [i for _, i in recent[:k - fresh_min]]
            n_fresh = k - len(remembered)
        others = np.setdiff1d(np.arange(self.pool_size), remembered, assume_unique=True)
        fresh = self.rng.choice(others, size=n_fresh, replace=False).tolist()
        rewards = ctx.rollout(fresh, ctx.group_size, reuse=p.reuse_references)
        for i, r in zip(fresh, rewards, strict=True):
            self.memory[i] = (sum(r) / len(r), ctx.step)
        refs = np.array(remembered + fresh, dtype=np.int64)
        labels = np.array([self.memory[i][0] for i in refs.tolist()], dtype=np.float64)
        return refs, labels, [i for i, r in zip(fresh, rewards, strict=True) if len(set(r)) > 1]

    def _new_round(self, ctx: SelectionContext, n: int) -> list[int]:
        p = self.params
        refs, labels, informative_refs = self._references(ctx)
        raw = np.asarray(ctx.predict(refs.tolist(), labels.tolist()), dtype=np.float64)
        slope, intercept = linear_calibration(raw[refs], labels)
        pred = apply_linear_calibration(raw, slope, intercept).astype(np.float64)
        self.last_calibration = (slope, intercept)
        if p.label_memory:
            for i, (rate, step) in self.memory.items():
                if ctx.step - step <= p.known_age:
                    pred[i] = rate
        # reused reference groups were rolled out by this step's policy: train on them now
        reused: list[int] = []
        if p.reuse_references and informative_refs:
            fresh_refs = [i for i in informative_refs if i not in self.served]
            closest = sorted(fresh_refs, key=lambda i: abs(self.memory[i][0] - p.alpha))
            reused = closest[:n]
        need = p.mu * n - len(reused)
        excluded = set(reused) | self.served
        if p.cooldown:
            cooling = [i for i, step in self.trained.items() if ctx.step - step < p.cooldown]
            # never starve the round: cooling prompts come back, least recent first
            cooling.sort(key=lambda i: self.trained[i])
            spare = self.pool_size - len(excluded) - need
            excluded.update(cooling[max(0, len(cooling) - spare):] if spare >= 0 else [])
        if self.pool_size - len(excluded) < need:
            raise ValueError(f"cannot choose {need} prompts from a pool of {self.pool_size} with "
                             f"{len(excluded)} already served or reused this step")
        candidates = np.setdiff1d(np.arange(self.pool_size), sorted(excluded), assume_unique=True)
        chosen = candidates[sample_targeted(pred[candidates], need, self.rng, p.alpha, p.tau)]
        self.rng.shuffle(chosen)
        order = reused + chosen.tolist()
        self.predictions = {i: float(pred[i]) for i in order}
        for i in reused:  # their pass rate is known, not predicted
            self.predictions[i] = self.memory[i][0]
        batch, self.queue = order[:n], order[n:]
        return batch

    def predicted_pass_rates(self, indices: list[int]) -> list[float] | None:
        """Calibrated predictions of prompts this strategy chose (for the per-step records)."""
        if not all(i in self.predictions for i in indices):
            return None
        return [self.predictions[i] for i in indices]

    # ------------------------------------------------------------------ feedback and state

    def update(self, feedback: StepFeedback) -> None:
        if self.params.cooldown:
            for g in feedback.groups:
                self.trained[g.index] = feedback.step
            self.trained = {i: s for i, s in self.trained.items()
                            if feedback.step - s < self.params.cooldown}
        if self.params.label_memory:
            for g in feedback.groups:
                self.memory[g.index] = (g.pass_rate, feedback.step)
        self._forget(feedback.step)

    def _forget(self, step: int) -> None:
        # labels older than any round can use only grow the checkpoint
        p = self.params
        horizon = max(p.memory_age, p.known_age) if p.label_memory else 0
        self.memory = {i: v for i, v in self.memory.items() if step - v[1] <= horizon}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "queue": self.queue,
                "predictions": [[i, v] for i, v in self.predictions.items()],
                "memory": [[i, r, s] for i, (r, s) in self.memory.items()],
                "trained": [[i, s] for i, s in self.trained.items()],
                "served": [self.served_step, sorted(self.served)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.queue = [int(i) for i in state["queue"]]
        self.predictions = {int(i): float(v) for i, v in state["predictions"]}
        self.memory = {int(i): (float(r), int(s)) for i, r, s in state["memory"]}
        self.trained = {int(i): int(s) for i, s in state.get("trained", [])}
        step, served = state.get("served", [0, []])
        self.served_step, self.served = int(step), {int(i) for i in served}


ENTRY = StrategyEntry(
    name="dots",
    factory=Dots,
    params_cls=DotsParams,
    description="DOTS: attention-based pass-rate predictor from K reference rollouts per round, "
    "pick near alpha (the paper's method)",
    uses_predictor=True,
)


@dataclass
class DotsReuseParams(DotsParams):
    """DOTS with both options on: reference groups are trained on, observed groups' pass rates
    serve as reference labels (so a prompt the policy has learned stops looking like p = 0.5)."""

    reuse_references: bool = True
    label_memory: bool = True


REUSE_ENTRY = StrategyEntry(
    name="dots-reuse",
    factory=Dots,
    params_cls=DotsReuseParams,
    description="DOTS + reuse: trains on informative reference groups and reuses every observed "
    "group's pass rate as a reference label (fewer fresh reference rollouts)",
    uses_predictor=True,
)


@dataclass
class DotsCooldownParams(DotsParams):
    """DOTS whose round never re-picks a prompt trained on in the last ``cooldown`` steps."""

    cooldown: int = 10


COOLDOWN_ENTRY = StrategyEntry(
    name="dots-cooldown",
    factory=Dots,
    params_cls=DotsCooldownParams,
    description="DOTS that skips prompts trained on in the last 10 steps (the paper's code keeps "
    "re-picking the same near-0.5 prompts, which a small policy memorises)",
    uses_predictor=True,
)
