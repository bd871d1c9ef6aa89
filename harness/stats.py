"""Time-to-target statistics over run records. Torch-free (numpy, pandas, scipy, rliable).

Definitions, applied to every strategy alike:

- **Smoothed accuracy**: the trailing mean of the last ``SMOOTH_WINDOW`` = 3 evaluations (fewer
  at the start; the step-0 evaluation counts). One evaluation is a noisy estimate, and a single
  lucky one should not count as reaching the target. The mean is *trailing* so the moment a run
  reaches the target uses only evaluations made by then (as MLPerf's "first evaluation at or
  above the target"). It lags the raw curve by about one evaluation interval for every run
  alike, which pulls speedups towards 1: conservative.
- **Target** per pair: the median over the uniform baseline's seeds of its smoothed accuracy at
  its last evaluation (read off the same smoothed curve, so uniform's median seed reaches it by
  construction), or a fixed value the user gives for that pair.
- **Time-to-target** of a run: the on-clock seconds (``eval.csv`` ``clock_s``) of the first
  evaluation whose smoothed accuracy is at or above the target; steps, tokens (generated +
  trained) and samples to target are read off the same evaluation. A run that never gets there
  is censored: infinite time, never dropped.
- **Median** over seeds of a time (steps, tokens) with censoring: the earliest value by which at
  least half of the seeds have reached the target (the Kaplan-Meier median when every censoring
  is at infinity), i.e. the ceil(n/2)-th smallest value; infinite when fewer than half reach.
- **Speedup** of a strategy on a pair: uniform's median time / the strategy's median time (0 when
  the strategy's median seed never reaches). Per run: uniform's median time / the run's time
  (0 when censored). Intervals: percentile bootstrap over seeds (both sides resampled), seeded.
- **Across pairs** (rliable): interquartile mean of per-run speedups over the (seeds x pairs)
  matrix with stratified bootstrap intervals, probability of improvement over uniform, and a
  performance profile of normalised time-to-target (run time / uniform's median time).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

SMOOTH_WINDOW = 3
BASELINE = "uniform"
# the target is compared with means of the same floats; a tolerance keeps a seed whose smoothed
# final accuracy *is* the target from missing it by a rounding error
_TOL = 1e-9

EVAL_KEYS = ["run_id", "pair", "label", "seed"]


def smooth(accuracy: Sequence[float], window: int = SMOOTH_WINDOW) -> np.ndarray:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    acc = np.asarray(accuracy, dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(acc)])
    idx = np.arange(1, len(acc) + 1)
    lo = np.maximum(0, idx - window)
    return (csum[idx] - csum[lo]) / (idx - lo)


@dataclass(frozen=True)
class Crossing:
    """Where a run first reaches the target (all ``inf`` when it never does)."""

    reached: bool
    time_s: float
    steps: float
    tokens: float
    samples: float


def first_crossing(curve: pd.DataFrame, target: float, window: int = SMOOTH_WINDOW) -> Crossing:
    """``curve``: one run's eval rows (step, clock_s, tokens, samples, accuracy), any order."""
    curve = curve.sort_values("step")
    hits = np.flatnonzero(smooth(curve["accuracy"].to_numpy(), window) >= target - _TOL)
    if len(hits) == 0:
        return Crossing(False, math.inf, math.inf, math.inf, math.inf)
    row = curve.iloc[int(hits[0])]
    return Crossing(True, float(row["clock_s"]), float(row["step"]), float(row["tokens"]),
                    float(row["samples"]))


def censored_median(values: Sequence[float]) -> float:
    """The ceil(n/2)-th smallest value (``inf`` entries are censored runs); ``nan`` when empty."""
    v = np.sort(np.asarray(values, dtype=float))
    if len(v) == 0:
        return math.nan
    return float(v[math.ceil(len(v) / 2) - 1])


