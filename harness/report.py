"""``selbench report``: figures and tables from run records alone. Torch-free.

Reads ``RESULTS_DIR/runs/*/`` (finished runs = those with ``summary.json``; unfinished ones are
only counted) and writes into ``RESULTS_DIR/report/``:

- ``accuracy_vs_time.png``, ``speedup.png``, ``performance_profile.png``, ``effective_frac.png``
- ``leaderboard.md`` / ``.csv``: strategies ranked by IQM speedup over uniform across pairs
- ``table1.md`` / ``.csv``: steps, per-step time and total time saved per pair (paper's Table 1)
- ``pairs.csv``: every per-(pair, strategy) statistic; ``runs.csv``: time/steps/tokens to target
  per run

The output is a pure function of the records and the options (bootstrap seed and reps): no
clock, no randomness beyond the seeded bootstraps. Definitions live in ``harness.stats``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness import stats  # noqa: E402
from harness.records import RunRecord  # noqa: E402

DPI = 150
EFFECTIVE_KEY = "train/effective_frac"
EFFECTIVE_WINDOW = 5  # steps in the trailing mean of the effective-fraction curves


# Strategies whose extra rollouts only estimate difficulty (no training signal): reported twice,
# as run (rollouts on the clock, a real pre-filtering method) and with that time taken off the
# clock (an upper bound for any predictor of the same selections)
OFF_CLOCK_STRATEGIES = ("oracle",)
OFF_CLOCK_SUFFIX = " (off clock)"


TIER_COLUMNS = [*stats.EVAL_KEYS, "step", "tier", "accuracy"]
TIER_SHARE_PREFIX = "train/tier_share/"  # per-step share of the trained groups from each tier
SHARE_COLUMNS = [*stats.EVAL_KEYS, "tier", "share"]
# arms of one pair whose machine-speed probes differ by more than this are flagged (the probe's
# own spread over 18 runs of one sweep on the project's machine was 141-156 GFLOP/s, +-5%)
MACHINE_TOLERANCE = 0.10


class ReportError(Exception):
    """Records that cannot be reported on (missing, conflicting); one line, names the fix."""


@dataclass
class Records:
    summaries: pd.DataFrame  # one row per finished run
    evals: pd.DataFrame  # run_id, pair, label, seed, step, clock_s, samples, tokens, accuracy
    effective: pd.DataFrame  # run_id, pair, label, seed, step, value
    unfinished: list[str] = field(default_factory=list)
    # run_id, pair, label, seed, step, tier, accuracy (runs recorded before tiers: none)
    tiers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TIER_COLUMNS))
    # run_id, pair, label, seed, tier, share: a run's mean over steps of the share of its trained
    # groups (fresh and replayed) from each tier (runs recorded before these metrics: none)
    tier_shares: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SHARE_COLUMNS))


def _label(summary: Mapping) -> str:
    # records written before labels existed: the strategy name, "+rr" when replay was on
    if summary.get("label"):
        return str(summary["label"])
    return str(summary["strategy"]) + ("+rr" if summary.get("replay") else "")


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def load_records(results: Path) -> Records:
    runs_dir = Path(results) / "runs"
    if not runs_dir.is_dir():
        raise ReportError(f"no run records: {runs_dir} does not exist (write runs there with "
                          f"`selbench run ... --results {results}`)")
    summaries, evals, effective, unfinished, tiers, shares = [], [], [], [], [], []
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        rec = RunRecord(run_dir)
        if not rec.finished:
            unfinished.append(run_dir.name)
            continue
        s = json.loads(rec.summary_path.read_text())
        key = {"run_id": s.get("run_id", run_dir.name), "pair": s["pair"], "label": _label(s),
               "seed": int(s["seed"])}
        summaries.append({**key, "strategy": s["strategy"], "steps": int(s["steps"]),
                          "clock_s": float(s["clock_s"]), "samples": float(s["samples"]),
                          "tokens": float(s["tokens_generated"]) + float(s["tokens_trained"]),
                          "reference_samples": float(s.get("reference_samples", 0)),
                          "initial_accuracy": float(s["initial_accuracy"]),
                          "final_accuracy": float(s["final_accuracy"]),
                          "git_commit": s.get("git_commit", "unknown"),
                          "date": s.get("date", ""),
                          "machine_gflops": _float_or_nan(s.get("machine_gflops")),
                          "versions": json.dumps(s.get("versions", {}), sort_keys=True)})
        curve = rec.read_eval()
        evals.extend({**key, **row} for row in curve)
        metrics = rec.read_metrics()
        eff = [(step, value) for step, name, value in metrics if name == EFFECTIVE_KEY]
        by_tier: dict[str, list[float]] = {}
        for _, name, value in metrics:
            if name.startswith(TIER_SHARE_PREFIX):
                by_tier.setdefault(name[len(TIER_SHARE_PREFIX):], []).append(value)
        shares.extend({**key, "tier": tier, "share": float(np.mean(v))} for tier, v in by_tier.items())
        effective.extend({**key, "step": step, "value": value} for step, value in eff)
        tiers.extend({**key, "step": step, "tier": tier, "accuracy": acc}
                     for step, tier, acc in rec.read_eval_tiers())
        if s["strategy"] in OFF_CLOCK_STRATEGIES and float(s.get("extra_s", 0.0)) > 0:
            # the same run as an upper bound: its estimation rollouts taken off the clock
            off = {**key, "label": key["label"] + OFF_CLOCK_SUFFIX,
                   "run_id": key["run_id"] + OFF_CLOCK_SUFFIX.strip()}
            summaries.append({**summaries[-1], **off,
                              "clock_s": float(s["clock_s"]) - float(s["extra_s"])})
            evals.extend({**off, **row, "clock_s": row["clock_s"] - row["extra_s"]} for row in curve)
            effective.extend({**off, "step": step, "value": value} for step, value in eff)
    if not summaries:
        raise ReportError(f"no finished runs under {runs_dir} ({len(unfinished)} unfinished): a "
                          "run is finished when its folder holds summary.json")
    sdf = pd.DataFrame(summaries)
    dup = sdf[sdf.duplicated(["pair", "label", "seed"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        ids = ", ".join(dup[(dup["pair"] == first["pair"]) & (dup["label"] == first["label"])
                            & (dup["seed"] == first["seed"])]["run_id"])
        raise ReportError(f"two finished runs for pair {first['pair']}, strategy "
                          f"{first['label']}, seed {first['seed']} ({ids}): keep one config per "
                          "strategy in a results folder (move the others out of runs/)")
    return Records(sdf, pd.DataFrame(evals),
                   pd.DataFrame(effective, columns=[*stats.EVAL_KEYS, "step", "value"]),
                   unfinished, pd.DataFrame(tiers, columns=TIER_COLUMNS),
                   pd.DataFrame(shares, columns=SHARE_COLUMNS))


# ---------------------------------------------------------------------------- analysis


@dataclass
class Analysis:
    records: Records
    targets: pd.DataFrame
    runs: pd.DataFrame
    pairs: pd.DataFrame
    leaderboard: pd.DataFrame
    profiles: dict[str, tuple[np.ndarray, np.ndarray]]
    taus: np.ndarray
    notes: list[str]
    level: float


def analyse(records: Records, fixed_targets: Mapping[str, float] | None = None,
            reps: int = 2000, seed: int = 0, level: float = 0.95) -> Analysis:
    target_table = stats.targets(records.evals, fixed_targets)
    if target_table.empty:
        pairs_seen = ", ".join(sorted(set(records.summaries["pair"])))
        raise ReportError(f"no pair has a target accuracy ({pairs_seen}): add {stats.BASELINE} "
                          "runs of those pairs to the results folder, or fix targets with "
                          "--target PAIR=ACCURACY")
    runs = stats.run_table(records.evals, target_table)
    per_step = dict(zip(records.summaries["run_id"],
                        records.summaries["clock_s"] / records.summaries["steps"].clip(lower=1),
                        strict=True))
    pairs = _with_effective(stats.pair_table(runs, per_step, reps=reps, seed=seed, level=level),
                            records.effective)
    mats = stats.score_matrices(runs)
    agg = stats.aggregate(mats, reps=reps, seed=seed, level=level)
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in mats.norm_times.values()]
                            or [np.array([])])
    tau_max = max(1.5, float(finite.max()) * 1.05) if finite.size else 1.5
    taus = np.linspace(0.0, tau_max, 121)
    profiles = stats.performance_profile(mats, taus, reps=reps, seed=seed, level=level)
    notes = _notes(records, target_table, runs, pairs, mats, fixed_targets or {})
    board = _leaderboard(records.summaries, runs, pairs, agg)
    return Analysis(records, target_table, runs, pairs, board, profiles, taus, notes, level)


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
           pairs: pd.DataFrame, mats: stats.Matrices, fixed: Mapping[str, float]) -> list[str]:
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
    then not comparable, while their steps are. Runs recorded without the probe are left out."""
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
                     "partly measure the machine; read steps saved, or rerun the slower arm")
    return notes


