"""Statistics across pairs (the leaderboard's aggregate), on the run table of
:mod:`harness.protocol.stats`: per label, (seeds x pairs) matrices of speedups and normalised times; the
IQM of the pairs' speedups with a bootstrap within pairs over both arms' seeds; rliable's
probability of improvement and performance profiles. Torch-free."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.protocol.stats import (
    BASELINE,
    _censored_median_rows,
    bootstrap_speedup,
    censored_median,
    ratio,
    reference_times,
    stable_seed,
)


@dataclass
class Matrices:
    """(seeds x pairs) matrices per label, over the pairs that label shares with a reference."""

    pairs: dict[str, list[str]]
    speedups: dict[str, np.ndarray]  # per-run speedup, 0 when censored
    norm_times: dict[str, np.ndarray]  # run time / the baseline's median time, inf when censored
    baseline_speedups: dict[str, np.ndarray]  # the baseline's matrix over the same pairs
    seeds_used: dict[str, int]
    notes: dict[str, str]
    # per pair, every seed's raw time, not truncated: the speedup's bootstrap resamples each
    # pair on its own, so a pair with fewer seeds (a sweep part-way) need not cut the others
    times: dict[str, list[np.ndarray]] = field(default_factory=dict)
    baseline_times: dict[str, list[np.ndarray]] = field(default_factory=dict)
    baseline: str = BASELINE
    column: str = "time_to_target_s"


def score_matrices(runs: pd.DataFrame, baseline: str = BASELINE,
                   column: str = "time_to_target_s") -> Matrices:
    """rliable needs rectangular matrices: when a label has different seed counts across its
    pairs, every pair keeps its lowest-numbered ``n`` seeds, ``n`` the smallest count (noted),
    for the probability of improvement and the profile; the speedup uses every seed.
    ``column``: the run table's time (or steps, tokens) to target that the speedups divide."""
    refs = reference_times(runs, baseline, column)
    m = Matrices({}, {}, {}, {}, {}, {}, baseline=baseline, column=column)
    for label in sorted(set(runs["label"])):
        pairs = [p for p in sorted(set(runs[runs["label"] == label]["pair"]))
                 if not math.isnan(refs[p][0])]
        if not pairs:
            m.notes[label] = f"no pair with a {baseline} reference"
            continue

        def col(lbl: str, pair: str) -> np.ndarray:
            sel = runs[(runs["pair"] == pair) & (runs["label"] == lbl)].sort_values("seed")
            return sel[column].to_numpy(dtype=float)

        cols = [col(label, p) for p in pairs]
        base_cols = [col(baseline, p) for p in pairs]
        n = min(len(c) for c in cols)
        nb = min(len(c) for c in base_cols)
        if max(len(c) for c in cols) != n or max(len(c) for c in base_cols) != nb:
            m.notes[label] = (f"seed counts differ across pairs: the probability of improvement "
                              f"keeps each pair's first {n} seeds ({nb} for {baseline}); the "
                              "speedup uses every seed")
        ref = np.array([refs[p][0] for p in pairs])
        times = np.stack([c[:n] for c in cols], axis=1)
        base_times = np.stack([c[:nb] for c in base_cols], axis=1)
        m.pairs[label] = pairs
        m.speedups[label] = ratio(ref[None, :], times)
        m.norm_times[label] = np.where(np.isinf(times), np.inf, times / ref[None, :])
        m.baseline_speedups[label] = ratio(ref[None, :], base_times)
        m.seeds_used[label] = n
        m.times[label] = cols
        m.baseline_times[label] = base_cols
    return m