def _censored_median_rows(matrix: np.ndarray) -> np.ndarray:
    """``censored_median`` of each row of a (reps x n) matrix."""
    n = matrix.shape[1]
    return np.sort(matrix, axis=1)[:, math.ceil(n / 2) - 1]


def ratio(reference: np.ndarray | float, times: np.ndarray | float) -> np.ndarray:
    """reference / times, with a never-reached time giving 0 (no relative speed) whatever the
    reference, and a finite time against a never-reached reference giving ``inf``."""
    ref = np.asarray(reference, dtype=float)
    t = np.asarray(times, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.isinf(t), 0.0, np.where(np.isinf(ref), np.inf, ref / t))
    return out


def stable_seed(seed: int, *parts: str) -> int:
    """A seed per (pair, label, ...) that does not depend on which other results are present."""
    return (seed * 1_000_003 + zlib.crc32("|".join(parts).encode())) % (2**32)


def bootstrap_speedup(ref_times: Sequence[float], times: Sequence[float], reps: int, seed: int,
                      level: float = 0.95) -> tuple[float, float, float]:
    """Speedup (ratio of censored medians) with a percentile bootstrap interval over seeds.

    Both the baseline's and the strategy's seeds are resampled with replacement, independently:
    the reference time is an estimate too. Quantiles take sample values (``inverted_cdf``) so
    infinite ratios never meet arithmetic.
    """
    ref = np.asarray(ref_times, dtype=float)
    t = np.asarray(times, dtype=float)
    point = float(ratio(censored_median(ref), censored_median(t)))
    rng = np.random.default_rng(seed)
    ref_b = _censored_median_rows(ref[rng.integers(0, len(ref), (reps, len(ref)))])
    t_b = _censored_median_rows(t[rng.integers(0, len(t), (reps, len(t)))])
    lo, hi = np.quantile(ratio(ref_b, t_b), [(1 - level) / 2, (1 + level) / 2],
                         method="inverted_cdf")
    return point, float(lo), float(hi)


# ---------------------------------------------------------------------------- per run / pair


def targets(evals: pd.DataFrame, fixed: Mapping[str, float] | None = None,
            baseline: str = BASELINE, window: int = SMOOTH_WINDOW) -> pd.DataFrame:
    """One row per pair with a target: ``pair, target, source``.

    ``evals`` has one row per evaluation: run_id, pair, label, seed, step, clock_s, samples,
    tokens, accuracy. A pair with neither a fixed target nor baseline runs gets no row.
    """
    fixed = dict(fixed or {})
    rows = []
    for pair in sorted(set(evals["pair"]) | set(fixed)):
        if pair in fixed:
            rows.append({"pair": pair, "target": float(fixed[pair]), "source": "fixed"})
            continue
        base = evals[(evals["pair"] == pair) & (evals["label"] == baseline)]
        if base.empty:
            continue
        finals = [smooth(g.sort_values("step")["accuracy"].to_numpy(), window)[-1]
                  for _, g in base.groupby("run_id")]
        rows.append({"pair": pair, "target": float(np.median(finals)),
                     "source": f"{baseline} median final (smoothed, {len(finals)} seeds)"})
    return pd.DataFrame(rows, columns=["pair", "target", "source"])


RUN_COLUMNS = ["pair", "label", "seed", "run_id", "target", "reached", "censored",
               "time_to_target_s", "steps_to_target", "tokens_to_target", "samples_to_target"]


def run_table(evals: pd.DataFrame, target_table: pd.DataFrame,
              window: int = SMOOTH_WINDOW) -> pd.DataFrame:
    """Time, steps, tokens and samples to target per run (runs of pairs without a target are
    left out). Censored runs have ``inf`` values and ``censored`` True."""
    tmap = dict(zip(target_table["pair"], target_table["target"], strict=True))
    rows = []
    for (run_id, pair, label, seed), curve in evals.groupby(EVAL_KEYS, sort=True):
        if pair not in tmap:
            continue
        c = first_crossing(curve, tmap[pair], window)
        rows.append({"pair": pair, "label": label, "seed": int(seed), "run_id": run_id,
                     "target": tmap[pair], "reached": c.reached, "censored": not c.reached,
                     "time_to_target_s": c.time_s, "steps_to_target": c.steps,
                     "tokens_to_target": c.tokens, "samples_to_target": c.samples})
    table = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return table.sort_values(["pair", "label", "seed"], kind="stable").reset_index(drop=True)


