"""Difficulty-targeted selection against hand-computed probabilities."""

import math

import numpy as np

from strategies.difficulty import sample_targeted, selection_probs


def test_selection_probs_hand_computed() -> None:
    p = selection_probs(np.array([0.5, 0.25, 1.0]), alpha=0.5, tau=0.25)
    # logits 0, -1, -2 -> softmax
    z = 1 + math.exp(-1) + math.exp(-2)
    assert np.allclose(p, [1 / z, math.exp(-1) / z, math.exp(-2) / z])


def test_tiny_tau_is_nearly_greedy_and_stable() -> None:
    rates = np.array([0.0, 0.45, 0.5, 0.9, 1.0])
    p = selection_probs(rates, tau=1e-3)
    assert np.isfinite(p).all() and p.argmax() == 2 and p[2] > 0.999


def test_sample_targeted_picks_prompts_nearest_alpha() -> None:
    rng = np.random.default_rng(0)
    rates = np.array([0.0, 1.0, 0.5, 0.375, 0.625, 0.0, 1.0, 0.125])
    chosen = sample_targeted(rates, 3, rng)
    assert sorted(chosen.tolist()) == [2, 3, 4]  # the three closest to 0.5
    assert len(set(sample_targeted(rates, 8, rng).tolist())) == 8


def test_sample_targeted_frequencies_match_probabilities() -> None:
    rng = np.random.default_rng(1)
    rates = np.array([0.5, 0.25, 0.0])
    counts = np.zeros(3)
    for _ in range(4000):
        counts[sample_targeted(rates, 1, rng, tau=0.25)[0]] += 1
    expected = selection_probs(rates, tau=0.25)
    assert np.allclose(counts / counts.sum(), expected, atol=0.03)


class _KnownRates:
    """A selection context whose questions have fixed, known pass rates (deterministic rewards)."""

    def __init__(self, rates: list[float], group: int = 8) -> None:
        self.rates, self.step, self.group_size = rates, 1, group
        self.pool_size = len(rates)
        self.rolled: list[int] = []

    def rollout(self, indices, n_samples):
        self.rolled.extend(indices)
        return [[1.0] * round(self.rates[i] * n_samples) + [0.0] * (n_samples - round(self.rates[i] * n_samples))
                for i in indices]


def test_oracle_selects_the_prompts_nearest_half() -> None:
    from strategies.registry import build_strategy

    rates = [0.0] * 40 + [1.0] * 40 + [0.5] * 8 + [0.375] * 8 + [0.125] * 8
    ctx = _KnownRates(rates)
    s = build_strategy("oracle", {"candidates": 1000, "samples": 8, "mu": 2}, len(rates), seed=0)
    first = s.select(ctx, 8)
    ctx.step = 2
    second = s.select(ctx, 8)
    assert sorted(first + second) == list(range(80, 96))  # the 0.5s, then the 0.375s
    assert len(ctx.rolled) == len(rates)  # one round of rollouts served both steps
    ctx.step = 3
    s.select(ctx, 8)
    assert len(ctx.rolled) == 2 * len(rates)  # a new round every mu steps


def test_oracle_state_round_trip() -> None:
    from strategies.registry import build_strategy

    rates = list(np.linspace(0, 1, 50))
    a = build_strategy("oracle", {"candidates": 20}, 50, seed=3)
    ctx = _KnownRates(rates)
    a.select(ctx, 4)
    b = build_strategy("oracle", {"candidates": 20}, 50, seed=9)
    b.load_state_dict(a.state_dict())
    assert [a.select(ctx, 4) for _ in range(5)] == [b.select(ctx, 4) for _ in range(5)]
