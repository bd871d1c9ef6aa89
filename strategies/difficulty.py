"""Difficulty-targeted sampling shared by DOTS and the oracle (torch-free).

Given predicted (or measured) pass rates ``p``, the paper samples prompts without replacement
with probabilities ``softmax(-|p - alpha| / tau)``: near-greedy for the default tau = 1e-3,
favouring prompts whose pass rate is closest to alpha = 0.5, where a group's rewards vary most.
"""

from __future__ import annotations

import numpy as np


def selection_probs(pass_rates: np.ndarray, alpha: float = 0.5, tau: float = 1e-3) -> np.ndarray:
    """``softmax(-|p - alpha| / tau)``, computed stably (max-shifted)."""
    logits = -np.abs(np.asarray(pass_rates, dtype=np.float64) - alpha) / tau
    logits -= logits.max()
    weights = np.exp(logits)
    return weights / weights.sum()


def sample_targeted(
    pass_rates: np.ndarray, n: int, rng: np.random.Generator, alpha: float = 0.5, tau: float = 1e-3
) -> np.ndarray:
    """Draw ``n`` distinct indices with probabilities ``selection_probs`` (without replacement).

    numpy's ``choice(replace=False, p=...)`` draws sequentially and renormalises, as sampling
    without replacement from a softmax does; when fewer than ``n`` indices carry non-zero
    probability (tiny tau), the rest are filled in order of closeness to alpha so that a batch
    is always full.
    """
    p = selection_probs(pass_rates, alpha, tau)
    if n > len(p):
        raise ValueError(f"cannot select {n} distinct prompts from {len(p)} candidates")
    positive = int(np.count_nonzero(p))
    if positive >= n:
        return rng.choice(len(p), size=n, replace=False, p=p)
    order = np.argsort(np.abs(np.asarray(pass_rates) - alpha), kind="stable")
    return order[:n]