def reference_times(runs: pd.DataFrame, baseline: str = BASELINE) -> dict[str, tuple[float, str]]:
    """Per pair: the baseline's median time-to-target, or ``nan`` with the reason it has none."""
    out: dict[str, tuple[float, str]] = {}
    for pair, grp in runs.groupby("pair"):
        base = grp[grp["label"] == baseline]["time_to_target_s"].to_numpy()
        if (grp["time_to_target_s"] == 0).any():
            out[pair] = (math.nan, "the target is met before training (step 0); train longer "
                                   f"or pass --target {pair}=VALUE")
        elif len(base) == 0:
            out[pair] = (math.nan, f"no {baseline} runs on this pair: no speedup")
        elif math.isinf(censored_median(base)):
            out[pair] = (math.nan, f"{baseline}'s median seed does not reach the target: "
                                   "no reference time")
        else:
            out[pair] = (censored_median(base), "")
    return out


def pair_table(runs: pd.DataFrame, per_step_s: Mapping[str, float] | None = None,
               reps: int = 2000, seed: int = 0, level: float = 0.95,
               baseline: str = BASELINE) -> pd.DataFrame:
    """One row per (pair, label): medians to target, speedup over the baseline with its
    bootstrap interval, and the paper's Table 1 columns (steps, per-step time, total time saved,
    in % of the baseline's). ``per_step_s`` maps run_id to on-clock seconds per step."""
    refs = reference_times(runs, baseline)
    per_step_s = dict(per_step_s or {})
    rows = []
    for (pair, label), grp in runs.groupby(["pair", "label"], sort=True):
        ref, note = refs[pair]
        base = runs[(runs["pair"] == pair) & (runs["label"] == baseline)]
        t = grp["time_to_target_s"].to_numpy()
        row: dict[str, object] = {
            "pair": pair, "label": label, "seeds": len(grp), "reached": int(grp["reached"].sum()),
            "median_time_s": censored_median(t),
            "median_steps": censored_median(grp["steps_to_target"]),
            "median_tokens": censored_median(grp["tokens_to_target"]),
            "reference_time_s": ref, "speedup": math.nan, "speedup_lo": math.nan,
            "speedup_hi": math.nan, "steps_saved_pct": math.nan,
            "per_step_time_saved_pct": math.nan, "total_time_saved_pct": math.nan, "note": note,
        }
        if not math.isnan(ref):
            point, lo, hi = bootstrap_speedup(base["time_to_target_s"].to_numpy(), t, reps,
                                              stable_seed(seed, pair, label), level)
            row.update(speedup=point, speedup_lo=lo, speedup_hi=hi)
            row["total_time_saved_pct"] = _saved(row["median_time_s"], ref)
            row["steps_saved_pct"] = _saved(row["median_steps"],
                                            censored_median(base["steps_to_target"]))
            mine = [per_step_s[r] for r in grp["run_id"] if r in per_step_s]
            theirs = [per_step_s[r] for r in base["run_id"] if r in per_step_s]
            if mine and theirs:
                row["per_step_time_saved_pct"] = _saved(float(np.mean(mine)),
                                                        float(np.mean(theirs)))
        rows.append(row)
    return pd.DataFrame(rows)


def _saved(value: float, reference: float) -> float:
    """Percent saved relative to the reference; ``nan`` when the value was never reached."""
    if math.isinf(value) or reference <= 0:
        return math.nan
    return 100.0 * (1.0 - value / reference)


# ---------------------------------------------------------------------------- across pairs