@contextmanager
def _global_seed(seed: int) -> Iterator[None]:
    # rliable's stratified bootstrap draws from numpy's *global* RNG (np.random.choice) whatever
    # random_state says: seed it for determinism and give the caller's state back afterwards
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def poi_fast(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's probability of improvement, P(X > Y) + P(X = Y) / 2 averaged over tasks, in
    closed form (the Mann-Whitney U it uses is exactly this count; tested equal), fast enough to
    run inside a bootstrap."""
    gt = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    eq = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(gt + 0.5 * eq))


AGG_COLUMNS = ["label", "method", "pairs", "seeds_per_pair", "iqm_speedup", "iqm_lo", "iqm_hi",
               "poi", "poi_lo", "poi_hi", "self_iqm", "note"]


def _iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """rliable's interquartile mean (a 25% trimmed mean) along ``axis``; infinite ratios (a
    reference that never reached the target) sort to the top like any large value, and an
    infinite ratio left inside the kept middle makes the mean infinite (not a huge finite
    number: with two pairs nothing is trimmed and the mean of 0 and inf is inf)."""
    v = np.moveaxis(np.sort(np.asarray(values, dtype=float), axis=axis), axis, -1)
    cut = int(0.25 * v.shape[-1])  # scipy's trim_mean cuts the same count from each end
    kept = v[..., cut:v.shape[-1] - cut]
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(kept).any(axis=-1), np.inf, kept.mean(axis=-1))


def _per_pair(times: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(times, np.ndarray) and times.ndim == 2:
        return [times[:, j].astype(float) for j in range(times.shape[1])]
    return [np.asarray(t, dtype=float) for t in times]


def pair_speedups_iqm(base_times: np.ndarray | Sequence[np.ndarray],
                      times: np.ndarray | Sequence[np.ndarray], reps: int, seed: int,
                      level: float = 0.95) -> tuple[float, float, float]:
    """IQM across pairs of the per-pair speedup (ratio of censored medians, as the paper's time
    ratios), with a stratified bootstrap: within every pair both arms' seeds are resampled with
    replacement, independently. ``base_times``, ``times``: (seeds x pairs), or one array of
    seeds per pair (the pairs may have different seed counts). An arm identical to
    the baseline scores exactly 1; the IQM of per-run speedups against the baseline's median
    does not (half of any arm's runs are slower than a median, and censored runs count 0)."""
    base_cols, cols = _per_pair(base_times), _per_pair(times)
    pairs = len(cols)
    point = ratio(np.array([censored_median(b) for b in base_cols]),
                  np.array([censored_median(t) for t in cols]))
    rng = np.random.default_rng(seed)
    boot = np.empty((reps, pairs))
    for j in range(pairs):
        b, t = base_cols[j], cols[j]
        b_b = _censored_median_rows(b[rng.integers(0, len(b), (reps, len(b)))])
        t_b = _censored_median_rows(t[rng.integers(0, len(t), (reps, len(t)))])
        boot[:, j] = ratio(b_b, t_b)
    stats_b = _iqm(boot, axis=1)
    lo, hi = np.quantile(stats_b, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(_iqm(point)), float(lo), float(hi)


def aggregate(mats: Matrices, reps: int = 2000, seed: int = 0,
              level: float = 0.95) -> pd.DataFrame:
    """Per label: the speedup over the baseline across pairs, and the probability of
    improvement, each with a bootstrap interval.

    - The speedup is the IQM across pairs of each pair's speedup (ratio of censored medians),
      bootstrapped within pairs over both arms' seeds (:func:`pair_speedups_iqm`); on one pair
      it is that pair's speedup (``method`` "pair"), the same numbers as the per-pair table.
    - The baseline itself is the reference (``method`` "reference"): 1 and PoI 0.5 by
      definition. ``self_iqm`` keeps, for the record, what the IQM of *per-run* speedups gives
      the baseline against its own median (not 1: censored seeds and the median's choice).
    - The probability of improvement is rliable's, over per-run speedups, with its stratified
      bootstrap.
    """
    from rliable import library as rly
    from rliable import metrics

    rows = []
    for label, scores in mats.speedups.items():
        base = mats.baseline_speedups[label]
        row = {"label": label, "pairs": len(mats.pairs[label]),
               "seeds_per_pair": mats.seeds_used[label], "note": mats.notes.get(label, "")}
        if label == mats.baseline:
            rows.append({**row, "method": "reference", "iqm_speedup": 1.0, "iqm_lo": 1.0,
                         "iqm_hi": 1.0, "poi": 0.5, "poi_lo": 0.5, "poi_hi": 0.5,
                         "self_iqm": float(metrics.aggregate_iqm(scores))})
            continue
        if len(mats.pairs[label]) == 1:
            pair = mats.pairs[label][0]
            point, lo, hi = bootstrap_speedup(mats.baseline_times[label][0],
                                              mats.times[label][0], reps,
                                              stable_seed(seed, pair, label), level)
            row.update(method="pair", iqm_speedup=point, iqm_lo=lo, iqm_hi=hi)
        else:
            point, lo, hi = pair_speedups_iqm(mats.baseline_times[label], mats.times[label],
                                              reps, stable_seed(seed, "iqm", label), level)
            row.update(method="IQM", iqm_speedup=point, iqm_lo=lo, iqm_hi=hi)
        poi = float(metrics.probability_of_improvement(scores, base))
        with _global_seed(stable_seed(seed, "poi", label)):
            _, poi_ci = rly.get_interval_estimates(
                {label: [scores, base]}, lambda x, y: np.array([poi_fast(x, y)]), reps=reps,
                confidence_interval_size=level)
        rows.append({**row, "poi": poi, "poi_lo": float(poi_ci[label][0, 0]),
                     "poi_hi": float(poi_ci[label][1, 0]), "self_iqm": math.nan})
    return pd.DataFrame(rows, columns=AGG_COLUMNS)


def reached_within(norm_times: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Share of runs (all seeds and pairs) whose normalised time-to-target is <= each tau."""
    flat = np.asarray(norm_times, dtype=float).reshape(-1)
    return (flat[None, :] <= np.asarray(taus, dtype=float)[:, None]).mean(axis=1)


def performance_profile(mats: Matrices, taus: np.ndarray, reps: int = 2000, seed: int = 0,
                        level: float = 0.95) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per label: (profile over ``taus``, its 2 x len(taus) interval), via rliable's
    ``create_performance_profile`` with the time-to-target profile as its profile function.
    Censored runs never count as reached, so a profile may stay below 1."""
    from rliable import library as rly

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray] = reached_within
    out = {}
    for label, norm in mats.norm_times.items():
        with _global_seed(stable_seed(seed, "profile", label)):
            prof, ci = rly.create_performance_profile(
                {label: norm}, taus, custom_profile_func=fn, reps=reps,
                confidence_interval_size=level)
        out[label] = (np.asarray(prof[label]), np.asarray(ci[label]))
    return out
