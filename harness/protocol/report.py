"""``selbench report``: figures and tables from run records alone. Torch-free.

Reads ``RESULTS_DIR/runs/*/`` (``harness.protocol.reportrecords``: finished runs = those with
``summary.json``; unfinished ones are only counted) and writes into ``RESULTS_DIR/report/``:

- figures (``harness.protocol.figures``): ``accuracy_vs_time.png`` and ``accuracy_vs_cost.png``
  (smoothed curves on the wall and cost clocks), ``speedup.png``, ``runs_dotplot.png`` (every
  run's time to target), ``performance_profile.png`` (only with 10+ runs per strategy),
  ``effective_frac.png``
- ``leaderboard.md`` / ``.csv``: strategies ranked by their speedup over uniform across pairs
  to the *held* target on the *cost clock* (uniform listed as the reference), wall clock beside
  it; the published claims table (``configs/claims.yaml``, ``harness.protocol.claims``) with verdicts;
  ``claims.csv``
- ``table1.md`` / ``.csv``: steps, per-step time and total time saved per pair (paper's Table 1)
- ``pairs.csv``: every per-(pair, strategy) statistic; ``runs.csv``: time/steps/tokens to target
  per run

The output is a pure function of the records and the options (bootstrap seed and reps): no
clock, no randomness beyond the seeded bootstraps. Definitions live in ``harness.protocol.stats``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.protocol import claims, costclock, crosspair, stats
from harness.protocol.reportrecords import Records, ReportError, load_records
from harness.runs.folders import ensure_writable

# arms of one pair whose machine-speed probes differ by more than this are flagged (the probe's
# own spread over 18 runs of one sweep on the project's machine was 141-156 GFLOP/s, +-5%)
MACHINE_TOLERANCE = 0.15
# with fewer runs per strategy a performance profile is a staircase of a few steps that says
# nothing its points do not; the per-run dot plot shows those points instead
PROFILE_MIN_RUNS = 10


# ---------------------------------------------------------------------------- analysis


CLOCK_NAMES = {"cost": "cost clock", "time": "wall clock"}


@dataclass
class Analysis:
    records: Records
    targets: pd.DataFrame
    runs: pd.DataFrame
    pairs: pd.DataFrame
    leaderboard: pd.DataFrame
    profiles: dict[str, tuple[np.ndarray, np.ndarray]]  # empty: too few runs for a profile
    taus: np.ndarray
    notes: list[str]
    level: float
    rank_clock: str = "time"  # "cost" or "time": the clock the ranking uses
    mats: crosspair.Matrices | None = None
    calibration: costclock.Calibration | None = None
    calibration_source: str = ""
    claims: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rank_column(self) -> str:
        return stats.HELD[self.rank_clock]


def resolve_calibration(results: Path, records: Records, path: Path | None = None
                        ) -> tuple[costclock.Calibration | None, str]:
    """The calibration the cost clock uses and where it came from: ``path``, else
    ``results/calibration.json``, else one fitted on these records themselves (same prices for
    every arm, but averaged over whatever load the machine had); ``None`` when no record has
    per-step cost counts."""
    for candidate in ([Path(path)] if path else []) + [Path(results) / costclock.CALIBRATION_FILE]:
        if candidate.is_file():
            # the default file is named without its folder: the report must read the same
            # wherever the records were checked out
            source = (str(candidate) if path
                      else f"{costclock.CALIBRATION_FILE}, stored with the records")
            try:
                return costclock.load(candidate), source
            except ValueError as err:
                raise ReportError(str(err)) from err
        if path:
            raise ReportError(f"--calibration {path}: no such file (write one with "
                              "`selbench calibrate RESULTS_DIR`)")
    own = {rid: (r.label, r.table) for rid, r in records.steps.items()
           if not r.off_clock and len(r.table)}
    if not own:
        return None, ""
    probes = {rid: records.steps[rid].machine_gflops for rid in own
              if math.isfinite(records.steps[rid].machine_gflops)}
    cal = costclock.fit(own, float(np.median(list(probes.values()))) if probes else math.nan,
                        "fitted by the report on the reported records themselves (selection "
                        "seconds brought to the median machine speed by each run's probe)",
                        probes)
    return cal, "fitted on these records (no calibration.json)"


def with_cost_clock(records: Records, cal: costclock.Calibration | None
                    ) -> tuple[Records, list[str]]:
    """``records`` with a ``cost_s`` column on its evals (``nan`` for runs without per-step
    counts), and notes on what the cost clock could not price from the calibration."""
    evals = records.evals.copy()
    evals["cost_s"] = math.nan
    fallback: set[str] = set()
    if cal is not None:
        for run_id, rows in evals.groupby("run_id").groups.items():
            rec = records.steps.get(str(run_id))
            if rec is None or not len(rec.table):
                continue
            cost = costclock.step_costs(rec.table, rec.label, cal, rec.machine_gflops)
            total, extra = costclock.at_evals(cost, evals.loc[rows, "step"])
            evals.loc[rows, "cost_s"] = total - extra if rec.off_clock else total
            if cost.select_fallback:
                fallback.add(costclock.base_label(rec.label))
    notes = []
    if fallback:
        notes.append("cost clock: no calibrated selection price for " + ", ".join(sorted(fallback))
                     + ": their measured selection seconds were used, scaled by the run's machine"
                     " probe over the calibration's (add their runs to the calibration)")
    return dataclasses.replace(records, evals=evals), notes


def analyse(records: Records, fixed_targets: Mapping[str, float] | None = None,
            reps: int = 2000, seed: int = 0, level: float = 0.95,
            calibration: costclock.Calibration | None = None,
            calibration_source: str = "",
            claim_list: Sequence[Mapping[str, Any]] = (), target_rise: float = 1.0) -> Analysis:
    records, notes = with_cost_clock(records, calibration)
    target_table = stats.targets(records.evals, fixed_targets, rise=target_rise)
    if target_table.empty:
        pairs_seen = ", ".join(sorted(set(records.summaries["pair"])))
        raise ReportError(f"no pair has a target accuracy ({pairs_seen}): add {stats.BASELINE} "
                          "runs of those pairs to the results folder, or fix targets with "
                          "--target PAIR=ACCURACY")
    runs = stats.run_table(records.evals, target_table)
    uncosted = sorted(set(runs.loc[runs["cost_to_target_s"].isna(), "run_id"]))
    rank_clock = "cost" if not uncosted and len(runs) else "time"
    if uncosted:
        notes.append(f"{len(uncosted)} run(s) have no per-step cost counts: the ranking uses the "
                     "wall clock, not the cost clock")
    speedups = {"speedup": stats.HELD[rank_clock], "speedup_first": stats.FIRST[rank_clock],
                "speedup_steps": stats.HELD["steps"]}
    if rank_clock == "cost":
        speedups["speedup_wall"] = stats.HELD["time"]
    per_step = dict(zip(records.summaries["run_id"],
                        records.summaries["clock_s"] / records.summaries["steps"].clip(lower=1),
                        strict=True))
    pairs = _with_effective(stats.pair_table(runs, per_step, reps=reps, seed=seed, level=level,
                                             speedups=speedups), records.effective)
    mats = crosspair.score_matrices(runs, column=stats.HELD[rank_clock])
    agg = crosspair.aggregate(mats, reps=reps, seed=seed, level=level)
    agg_wall = (crosspair.aggregate(crosspair.score_matrices(runs, column=stats.HELD["time"]), reps=reps,
                                seed=seed, level=level) if rank_clock == "cost" else agg)
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in mats.norm_times.values()]
                            or [np.array([])])
    tau_max = max(1.5, float(finite.max()) * 1.05) if finite.size else 1.5
    taus = np.linspace(0.0, tau_max, 121)
    fewest = min((m.shape[0] * m.shape[1] for m in mats.norm_times.values()), default=0)
    profiles = (crosspair.performance_profile(mats, taus, reps=reps, seed=seed, level=level)
                if fewest >= PROFILE_MIN_RUNS else {})
    notes += _notes(records, target_table, runs, pairs, mats, fixed_targets or {})
    if not profiles and mats.norm_times:
        notes.append(f"performance profile skipped: a strategy has {fewest} scored run(s), fewer "
                     f"than {PROFILE_MIN_RUNS}; runs_dotplot.png shows every run instead")
    board = _leaderboard(records.summaries, runs, pairs, agg, agg_wall)
    if (agg["method"] == "IQM").any():
        notes.append("speedup across pairs: the IQM of the pairs' speedups (each a ratio of "
                     "censored medians over seeds), its interval a bootstrap over both arms' "
                     "seeds within every pair; an arm identical to uniform scores 1")
    claim_rows = (claims.table(runs, list(claim_list), stats.HELD[rank_clock], reps=reps,
                               seed=seed, level=level, summaries=records.summaries)
                  if claim_list else pd.DataFrame())
    for c in claim_list:
        if c.get("needs_revisits") and claims.never_revisited(records.summaries, c["strategy"]):
            notes.append(f"strategy {c['strategy']}: {claims.not_tested(c['method'])}; "
                         "its leaderboard row is uniform sampling's seed noise")
    return Analysis(records, target_table, runs, pairs, board, profiles, taus, notes, level,
                    rank_clock, mats, calibration, calibration_source, claim_rows)


def _with_effective(pairs: pd.DataFrame, effective: pd.DataFrame) -> pd.DataFrame:
    """Add the mean effective-question fraction (over steps and seeds) of each pair x strategy
    and its ratio to uniform's on the same pair (the paper's "+25.4% effective questions")."""
    out = pairs.copy()
    if effective.empty or out.empty:
        out["effective_frac"] = math.nan
        out["effective_vs_uniform"] = math.nan
        return out
    mean = effective.groupby(["pair", "label"])["value"].mean()
    out["effective_frac"] = [float(mean.get((p, lb), math.nan))
                             for p, lb in zip(out["pair"], out["label"], strict=True)]
    base = {p: float(mean.get((p, stats.BASELINE), math.nan)) for p in out["pair"]}
    out["effective_vs_uniform"] = [e / base[p] if base[p] > 0 else math.nan
                                   for p, e in zip(out["pair"], out["effective_frac"], strict=True)]
    return out


def _notes(records: Records, target_table: pd.DataFrame, runs: pd.DataFrame,
           pairs: pd.DataFrame, mats: crosspair.Matrices, fixed: Mapping[str, float]) -> list[str]:
    notes = []
    if records.unfinished:
        notes.append(f"{len(records.unfinished)} unfinished run(s) left out (no summary.json): "
                     + ", ".join(records.unfinished))
    present = set(records.summaries["pair"])
    for pair in sorted(present - set(target_table["pair"])):
        notes.append(f"pair {pair}: no {stats.BASELINE} runs and no --target, so no target: "
                     "its runs are not scored")
    for pair in sorted(set(fixed) - present):
        notes.append(f"--target {pair}: no finished runs on that pair")
    for pair, grp in (pairs.groupby("pair") if not pairs.empty else []):
        note = grp["note"].iloc[0]
        if note:
            notes.append(f"pair {pair}: {note}")
    for label, note in sorted(mats.notes.items()):
        notes.append(f"strategy {label}: {note}")
    notes += machine_notes(records.summaries)
    return notes


def machine_notes(summaries: pd.DataFrame, tolerance: float = MACHINE_TOLERANCE) -> list[str]:
    """One note per pair whose strategies ran on a machine of different speed (the median of
    their runs' matmul probes differs by more than ``tolerance``): their wall-clock times are
    then not comparable, while their cost clocks and steps are. Runs recorded without the probe
    are left out."""
    probed = summaries.dropna(subset=["machine_gflops"])
    notes = []
    for pair, grp in probed.groupby("pair"):
        speed = grp.groupby("label")["machine_gflops"].median().sort_index()
        if len(speed) < 2 or speed.max() <= speed.min() * (1 + tolerance):
            continue
        listed = ", ".join(f"{label} {value:.1f}" for label, value in speed.items())
        notes.append(f"pair {pair}: the machine ran at different speeds for its strategies "
                     f"(matmul probe at each evaluation, median GFLOP/s: {listed}; "
                     f"{speed.max() / speed.min() - 1:.0%} apart): its wall-clock speedups "
                     "partly measure the machine; the cost clock and steps do not")
    return notes


AGG_KEYS = ("method", "iqm_speedup", "iqm_lo", "iqm_hi", "poi", "poi_lo", "poi_hi")


def _leaderboard(summaries: pd.DataFrame, runs: pd.DataFrame, pairs: pd.DataFrame,
                 agg: pd.DataFrame, agg_wall: pd.DataFrame) -> pd.DataFrame:
    """One row per label, ranked by the aggregate speedup on the ranking clock; the baseline is
    listed at 1.00 as the reference (``reference`` True, no rank), not as a measured speedup."""
    rows = []
    for label, grp in summaries.groupby("label"):
        p = pairs[pairs["label"] == label]
        a = agg[agg["label"] == label]
        w = agg_wall[agg_wall["label"] == label]
        reached = int(np.isfinite(p["median_time_s"]).sum()) if len(p) else 0
        row = {"label": label, "reference": label == stats.BASELINE,
               **{k: math.nan for k in AGG_KEYS}, "method": "",
               "iqm_wall": math.nan, "iqm_wall_lo": math.nan, "iqm_wall_hi": math.nan,
               "pairs_reached": f"{reached}/{len(p)}", "pairs_scored": len(p),
               "runs": len(grp),
               # over pairs, the same censored median as over seeds (inf: most pairs unreached)
               "median_time_to_target_s": stats.censored_median(p["median_time_s"])
               if len(p) else math.nan,
               "median_cost_to_target_s": stats.censored_median(p["median_cost_s"])
               if len(p) else math.nan,
               "samples_mean": float(grp["samples"].mean()),
               "reference_samples_mean": float(grp["reference_samples"].mean()),
               "tokens_mean": float(grp["tokens"].mean()),
               "machine_gflops": float(grp["machine_gflops"].median()),  # nan: not probed
               "git_commits": ";".join(sorted(set(grp["git_commit"]))),
               "dates": f"{min(grp['date'])}..{max(grp['date'])}",
               "versions": ";".join(sorted(set(grp["versions"])))}
        if not a.empty:
            row.update({k: a[k].iloc[0] for k in AGG_KEYS})
        if not w.empty:
            row.update(iqm_wall=w["iqm_speedup"].iloc[0], iqm_wall_lo=w["iqm_lo"].iloc[0],
                       iqm_wall_hi=w["iqm_hi"].iloc[0])
        rows.append(row)
    board = pd.DataFrame(rows)
    board["_has"] = board["iqm_speedup"].notna()
    board["_reached"] = [int(r.split("/")[0]) for r in board["pairs_reached"]]
    board = board.sort_values(["_has", "iqm_speedup", "_reached", "reference", "label"],
                              ascending=[False, False, False, False, True], kind="stable")
    board = board.drop(columns=["_has", "_reached"]).reset_index(drop=True)
    ranked = board["iqm_speedup"].notna() & ~board["reference"]
    board.insert(0, "rank", pd.array(np.where(ranked, ranked.cumsum(), 0), dtype="Int64"))
    board.loc[~ranked, "rank"] = pd.NA
    return board


# ---------------------------------------------------------------------------- tables


def report(results: Path, out: Path | None = None,
           fixed_targets: Mapping[str, float] | None = None, reps: int = 2000, seed: int = 0,
           level: float = 0.95, calibration: Path | None = None,
           claims_file: Path | None = None, finished_only: bool = False,
           only_runs: Collection[str] | None = None,
           target_rise: float = 1.0) -> tuple[Analysis, list[Path]]:
    """Analyse ``results/runs`` and write the report into ``out`` (default ``results/report``).
    ``calibration``: the cost clock's unit costs (default ``results/calibration.json``, else
    fitted on the records); ``claims_file``: published claims (default configs/claims.yaml).
    ``finished_only``: say nothing of unfinished runs (a snapshot to commit while a sweep writes
    runs beside the finished ones: the published report is what the finished records give).
    ``only_runs``: report on just the run folders so named (e.g. those a commit holds).
    ``target_rise``: the targets uniform's runs set ask for this share of its median rise
    (``stats.targets``; 1: its median final accuracy)."""
    from harness.protocol import figures

    if reps < 1:
        raise ReportError(f"--reps must be at least 1, got {reps}")
    if not 0.0 < target_rise <= 1.0:
        raise ReportError(f"--target-rise must be in (0, 1], got {target_rise} (e.g. 0.9: "
                          "the target is 90% of uniform's median rise from step 0)")
    results = Path(results)
    out = Path(out) if out is not None else results / "report"
    records = load_records(results, only_runs)
    if finished_only:
        records = dataclasses.replace(records, unfinished=[])
    ensure_writable(out, "--out")  # before the bootstrap, which can take a while
    # targets fixed in sweep files (kept in sweeps/*/sweep.json); --target wins over them
    fixed_targets = {**sweep_targets(results), **(fixed_targets or {})}
    cal, source = resolve_calibration(results, records, calibration)
    try:
        claim_list = claims.load(claims_file)
    except ValueError as err:
        if claims_file:
            raise ReportError(str(err)) from err
        claim_list = []
    a = analyse(records, fixed_targets or None, reps=reps, seed=seed, level=level,
                calibration=cal, calibration_source=source, claim_list=claim_list,
                target_rise=target_rise)
    out.mkdir(parents=True, exist_ok=True)
    from harness.protocol.reporttables import write_tables

    written = write_tables(a, out, reps, seed, level, results / "recheck.json")
    written += figures.draw_all(a, out)
    for note in a.notes:
        print(f"note: {note}", file=sys.stderr)
    return a, written


def sweep_targets(results: Path) -> dict[str, float]:
    """Targets the sweeps that wrote into ``results`` fixed (``targets:`` in a sweep file)."""
    found: dict[str, tuple[float, Path]] = {}
    for meta_path in sorted(Path(results).glob("sweeps/*/sweep.json")):
        try:
            targets = json.loads(meta_path.read_text()).get("targets") or {}
        except (OSError, json.JSONDecodeError) as err:
            raise ReportError(f"unreadable sweep metadata {meta_path}: {err} (delete it or rerun "
                              "the sweep to rewrite it)") from err
        for pair, value in targets.items():
            if pair in found and found[pair][0] != float(value):
                raise ReportError(
                    f"sweeps disagree on the target of {pair}: {found[pair][0]} in "
                    f"{found[pair][1]}, {value} in {meta_path}: choose with --target "
                    f"{pair}=VALUE")
            found[pair] = (float(value), meta_path)
    return {pair: value for pair, (value, _) in found.items()}


def parse_targets(items: Sequence[str]) -> dict[str, float]:
    out = {}
    for item in items:
        pair, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not pair or not 0.0 <= number <= 1.0:
            raise ReportError(f"--target expects PAIR=VALUE with VALUE an accuracy in [0, 1], "
                              f"got '{item}' (e.g. --target tiny-b-arith=0.42)")
        out[pair] = number
    return out
