"""SPEED, selective prompting with efficient estimation of difficulty (Zhang, Arora, Mei and
Zanette 2025, "SPEED-RL: Faster Training of Reasoning Models via Online Curriculum Learning",
arXiv 2506.09016): screen candidate prompts with a few rollouts each, drop those the policy
always or never solves, and roll out the rest of the group only for the prompts that pass.

A prompt passes screening when its screening rewards differ, i.e. its screening pass rate lies
strictly between 0 and 1: the authors' data controller (Zanette-Labs/speed-rl,
``verl/trainer/ppo/data_controller.py``, ``update_prompts``) keeps a prompt iff the standard
deviation of its screening accuracies is above 0. ``min_pass_rate`` / ``max_pass_rate`` (exclusive
bounds, defaults 0 and 1) narrow the band further for sweeps; at their defaults the authors' rule
alone decides. A passed prompt's screening rollouts stay in its group: the trained group is the
union of the ``screen_samples`` screening rollouts and the ``G - screen_samples`` continuation
rollouts, as the controller's ``get_training_data`` assembles it (and the union is always
informative, since its screening part already was).

Settings: ``screen_samples = 4`` is the authors' N_init (``actor_rollout_ref.rollout.n`` in
``recipe/dapo/src/config/fast_dapo_trainer.yaml`` and in their 7B script; "e.g. N_init = 4" on the
project page). Their groups are larger (N = 4 + 12 in the config, 4 + 20 in the 7B script); with
our G = 8 the screening keeps its absolute size (fewer samples could not tell a 0.5 prompt from
an extreme one), so it is half of the group, and the continuation rolls out the other 4.
``max_rounds = 50`` is the script's ``max_num_gen_batches``.

How it maps to our per-step backbone. The authors pipeline the two phases through a buffer that
outlives a step: one inference call screens the next ``gen_batch_size = 4 x train_batch_size``
candidates and continues the prompts that passed in the previous call, and prompts that passed
but were not needed wait, with their screening rollouts, for a later step, so no passed prompt
is ever dropped. Our strategies hold no rollouts across steps (the backbone keeps reuse rollouts
for one step), so each step screens in rounds and asks for no more than it can use: a round
screens ``oversample`` candidates per prompt still missing (default 1, so no prompt that passes
is left over; a screened candidate costs what it costs the authors, and the screening share of
the step's samples matches their steady state), repeats until the batch is full or the rounds
are spent, then continues all chosen prompts in one call (the authors' single inference batch).
Candidates come from the shuffled epoch order shared by the peer baselines; a prompt is screened
at most once per step. When the rounds or the pool run out, the batch is filled with screened
prompts that did not pass (earliest first) and those are continued too, so a step always trains
on B groups (where the authors' controller raises). With B = 32 x G = 8 a step rolls out about
``4 x 32 / q`` screening samples for a screening pass share ``q`` plus ``32 x 4`` continuation
samples, all through ``ctx.rollout`` and so counted as reference cost on the clock; the backbone
then trains on these groups without sampling the prompts again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baselines.stream import EpochStream
from harness.config.base import check
from strategies.base import SelectionContext, StepFeedback
from strategies.registry import StrategyEntry


@dataclass
class SpeedParams:
    """SPEED screening; defaults are the authors' (see the module docstring)."""

    screen_samples: int = 4  # screening rollouts per candidate (N_init); must be below G
    min_pass_rate: float = 0.0  # a prompt passes if min < screening pass rate < max ...
    max_pass_rate: float = 1.0  # ... and its screening rewards differ (the authors' std > 0)
    # candidates screened per round, per prompt still missing from the batch
    oversample: float = 1.0
    max_rounds: int = 50  # screening rounds per step (max_num_gen_batches) before filling

    def validate(self, prefix: str = "strategy") -> None:
        check(self.screen_samples >= 2, f"{prefix}.screen_samples", self.screen_samples,
              "must be >= 2 (one sample cannot show a mixed pass rate)")
        check(0.0 <= self.min_pass_rate < self.max_pass_rate <= 1.0, f"{prefix}.min_pass_rate",
              (self.min_pass_rate, self.max_pass_rate), "need 0 <= min_pass_rate < max_pass_rate <= 1")
        check(self.oversample >= 1.0, f"{prefix}.oversample", self.oversample,
              "must be >= 1 (a round screens at least one candidate per missing prompt)")
        check(self.max_rounds >= 1, f"{prefix}.max_rounds", self.max_rounds, "must be >= 1")


class Speed:
    def __init__(self, params: SpeedParams, pool_size: int, seed: int) -> None:
        self.params = params
        self.pool_size = pool_size
        self.rng = np.random.default_rng(seed)
        self.stream = EpochStream(pool_size, self.rng)

    def passes(self, rewards: Sequence[float]) -> bool:
        """Whether screening rewards mark a prompt as worth the rest of its group."""
        rate = sum(rewards) / len(rewards)
        p = self.params
        return len(set(rewards)) > 1 and p.min_pass_rate < rate < p.max_pass_rate

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        p, g = self.params, ctx.group_size
        if p.screen_samples >= g:
            raise ValueError(f"strategy.screen_samples={p.screen_samples} must be below "
                             f"train.group_size={g}: the continuation rolls out the rest of the group")
        if n > self.pool_size:
            raise ValueError(f"cannot select {n} distinct prompts from a pool of {self.pool_size}")
        screened: list[int] = []  # every prompt screened this step, in order
        passed: list[int] = []
        for _ in range(p.max_rounds):
            missing = n - len(passed)
            k = min(math.ceil(round(p.oversample * missing, 9)), self.pool_size - len(screened))
            if missing <= 0 or k <= 0:
                break
            candidates = self.stream.draw(k, exclude=screened)
            rewards = ctx.rollout(candidates, p.screen_samples, reuse=True)
            screened.extend(candidates)
            passed.extend(i for i, r in zip(candidates, rewards, strict=True) if self.passes(r))
        chosen = passed[:n]
        if len(chosen) < n:  # rounds or pool spent: fill with the earliest screened prompts
            taken = set(chosen)
            chosen += [i for i in screened if i not in taken][: n - len(chosen)]
        # one call continues every chosen prompt; with its screening samples it makes the group
        ctx.rollout(chosen, g - p.screen_samples, reuse=True)
        return chosen

    def update(self, feedback: StepFeedback) -> None:
        return None  # screening judges fresh rollouts every step: nothing to remember

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "stream": self.stream.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.stream.load_state_dict(state["stream"])


ENTRY = StrategyEntry(
    name="speed",
    factory=Speed,
    params_cls=SpeedParams,
    description="SPEED-RL: screen candidates with 4 rollouts, keep those with mixed rewards, roll "
    "out the rest of the group only for them; train on screening + continuation rollouts",
)
