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
- **Time-to-target** of a run, two rules read off the same smoothed curve:
  - *first crossing* (MLPerf's): the first evaluation whose smoothed accuracy is at or above the
    target;
  - *held* (the one that ranks): the first evaluation after which the smoothed accuracy stays at
    or above the target to the end of the run. A curve that touches the target and falls back
    has not reached it: a lucky stretch would otherwise count as a speedup, and strategies that
    peak early and degrade (over-fitting a narrow band of difficulty, unstable off-policy
    updates) would rank above ones that get there and stay. Held is never earlier than first; on
    a curve that rises and stays up the two agree. A run whose smoothed accuracy ends below the
    target has not held it. Held is conditional on the run's length: a longer run may still
    fall back, so compare runs of one length (a sweep's).
  Each rule gives on-clock seconds (``eval.csv`` ``clock_s``), cost-clock seconds (``cost_s``,
  ``harness.costclock``: counted work x per-unit costs from a calibration, so it does not move
  with how busy the machine was), steps, tokens (generated + trained) and samples, all read off
  the same evaluation. A run that never gets there is censored: infinite, never dropped.
- **Median** over seeds of a time (steps, tokens) with censoring: the earliest value by which at
  least half of the seeds have reached the target (the Kaplan-Meier median when every censoring
  is at infinity), i.e. the ceil(n/2)-th smallest value; infinite when fewer than half reach.
- **Speedup** of a strategy on a pair: uniform's median time / the strategy's median time (0 when
  the strategy's median seed never reaches). Per run: uniform's median time / the run's time
  (0 when censored). Intervals: percentile bootstrap over seeds (both sides resampled), seeded.
- **Across pairs**: interquartile mean of the pairs' speedups (ratios of medians), with
  intervals from a bootstrap within pairs over both arms' seeds (``pair_speedups_iqm``); from
  rliable: the IQM itself, probability of improvement over uniform, and a
  performance profile of normalised time-to-target (run time / uniform's median time). The
  baseline is the reference (1 by definition, not its IQM against its own median); with one
  pair the aggregate is that pair's ratio of medians and its two-arm bootstrap.
- Every rule takes a column of the run table (``HELD``/``FIRST`` x time, cost, steps, tokens):
  the report ranks on held cost-clock time and shows the rest beside it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

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
    """Where a run reaches the target (all ``inf`` when it never does). ``cost_s`` is ``nan``
    for curves without a cost clock."""

    reached: bool
    time_s: float
    steps: float
    tokens: float
    samples: float
    cost_s: float = math.nan


def _never() -> Crossing:
    return Crossing(False, math.inf, math.inf, math.inf, math.inf, math.inf)


def _at(curve: pd.DataFrame, i: int) -> Crossing:
    row = curve.iloc[i]
    return Crossing(True, float(row["clock_s"]), float(row["step"]), float(row["tokens"]),
                    float(row["samples"]), float(row.get("cost_s", math.nan)))


def _above(curve: pd.DataFrame, target: float, window: int) -> np.ndarray:
    return smooth(curve["accuracy"].to_numpy(), window) >= target - _TOL


def first_crossing(curve: pd.DataFrame, target: float, window: int = SMOOTH_WINDOW) -> Crossing:
    """``curve``: one run's eval rows (step, clock_s, tokens, samples, accuracy, optionally
    cost_s), any order. The first evaluation whose smoothed accuracy reaches the target."""
    curve = curve.sort_values("step")
    hits = np.flatnonzero(_above(curve, target, window))
    return _at(curve, int(hits[0])) if len(hits) else _never()


def held_crossing(curve: pd.DataFrame, target: float, window: int = SMOOTH_WINDOW) -> Crossing:
    """The first evaluation from which the smoothed accuracy stays at or above the target to the
    run's last evaluation; censored when the last one is below it."""
    curve = curve.sort_values("step")
    above = _above(curve, target, window)
    if len(above) == 0 or not above[-1]:
        return _never()
    below = np.flatnonzero(~above)
    return _at(curve, int(below[-1]) + 1 if len(below) else 0)


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


# held (the ranking rule) under ``*_to_target*``, first crossing under ``*_first*``
MEASURES = {"time": "_s", "cost": "_s", "steps": "", "tokens": "", "samples": ""}
HELD = {m: f"{m}_to_target{u}" for m, u in MEASURES.items()}
FIRST = {m: f"{m}_first{u}" for m, u in MEASURES.items()}
RUN_COLUMNS = ["pair", "label", "seed", "run_id", "target", "reached", "censored",
               *HELD.values(), "reached_first", *FIRST.values()]


def run_table(evals: pd.DataFrame, target_table: pd.DataFrame,
              window: int = SMOOTH_WINDOW) -> pd.DataFrame:
    """Time (wall and cost clock), steps, tokens and samples to target per run, held and first
    crossing (runs of pairs without a target are left out). ``reached``/``censored`` are the
    held rule's; censored values are ``inf``; ``cost`` is ``nan`` where evals lack ``cost_s``."""
    tmap = dict(zip(target_table["pair"], target_table["target"], strict=True))
    rows = []
    for (run_id, pair, label, seed), curve in evals.groupby(EVAL_KEYS, sort=True):
        if pair not in tmap:
            continue
        held = held_crossing(curve, tmap[pair], window)
        first = first_crossing(curve, tmap[pair], window)
        row = {"pair": pair, "label": label, "seed": int(seed), "run_id": run_id,
               "target": tmap[pair], "reached": held.reached, "censored": not held.reached,
               "reached_first": first.reached}
        for cols, c in ((HELD, held), (FIRST, first)):
            row.update({cols["time"]: c.time_s, cols["cost"]: c.cost_s, cols["steps"]: c.steps,
                        cols["tokens"]: c.tokens, cols["samples"]: c.samples})
        rows.append(row)
    table = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return table.sort_values(["pair", "label", "seed"], kind="stable").reset_index(drop=True)


def reference_times(runs: pd.DataFrame, baseline: str = BASELINE,
                    column: str = "time_to_target_s") -> dict[str, tuple[float, str]]:
    """Per pair: the baseline's median of ``column``, or ``nan`` with the reason it has none."""
    out: dict[str, tuple[float, str]] = {}
    for pair, grp in runs.groupby("pair"):
        base = grp[grp["label"] == baseline][column].to_numpy()
        if (grp[column] == 0).any():
            out[pair] = (math.nan, "the target is met before training (step 0); train longer "
                                   f"or pass --target {pair}=VALUE")
        elif len(base) == 0:
            out[pair] = (math.nan, f"no {baseline} runs on this pair: no speedup")
        elif np.isnan(base).any():
            out[pair] = (math.nan, f"{baseline} has no {column} (records without a cost clock)")
        elif math.isinf(censored_median(base)):
            out[pair] = (math.nan, f"{baseline}'s median seed does not reach the target: "
                                   "no reference time")
        else:
            out[pair] = (censored_median(base), "")
    return out


def _speedup_seed(seed: int, pair: str, label: str, name: str) -> int:
    # the ranking speedup keeps the seed it always had; the others get their own streams
    return stable_seed(seed, pair, label) if name == "speedup" else stable_seed(seed, pair,
                                                                                label, name)


def pair_table(runs: pd.DataFrame, per_step_s: Mapping[str, float] | None = None,
               reps: int = 2000, seed: int = 0, level: float = 0.95,
               baseline: str = BASELINE,
               speedups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per (pair, label): medians to target (held and first crossing), speedups over the
    baseline with bootstrap intervals, and the paper's Table 1 columns (steps, per-step time,
    total time saved, in % of the baseline's). ``speedups`` maps an output name to the run
    column it divides (default ``{"speedup": "time_to_target_s"}``); ``speedup`` is the ranking
    one and its reference decides the row's note. ``per_step_s`` maps run_id to on-clock
    seconds per step."""
    speedups = dict(speedups or {"speedup": HELD["time"]})
    refs = {name: reference_times(runs, baseline, col) for name, col in speedups.items()}
    per_step_s = dict(per_step_s or {})
    rows = []
    for (pair, label), grp in runs.groupby(["pair", "label"], sort=True):
        base = runs[(runs["pair"] == pair) & (runs["label"] == baseline)]
        row: dict[str, object] = {
            "pair": pair, "label": label, "seeds": len(grp), "reached": int(grp["reached"].sum()),
            "reached_first": int(grp["reached_first"].sum())}
        for rule, cols in (("", HELD), ("_first", FIRST)):
            for m, col in cols.items():
                unit = "_s" if m in ("time", "cost") else ""
                row[f"median_{m}{rule}{unit}"] = censored_median(grp[col])
        row.update({"steps_saved_pct": math.nan, "per_step_time_saved_pct": math.nan,
                    "total_time_saved_pct": math.nan, "total_cost_saved_pct": math.nan,
                    "note": refs["speedup"][pair][1] if "speedup" in refs else ""})
        for name, col in speedups.items():
            ref = refs[name][pair][0]
            row[f"{name}_reference"] = ref
            point = lo = hi = math.nan
            if not math.isnan(ref):
                point, lo, hi = bootstrap_speedup(base[col].to_numpy(), grp[col].to_numpy(),
                                                  reps, _speedup_seed(seed, pair, label, name),
                                                  level)
            row.update({name: point, f"{name}_lo": lo, f"{name}_hi": hi})
        if len(base):
            row["total_time_saved_pct"] = _saved(row["median_time_s"],
                                                 censored_median(base[HELD["time"]]))
            row["total_cost_saved_pct"] = _saved(row["median_cost_s"],
                                                 censored_median(base[HELD["cost"]]))
            row["steps_saved_pct"] = _saved(row["median_steps"],
                                            censored_median(base[HELD["steps"]]))
            mine = [per_step_s[r] for r in grp["run_id"] if r in per_step_s]
            theirs = [per_step_s[r] for r in base["run_id"] if r in per_step_s]
            if mine and theirs:
                row["per_step_time_saved_pct"] = _saved(float(np.mean(mine)),
                                                        float(np.mean(theirs)))
        rows.append(row)
    return pd.DataFrame(rows)


def _saved(value: float, reference: float) -> float:
    """Percent saved relative to the reference; ``nan`` when either was never reached."""
    if math.isnan(value) or math.isnan(reference) or math.isinf(value) or math.isinf(reference) \
            or reference <= 0:
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
    times: dict[str, np.ndarray] = field(default_factory=dict)  # the label's raw times
    baseline_times: dict[str, np.ndarray] = field(default_factory=dict)
    baseline: str = BASELINE
    column: str = "time_to_target_s"


def score_matrices(runs: pd.DataFrame, baseline: str = BASELINE,
                   column: str = "time_to_target_s") -> Matrices:
    """rliable needs rectangular matrices: when a label has different seed counts across its
    pairs, every pair keeps its lowest-numbered ``n`` seeds, ``n`` the smallest count (noted).
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
        m.times[label] = times
        m.baseline_times[label] = base_times
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
    reference that never reached the target) sort to the top like any large value."""
    from scipy import stats as sps

    v = np.sort(np.asarray(values, dtype=float), axis=axis)
    v = np.where(np.isinf(v), np.finfo(float).max, v)
    return sps.trim_mean(v, 0.25, axis=axis)


def pair_speedups_iqm(base_times: np.ndarray, times: np.ndarray, reps: int, seed: int,
                      level: float = 0.95) -> tuple[float, float, float]:
    """IQM across pairs of the per-pair speedup (ratio of censored medians, as the paper's time
    ratios), with a stratified bootstrap: within every pair both arms' seeds are resampled with
    replacement, independently. ``base_times``, ``times``: (seeds x pairs). An arm identical to
    the baseline scores exactly 1; the IQM of per-run speedups against the baseline's median
    does not (half of any arm's runs are slower than a median, and censored runs count 0)."""
    base_times = np.asarray(base_times, dtype=float)
    times = np.asarray(times, dtype=float)
    pairs = times.shape[1]
    point = ratio(np.array([censored_median(base_times[:, j]) for j in range(pairs)]),
                  np.array([censored_median(times[:, j]) for j in range(pairs)]))
    rng = np.random.default_rng(seed)
    boot = np.empty((reps, pairs))
    for j in range(pairs):
        b, t = base_times[:, j], times[:, j]
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
            point, lo, hi = bootstrap_speedup(mats.baseline_times[label][:, 0],
                                              mats.times[label][:, 0], reps,
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
