"""PODS, policy optimization with down-sampling (Xu, Savani, Fang and Kolter 2025, "Not All
Rollouts are Useful: Down-Sampling Rollouts in LLM Reinforcement Learning", arXiv 2504.13818):
sample n responses per prompt, train on the m of them whose rewards have the largest variance.

Max-variance down-sampling: among all size-m subsets of a prompt's n rewards, take one of
largest reward variance. The paper proves such a subset is always the k highest rewards plus the
m - k lowest for some k in 0..m, so sorting once and scanning k with prefix sums finds it in
O(n log n). For 0/1 rewards it is as balanced as the group allows: m/2 correct and m/2 wrong,
or all of the scarcer kind and the rest from the other. Ties are broken so the choice is a pure
function of the rewards: among equal rewards the earlier responses go to the low end and the
later ones to the high end, and among equally good k the smallest wins, so an all-equal group
keeps its first m responses (it teaches nothing either way). The kept responses are returned in
sampling order.

This is selection of *rollouts*, not of prompts: PODS sits on a prompt strategy (``prompts``,
default ``uniform``, built with the same seed, so ``pods`` trains on exactly the prompts
``uniform`` would) and adds the backbone's :class:`strategies.base.RolloutSelector` hook:
``samples_per_prompt(G) = ratio x G`` responses are sampled for each prompt the backbone rolls
out, ``choose_rollouts`` keeps G. The trained group size m is our G, so the GRPO step (B x G
sequences, the same update cost as uniform) is unchanged and only generation grows. All n
samples count as generation cost (``cost/samples``, ``cost/tokens_generated``, on the clock);
``cost/discarded_samples`` says how many were not trained on. The prompt strategy's ``update``
sees all n rewards of a prompt, its observed pass rate.

Settings: the paper's main configuration generates n = 64 rollouts and trains on m = 16, a
ratio of 4, so ``ratio = 4``: with our G = 8 a prompt gets n = 32 samples and a B = 32 step
generates 1024 responses and trains on 256. (The paper body was not readable from here; n = 64 /
m = 16 is how its reviewers on OpenReview describe its experiments, and the same 4:1 ratio
appears in summaries of its single-GPU runs, 16 generated for 4 trained.) The paper also runs
n / m = 2 and larger ratios in its ablations; ``ratio`` is the setting to sweep. Prompt
strategies that need the difficulty predictor (DOTS) are refused, since the backbone loads it
by the registry entry of the strategy it runs; the OpenRLHF executor refuses PODS with a
one-line error (its experience maker takes G samples per prompt as they come).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.config.base import ConfigError, check
from strategies.base import SelectionContext, StepFeedback, selects_rollouts
from strategies.registry import (
    StrategyEntry,
    UnknownStrategyError,
    build_strategy,
    get_entry,
    params_from_dict,
)

# variances closer than this are equal: the smallest k among them wins, whatever the rounding
_TIE = 1e-12


def max_variance_subset(rewards: Sequence[float], m: int) -> list[int]:
    """Positions of the ``m`` rewards of largest variance, in increasing order (PODS' rule)."""
    r = np.asarray(rewards, dtype=np.float64)
    n = len(r)
    if not 0 < m <= n:
        raise ValueError(f"cannot keep {m} of {n} rollouts")
    order = np.argsort(r, kind="stable")  # ascending; equal rewards keep their sampling order
    s = r[order]
    total = np.concatenate([[0.0], np.cumsum(s)])
    squares = np.concatenate([[0.0], np.cumsum(s * s)])
    best_k, best_var = 0, -math.inf
    for k in range(m + 1):  # the k highest and the m - k lowest
        low = m - k
        mean = (total[low] + total[n] - total[n - k]) / m
        var = (squares[low] + squares[n] - squares[n - k]) / m - mean * mean
        if var > best_var + _TIE:
            best_k, best_var = k, var
    return sorted(int(i) for i in np.concatenate([order[: m - best_k], order[n - best_k:]]))


@dataclass
class PodsParams:
    """PODS max-variance down-sampling over a prompt strategy (see the module docstring)."""

    ratio: float = 4.0  # responses sampled per prompt / responses trained on (n / m; paper 64 / 16)
    prompts: str = "uniform"  # the prompt strategy PODS sits on (any registry name)
    prompt_params: dict[str, Any] = field(default_factory=dict)  # its own params

    def validate(self, prefix: str = "strategy") -> None:
        check(self.ratio >= 1.0, f"{prefix}.ratio", self.ratio,
              "must be >= 1 (n = ratio x G responses, of which G are trained on)")
        try:
            entry = get_entry(self.prompts)
        except UnknownStrategyError as err:  # one config line, with its "did you mean"
            raise ConfigError(f"{prefix}.prompts", self.prompts, str(err)) from None
        if selects_rollouts(entry.factory):
            raise ConfigError(f"{prefix}.prompts", self.prompts,
                              "a prompt strategy; this one already chooses rollouts")
        if entry.uses_predictor:
            raise ConfigError(f"{prefix}.prompts", self.prompts,
                              "a prompt strategy without the difficulty predictor (the backbone "
                              "loads it only for strategies registered with uses_predictor)")
        params_from_dict(entry, self.prompt_params, f"{prefix}.prompt_params")


class Pods:
    def __init__(self, params: PodsParams, pool_size: int, seed: int) -> None:
        self.params = params
        # same seed: PODS over uniform trains on uniform's prompts, only the rollouts differ
        self.prompts = build_strategy(params.prompts, params.prompt_params, pool_size, seed)

    def samples_per_prompt(self, group_size: int) -> int:
        return max(group_size, math.ceil(round(self.params.ratio * group_size, 9)))

    def choose_rollouts(self, rewards: Sequence[float], group_size: int) -> list[int]:
        return max_variance_subset(rewards, group_size)

    def select(self, ctx: SelectionContext, n: int) -> list[int]:
        return self.prompts.select(ctx, n)

    def update(self, feedback: StepFeedback) -> None:
        self.prompts.update(feedback)

    def predicted_pass_rates(self, indices: list[int]) -> list[float] | None:
        """The prompt strategy's predictions, when it makes any (MoPPS)."""
        fn = getattr(self.prompts, "predicted_pass_rates", None)
        return None if fn is None else fn(indices)

    def state_dict(self) -> dict[str, Any]:
        return {"prompts": self.prompts.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prompts.load_state_dict(state["prompts"])


ENTRY = StrategyEntry(
    name="pods",
    factory=Pods,
    params_cls=PodsParams,
    description="PODS: sample 4G responses per prompt (uniform prompts), train on the G with the "
    "largest reward variance (k highest + G-k lowest); extra samples on the clock",
)