def _leaderboard(summaries: pd.DataFrame, runs: pd.DataFrame, pairs: pd.DataFrame,
                 agg: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for label, grp in summaries.groupby("label"):
        p = pairs[pairs["label"] == label]
        a = agg[agg["label"] == label]
        reached = int(np.isfinite(p["median_time_s"]).sum())
        row = {"label": label, "iqm_speedup": math.nan, "iqm_lo": math.nan, "iqm_hi": math.nan,
               "poi": math.nan, "poi_lo": math.nan, "poi_hi": math.nan,
               "pairs_reached": f"{reached}/{len(p)}", "pairs_scored": len(p),
               "runs": len(grp),
               # over pairs, the same censored median as over seeds (inf: most pairs unreached)
               "median_time_to_target_s": stats.censored_median(p["median_time_s"])
               if len(p) else math.nan,
               "samples_mean": float(grp["samples"].mean()),
               "reference_samples_mean": float(grp["reference_samples"].mean()),
               "tokens_mean": float(grp["tokens"].mean()),
               "machine_gflops": float(grp["machine_gflops"].median()),  # nan: not probed
               "git_commits": ";".join(sorted(set(grp["git_commit"]))),
               "dates": f"{min(grp['date'])}..{max(grp['date'])}",
               "versions": ";".join(sorted(set(grp["versions"])))}
        if not a.empty:
            for key in ("iqm_speedup", "iqm_lo", "iqm_hi", "poi", "poi_lo", "poi_hi"):
                row[key] = float(a[key].iloc[0])
        rows.append(row)
    board = pd.DataFrame(rows)
    board["_has"] = board["iqm_speedup"].notna()
    board["_reached"] = [int(r.split("/")[0]) for r in board["pairs_reached"]]
    board = board.sort_values(["_has", "iqm_speedup", "_reached", "label"],
                              ascending=[False, False, False, True], kind="stable")
    board = board.drop(columns=["_has", "_reached"]).reset_index(drop=True)
    board.insert(0, "rank", [i + 1 if ok else pd.NA
                             for i, ok in enumerate(board["iqm_speedup"].notna())])
    board["rank"] = board["rank"].astype("Int64")
    return board


# ---------------------------------------------------------------------------- tables


def _f(x: float, fmt: str = "{:.2f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "not reached" if x > 0 else "-inf"
    return fmt.format(x)


def _ci(point: float, lo: float, hi: float, fmt: str = "{:.2f}") -> str:
    if math.isnan(point):
        return "n/a"
    hi_s = "inf" if math.isinf(hi) else fmt.format(hi)
    return f"{fmt.format(point)} [{fmt.format(lo)}, {hi_s}]"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _provenance(summaries: pd.DataFrame) -> str:
    commits = summaries.groupby("git_commit").size()
    lines = ["## Provenance", "",
             "- runs: " + f"{len(summaries)} finished",
             "- git commits: " + ", ".join(f"`{c}` ({n} run{'s' if n > 1 else ''})"
                                           for c, n in commits.items()),
             f"- run dates: {min(summaries['date'])} to {max(summaries['date'])}"]
    versions: dict[str, set[str]] = {}
    for blob in summaries["versions"]:
        for name, ver in json.loads(blob).items():
            versions.setdefault(name, set()).add(ver)
    if versions:
        lines.append("- packages: " + ", ".join(f"{n} {'/'.join(sorted(v))}"
                                                for n, v in sorted(versions.items())))
    return "\n".join(lines) + "\n"


def _definitions(a: Analysis, reps: int, seed: int, level: float) -> str:
    pct = f"{level:.0%}"
    lines = ["## Definitions", "",
             f"- smoothed accuracy: trailing mean of the last {stats.SMOOTH_WINDOW} evaluations; "
             "time-to-target: on-clock seconds (evaluation excluded) at the first evaluation "
             "whose smoothed accuracy reaches the pair's target; a run that never reaches it is "
             "censored (infinite time, speedup 0), never dropped",
             "- median over seeds: the earliest time by which at least half of the seeds reached "
             "the target; a pair counts as reached when that median is finite",
             "- speedup: uniform's median time-to-target / the strategy's; IQM: interquartile "
             "mean of per-run speedups over the (seeds x pairs) matrix (rliable); PoI: "
             "probability that a run of the strategy beats a run of uniform on the same pair, "
             "averaged over pairs",
             f"- intervals: {pct} percentile bootstrap over seeds (per pair) and stratified "
             f"bootstrap (across pairs), {reps} resamples, seed {seed}",
             "- cost: mean per run of samples generated (including reference / extra "
             "rollouts) and tokens (generated + trained)", "", "Targets:", ""]
    rows = [[p, f"{t:.4f}", s] for p, t, s in a.targets.itertuples(index=False)]
    return "\n".join(lines) + "\n" + _md_table(["pair", "target accuracy", "source"], rows)


def write_tables(a: Analysis, out: Path, reps: int, seed: int, level: float) -> list[Path]:
    written = []
    board = a.leaderboard
    path = out / "leaderboard.csv"
    board.to_csv(path, index=False)
    written.append(path)

    rows = [[str(r["rank"]) if not pd.isna(r["rank"]) else "-", r["label"],
             _ci(r["iqm_speedup"], r["iqm_lo"], r["iqm_hi"]),
             _ci(r["poi"], r["poi_lo"], r["poi_hi"]), r["pairs_reached"],
             _f(r["median_time_to_target_s"], "{:.1f}"), f"{r['samples_mean']:,.0f}",
             f"{r['reference_samples_mean']:,.0f}", f"{r['tokens_mean']:,.0f}",
             r["git_commits"]]
            for _, r in board.iterrows()]
    md = ["# Leaderboard: time to target accuracy", "",
          "Strategies ranked by the interquartile mean (IQM) across pairs of their speedup in "
          "on-clock time to reach the target accuracy, relative to uniform GRPO.", "",
          _md_table(["rank", "strategy", f"IQM speedup [{level:.0%} CI]",
                     "P(improve over uniform) [CI]", "pairs reaching target",
                     "median time-to-target (s; median over pairs)", "samples / run", "of which reference",
                     "tokens / run", "git commit(s)"], rows),
          "## Per pair", "",
          _md_table(["pair", "strategy", "seeds", "seeds reaching", "median time (s)",
                     "median steps", "speedup [CI]", "note"],
                    [[r["pair"], r["label"], str(r["seeds"]), str(r["reached"]),
                      _f(r["median_time_s"], "{:.1f}"), _f(r["median_steps"], "{:.0f}"),
                      _ci(r["speedup"], r["speedup_lo"], r["speedup_hi"]), r["note"]]
                     for _, r in a.pairs.iterrows()]),
          "Figures: `accuracy_vs_time.png`, `speedup.png`, `performance_profile.png`, "
          "`effective_frac.png`.", ""]
    if a.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in a.notes] + [""]
    md += [_definitions(a, reps, seed, level), _provenance(a.records.summaries)]
    path = out / "leaderboard.md"
    path.write_text("\n".join(md))
    written.append(path)

    t1 = a.pairs[["pair", "label", "seeds", "reached", "median_steps", "steps_saved_pct",
                  "per_step_time_saved_pct", "total_time_saved_pct", "speedup", "speedup_lo",
                  "speedup_hi", "effective_frac", "effective_vs_uniform", "note"]]
    path = out / "table1.csv"
    t1.to_csv(path, index=False)
    written.append(path)
    body = [[r["pair"], r["label"], _f(r["median_steps"], "{:.0f}"),
             _f(r["steps_saved_pct"], "{:.2f}%"), _f(r["per_step_time_saved_pct"], "{:.2f}%"),
             _f(r["total_time_saved_pct"], "{:.2f}%"),
             _ci(r["speedup"], r["speedup_lo"], r["speedup_hi"]),
             f"{_f(r['effective_frac'])} ({_f(r['effective_vs_uniform'], '{:.2f}x')})",
             f"{int(r['reached'])}/{int(r['seeds'])}"]
            for _, r in t1.iterrows() if r["label"] != stats.BASELINE]
    path = out / "table1.md"
    path.write_text("# Time saved relative to uniform (as the paper's Table 1)\n\n"
                    "Steps saved = 1 - median steps-to-target / uniform's; per-step time saved = "
                    "1 - mean on-clock seconds per step / uniform's; total time saved = 1 - "
                    "median time-to-target / uniform's. n/a: not reached, or no uniform "
                    "reference (see leaderboard.md notes). Effective questions: mean fraction of "
                    "the selected prompts whose group had non-zero reward variance (x uniform's)."
                    "\n\n"
                    + _md_table(["pair", "strategy", "steps to target", "steps saved",
                                 "per-step time saved", "total time saved", "speedup [CI]",
                                 "effective questions", "seeds reaching"], body))
    written.append(path)

    written += _tier_tables(a.records, out)
    for name, frame in (("pairs.csv", a.pairs), ("runs.csv", a.runs)):
        path = out / name
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def tier_gains(records: Records) -> pd.DataFrame:
    """Held-out accuracy per difficulty tier at the first and last evaluation, mean over seeds:
    where a strategy's gains (or losses) come from; beside it the share of the training groups
    the strategy drew from that tier (``nan`` for runs recorded without it)."""
    t = records.tiers
    cols = ["pair", "label", "tier", "seeds", "initial", "final", "gain", "trained_share"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    first = t[t["step"] == t.groupby("run_id")["step"].transform("min")]
    last = t[t["step"] == t.groupby("run_id")["step"].transform("max")]
    both = first.merge(last, on=["run_id", "pair", "label", "seed", "tier"],
                       suffixes=("_first", "_last"))
    out = (both.groupby(["pair", "label", "tier"], sort=True)
           .agg(seeds=("seed", "nunique"), initial=("accuracy_first", "mean"),
                final=("accuracy_last", "mean"))
           .reset_index())
    out["gain"] = out["final"] - out["initial"]
    sh = records.tier_shares
    if sh.empty:
        out["trained_share"] = np.nan
    else:
        mean = sh.groupby(["pair", "label", "tier"])["share"].mean().rename("trained_share")
        out = out.merge(mean.reset_index(), on=["pair", "label", "tier"], how="left")
    return out[cols]


def _tier_tables(records: Records, out: Path) -> list[Path]:
    gains = tier_gains(records)
    if gains.empty:
        return []
    csv_path, md_path = out / "tiers.csv", out / "tiers.md"
    gains.to_csv(csv_path, index=False)
    md_path.write_text(
        "# Held-out accuracy by difficulty tier\n\nMean over seeds at the first and the last "
        "evaluation; where each strategy gains or loses. Trained share: of the groups the run "
        "trained on (fresh and replayed), the share from that tier, mean over steps and seeds "
        "(n/a: recorded before this was).\n\n"
        + _md_table(["pair", "strategy", "tier", "seeds", "initial", "final", "gain",
                     "trained share"],
                    [[r["pair"], r["label"], r["tier"], str(int(r["seeds"])), _f(r["initial"], "{:.3f}"),
                      _f(r["final"], "{:.3f}"), _f(r["gain"], "{:+.3f}"),
                      _f(r["trained_share"], "{:.2f}")]
                     for _, r in gains.iterrows()]))
    return [csv_path, md_path]


# ---------------------------------------------------------------------------- figures


def _colours(labels: Sequence[str]) -> dict[str, str]:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # one colour per distinct label (labels arrive once per run)
    others = sorted(set(labels) - {stats.BASELINE})
    out = {stats.BASELINE: "black"}
    out.update({lb: palette[i % len(palette)] for i, lb in enumerate(others)})
    return out


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    # constrained layout leaves room for the suptitle and the legend placed "outside" below
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(8.0, 5.2 * ncols), 3.6 * nrows + 1.2),
                             dpi=DPI, squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: plt.Figure, colours: Mapping[str, str], labels: Sequence[str],
            extra: Sequence[tuple[str, dict]] = ()) -> None:
    handles = [plt.Line2D([], [], color=colours[lb], lw=2, label=lb) for lb in labels]
    handles += [plt.Line2D([], [], label=text, **style) for text, style in extra]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
               frameon=False, title="strategy")


