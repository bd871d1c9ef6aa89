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


def linear_calibration(pred_ref: np.ndarray, obs_ref: np.ndarray) -> tuple[float, float]:
    """Per-round 1-D least squares ``obs ~ slope * pred + intercept`` on the reference set.

    Pairs with a non-finite value are ignored. If the predictions are (numerically) constant the
    slope is undetermined: return slope 0 and the mean observation, i.e. predict the reference
    mean for everyone rather than amplify noise.
    """
    x = np.asarray(pred_ref, dtype=np.float64).ravel()
    y = np.asarray(obs_ref, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"pred_ref and obs_ref differ in length: {x.shape} vs {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        raise ValueError("linear_calibration needs at least one finite (pred, obs) pair")
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    sxx = float(dx @ dx)
    if sxx <= 1e-12 * max(1.0, x.size):
        return 0.0, float(ym)
    slope = float(dx @ (y - ym)) / sxx
    return slope, float(ym - slope * xm)


def apply_linear_calibration(pred: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """``clip(slope * pred + intercept, 0, 1)``: calibrated values must stay valid pass rates."""
    out = np.asarray(pred, dtype=np.float64) * slope + intercept
    return np.clip(out, 0.0, 1.0).astype(np.float32)