@dataclass
class Matrices:
    """(seeds x pairs) matrices per label, over the pairs that label shares with a reference."""

    pairs: dict[str, list[str]]
    speedups: dict[str, np.ndarray]  # per-run speedup, 0 when censored
    norm_times: dict[str, np.ndarray]  # run time / the baseline's median time, inf when censored
    baseline_speedups: dict[str, np.ndarray]  # the baseline's matrix over the same pairs
    seeds_used: dict[str, int]
    notes: dict[str, str]


def score_matrices(runs: pd.DataFrame, baseline: str = BASELINE) -> Matrices:
    """rliable needs rectangular matrices: when a label has different seed counts across its
    pairs, every pair keeps its lowest-numbered ``n`` seeds, ``n`` the smallest count (noted)."""
    refs = reference_times(runs, baseline)
    m = Matrices({}, {}, {}, {}, {}, {})
    for label in sorted(set(runs["label"])):
        pairs = [p for p in sorted(set(runs[runs["label"] == label]["pair"]))
                 if not math.isnan(refs[p][0])]
        if not pairs:
            m.notes[label] = f"no pair with a {baseline} reference"
            continue

        def column(lbl: str, pair: str) -> np.ndarray:
            sel = runs[(runs["pair"] == pair) & (runs["label"] == lbl)].sort_values("seed")
            return sel["time_to_target_s"].to_numpy()

        cols = [column(label, p) for p in pairs]
        base_cols = [column(baseline, p) for p in pairs]
        n = min(len(c) for c in cols)
        nb = min(len(c) for c in base_cols)
        if max(len(c) for c in cols) != n or max(len(c) for c in base_cols) != nb:
            m.notes[label] = (f"seed counts differ across pairs: each pair keeps its first {n} "
                              f"seeds ({nb} for {baseline})")
        ref = np.array([refs[p][0] for p in pairs])
        times = np.stack([c[:n] for c in cols], axis=1)
        base_times = np.stack([c[:nb] for c in base_cols], axis=1)
        m.pairs[label] = pairs
        m.speedups[label] = ratio(ref[None, :], times)
        m.norm_times[label] = np.where(np.isinf(times), np.inf, times / ref[None, :])
        m.baseline_speedups[label] = ratio(ref[None, :], base_times)
        m.seeds_used[label] = n
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


def aggregate(mats: Matrices, reps: int = 2000, seed: int = 0,
              level: float = 0.95) -> pd.DataFrame:
    """Per label: IQM of per-run speedups and probability of improvement over the baseline,
    each with a stratified bootstrap interval (rliable)."""
    from rliable import library as rly
    from rliable import metrics

    rows = []
    for label, scores in mats.speedups.items():
        with _global_seed(stable_seed(seed, "iqm", label)):
            point, ci = rly.get_interval_estimates(
                {label: scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps,
                confidence_interval_size=level)
        base = mats.baseline_speedups[label]
        poi = float(metrics.probability_of_improvement(scores, base))
        with _global_seed(stable_seed(seed, "poi", label)):
            _, poi_ci = rly.get_interval_estimates(
                {label: [scores, base]}, lambda x, y: np.array([poi_fast(x, y)]), reps=reps,
                confidence_interval_size=level)
        rows.append({"label": label, "pairs": len(mats.pairs[label]),
                     "seeds_per_pair": mats.seeds_used[label],
                     "iqm_speedup": float(point[label][0]),
                     "iqm_lo": float(ci[label][0, 0]), "iqm_hi": float(ci[label][1, 0]),
                     "poi": poi, "poi_lo": float(poi_ci[label][0, 0]),
                     "poi_hi": float(poi_ci[label][1, 0]),
                     "note": mats.notes.get(label, "")})
    return pd.DataFrame(rows, columns=["label", "pairs", "seeds_per_pair", "iqm_speedup",
                                       "iqm_lo", "iqm_hi", "poi", "poi_lo", "poi_hi", "note"])


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