def _ordered(labels: Sequence[str]) -> list[str]:
    return sorted(set(labels), key=lambda lb: (lb != stats.BASELINE, lb))


def plot_accuracy(a: Analysis, path: Path, colours: Mapping[str, str]) -> Path:
    """Held-out accuracy vs on-clock time: mean over seeds on a common time grid (each seed
    interpolated linearly between its evaluations, up to the shortest seed's end), band = +-1
    standard error over seeds."""
    evals = a.records.evals
    pairs = sorted(set(evals["pair"]))
    fig, axes = _grid(len(pairs))
    tmap = dict(zip(a.targets["pair"], a.targets["target"], strict=True))
    for ax, pair in zip(axes, pairs, strict=True):
        sub = evals[evals["pair"] == pair]
        for label in _ordered(sub["label"]):
            runs = [g.sort_values("step") for _, g in sub[sub["label"] == label].groupby("run_id")]
            end = min(float(g["clock_s"].iloc[-1]) for g in runs)
            grid = np.linspace(0.0, end, 100)
            ys = np.stack([np.interp(grid, g["clock_s"], g["accuracy"]) for g in runs])
            mean = ys.mean(axis=0)
            ax.plot(grid, mean, color=colours[label], lw=1.8)
            if len(runs) > 1:
                se = ys.std(axis=0, ddof=1) / math.sqrt(len(runs))
                ax.fill_between(grid, mean - se, mean + se, color=colours[label], alpha=0.18,
                                lw=0)
            med = a.pairs[(a.pairs["pair"] == pair) & (a.pairs["label"] == label)]
            if pair in tmap and not med.empty and math.isfinite(med["median_time_s"].iloc[0]):
                ax.plot([med["median_time_s"].iloc[0]], [tmap[pair]], marker="v", ms=8,
                        color=colours[label], mec="white", ls="none")
        if pair in tmap:
            ax.axhline(tmap[pair], color="grey", ls="--", lw=1)
        ax.set_title(pair)
        ax.set_xlabel("on-clock training time (s, evaluation excluded)")
        ax.set_ylabel("held-out accuracy")
        ax.grid(alpha=0.3)
    _legend(fig, colours, _ordered(evals["label"]),
            [("target", {"color": "grey", "ls": "--"}),
             ("median time-to-target", {"color": "grey", "marker": "v", "ls": "none"})])
    fig.suptitle("Held-out accuracy vs training time (mean over seeds, band: ±1 s.e.)")
    return _save(fig, path)


