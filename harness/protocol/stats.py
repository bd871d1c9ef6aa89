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
  construction), or a fixed value the user gives for that pair. With a *rise* r < 1 it is the
  baseline's median step-0 accuracy plus r times its median rise to that final: at r = 1 about
  half of uniform's seeds end below the target, so a bootstrap of uniform's median is often
  "never" and every speedup interval is open above (nothing can be shown slower than uniform
  unless it never arrives); a lower target that uniform's seeds all reach closes it.
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
  ``harness.protocol.costclock``: counted work x per-unit costs from a calibration, so it does not move
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
from collections.abc import Mapping, Sequence
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
            baseline: str = BASELINE, window: int = SMOOTH_WINDOW,
            rise: float = 1.0) -> pd.DataFrame:
    """One row per pair with a target: ``pair, target, source``.

    ``evals`` has one row per evaluation: run_id, pair, label, seed, step, clock_s, samples,
    tokens, accuracy. A pair with neither a fixed target nor baseline runs gets no row.
    ``rise``: the share of the baseline's median rise from its first evaluation to its final
    that the target asks for (1: the final itself; see the module docstring).
    """
    if not 0.0 < rise <= 1.0:
        raise ValueError(f"the target's rise must be in (0, 1], got {rise}")
    fixed = dict(fixed or {})
    rows = []
    for pair in sorted(set(evals["pair"]) | set(fixed)):
        if pair in fixed:
            rows.append({"pair": pair, "target": float(fixed[pair]), "source": "fixed"})
            continue
        base = evals[(evals["pair"] == pair) & (evals["label"] == baseline)]
        if base.empty:
            continue
        curves = [g.sort_values("step")["accuracy"].to_numpy() for _, g in base.groupby("run_id")]
        final = float(np.median([smooth(c, window)[-1] for c in curves]))
        source = f"{baseline} median final (smoothed, {len(curves)} seeds)"
        if rise < 1.0:
            start = float(np.median([c[0] for c in curves]))
            final = start + rise * (final - start)
            source = (f"{baseline} median first evaluation + {rise:.0%} of its rise to the "
                      f"{source.removeprefix(baseline + ' ')}")
        rows.append({"pair": pair, "target": final, "source": source})
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