def plot_effective(a: Analysis, path: Path, colours: Mapping[str, str]) -> Path:
    eff = a.records.effective
    pairs = sorted(set(a.records.summaries["pair"]))
    fig, axes = _grid(len(pairs))
    for ax, pair in zip(axes, pairs, strict=True):
        sub = eff[eff["pair"] == pair]
        for label in _ordered(sub["label"]):
            mean = sub[sub["label"] == label].groupby("step")["value"].mean().sort_index()
            smooth = mean.rolling(EFFECTIVE_WINDOW, min_periods=1).mean()
            ax.plot(mean.index, mean.to_numpy(), color=colours[label], alpha=0.2, lw=0.8)
            ax.plot(smooth.index, smooth.to_numpy(), color=colours[label], lw=1.8)
        ax.set_title(pair)
        ax.set_xlabel("training step")
        ax.set_ylabel("share of selected groups with\nnon-zero reward variance")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    _legend(fig, colours, _ordered(eff["label"]) if len(eff) else [])
    fig.suptitle(f"Effective-question fraction (mean over seeds; bold: {EFFECTIVE_WINDOW}-step "
                 "trailing mean)")
    return _save(fig, path)


def plot_speedups(a: Analysis, path: Path, colours: Mapping[str, str]) -> Path:
    """Horizontal bars per pair and strategy, plus the IQM across pairs, with intervals."""
    labels = _ordered(a.pairs["label"])
    groups: list[tuple[str, dict[str, tuple[float, float, float]]]] = []
    for pair, grp in a.pairs.groupby("pair", sort=True):
        groups.append((pair, {r["label"]: (r["speedup"], r["speedup_lo"], r["speedup_hi"])
                              for _, r in grp.iterrows()}))
    groups.append(("IQM across pairs",
                   {r["label"]: (r["iqm_speedup"], r["iqm_lo"], r["iqm_hi"])
                    for _, r in a.leaderboard.iterrows()}))
    finite = [v for _, vals in groups for t in vals.values() for v in t if math.isfinite(v)]
    xmax = max([1.5, *finite]) * 1.12
    height = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(9.5, 1.9 + 0.32 * len(labels) * len(groups)),
                           dpi=DPI)
    yticks = []
    for gi, (_name, vals) in enumerate(groups):
        y0 = gi  # y grows downwards (inverted axis): pairs in order, the IQM last
        yticks.append(y0)
        for li, label in enumerate(labels):
            if label not in vals:
                continue
            y = y0 - 0.4 + (li + 0.5) * height
            point, lo, hi = vals[label]
            if math.isnan(point):
                ax.text(0.02, y, "no uniform reference", va="center", fontsize=7, color="grey")
                continue
            ax.barh(y, point, height=height * 0.9, color=colours[label], alpha=0.85)
            hi_c = min(hi, xmax * 0.98)
            ax.errorbar(point, y, xerr=[[point - lo], [hi_c - point]], fmt="none",
                        ecolor="black", capsize=2, lw=1)
            if math.isinf(hi):
                ax.text(hi_c, y, " →∞", va="center", fontsize=7)
            if point == 0:
                ax.text(0.02, y, "not reached", va="center", fontsize=7, color=colours[label])
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.set_yticks(yticks, [g[0] for g in groups])
    ax.set_xlim(0, xmax)
    ax.set_xlabel("speedup in time to target over uniform (×; >1 is faster; "
                  f"whiskers: {a.level:.0%} CI)")
    ax.set_title("Speedup to target accuracy, per pair and across pairs")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[lbl]) for lbl in labels]
    ax.legend(handles, labels, title="strategy", loc="upper left", bbox_to_anchor=(1.01, 1),
              fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_profile(a: Analysis, path: Path, colours: Mapping[str, str]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=DPI)
    for label in _ordered(list(a.profiles)):
        prof, ci = a.profiles[label]
        ax.step(a.taus, prof, where="post", color=colours[label], lw=1.8, label=label)
        ax.fill_between(a.taus, ci[0], ci[1], step="post", color=colours[label], alpha=0.15,
                        lw=0)
    ax.axvline(1.0, color="grey", ls="--", lw=1, label="uniform's median time")
    ax.set_xlabel("time budget τ (multiples of uniform's median time-to-target on the pair)")
    ax.set_ylabel("fraction of runs reaching the target\nwithin τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, a.taus[-1])
    ax.set_title(f"Time-to-target performance profile (all pairs and seeds; band: {a.level:.0%} "
                 "CI)")
    ax.grid(alpha=0.3)
    if a.profiles:
        ax.legend(title="strategy", fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no pair has a uniform reference time", ha="center",
                transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- entry point


def report(results: Path, out: Path | None = None,
           fixed_targets: Mapping[str, float] | None = None, reps: int = 2000, seed: int = 0,
           level: float = 0.95) -> tuple[Analysis, list[Path]]:
    """Analyse ``results/runs`` and write the report into ``out`` (default ``results/report``)."""
    if reps < 1:
        raise ReportError(f"--reps must be at least 1, got {reps}")
    results = Path(results)
    out = Path(out) if out is not None else results / "report"
    records = load_records(results)
    # targets fixed in sweep files (kept in sweeps/*/sweep.json); --target wins over them
    fixed_targets = {**sweep_targets(results), **(fixed_targets or {})}
    a = analyse(records, fixed_targets or None, reps=reps, seed=seed, level=level)
    out.mkdir(parents=True, exist_ok=True)
    written = write_tables(a, out, reps, seed, level)
    colours = _colours(list(records.summaries["label"]))
    written += [plot_accuracy(a, out / "accuracy_vs_time.png", colours),
                plot_speedups(a, out / "speedup.png", colours),
                plot_profile(a, out / "performance_profile.png", colours),
                plot_effective(a, out / "effective_frac.png", colours)]
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
