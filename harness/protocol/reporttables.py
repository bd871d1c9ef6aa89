"""The report's markdown and CSV tables (``leaderboard.md``, ``table1.md``, ``tiers.md``, ...),
written from an :class:`harness.protocol.report.Analysis`. Torch-free; the numbers are computed in
:mod:`harness.protocol.report` and :mod:`harness.protocol.stats`, only laid out here."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness.protocol import claims, stats
from harness.protocol.report import CLOCK_NAMES, MACHINE_TOLERANCE
from harness.protocol.reportrecords import OFF_CLOCK_SUFFIX, Records

if TYPE_CHECKING:
    from harness.protocol.report import Analysis


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


def _provenance(summaries: pd.DataFrame, recheck_file: Path | None = None) -> str:
    # an oracle run's off-clock twin is the same run read twice: count each run once
    summaries = summaries[~summaries["run_id"].str.endswith(OFF_CLOCK_SUFFIX.strip())]
    commits = summaries.groupby("git_commit").size()
    lines = ["## Provenance", "",
             "- runs: " + f"{len(summaries)} finished",
             "- git commits: " + ", ".join(f"`{c}` ({n} run{'s' if n > 1 else ''})"
                                           for c, n in commits.items()),
             f"- run dates: {min(summaries['date'])} to {max(summaries['date'])}"]
    if recheck_file is not None and recheck_file.exists():
        from harness.protocol.recheck import provenance_line

        lines.append(provenance_line(json.loads(recheck_file.read_text()), set(commits.index)))
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
             f"- smoothed accuracy: trailing mean of the last {stats.SMOOTH_WINDOW} evaluations",
             "- **held** time-to-target (ranks): the first evaluation after which the smoothed "
             "accuracy stays at or above the pair's target to the end of the run; **first** "
             "crossing (MLPerf's rule, reported beside it): the first evaluation at or above "
             "it. Held ranks because a curve that touches the target and falls back has not "
             "reached it: first crossing would credit a lucky stretch, and a strategy that "
             "peaks early and degrades would rank above one that gets there and stays. A run "
             "that never holds the target is censored (infinite time, speedup 0), never dropped",
             "- **wall clock**: on-clock seconds (evaluation excluded), the paper's metric; "
             "**cost clock**: each step's counted work (generated tokens and samples, reference "
             "and extra rollouts included; trained tokens; steps; selection) priced at per-unit "
             "seconds from a calibration (below), so it does not move with how busy the shared "
             "machine was. "
             + (f"The ranking uses the **{CLOCK_NAMES[a.rank_clock]}**"
                + (": wall-clock on a shared CPU measures the neighbours as well as the "
                   "strategy" if a.rank_clock == "cost" else
                   " (some records lack per-step cost counts)")),
             "- median over seeds: the earliest time by which at least half of the seeds reached "
             "the target; a pair counts as reached when that median is finite",
             "- speedup: uniform's median time-to-target / the strategy's; IQM: interquartile "
             "mean of the pairs' speedups, bootstrapped within pairs over both arms' seeds; "
             "with a single "
             "pair the aggregate is that pair's speedup and bootstrap interval (the stratified "
             "bootstrap of one pair holds the reference fixed and can collapse to a point); "
             "uniform is the reference, 1.00 by definition; PoI: probability that a run of the "
             "strategy beats a run of uniform on the same pair, averaged over pairs",
             f"- intervals: {pct} percentile bootstrap over seeds of both arms (per pair) and "
             f"stratified bootstrap (across pairs), {reps} resamples, seed {seed}",
             "- machine speed: median of each run's matmul probe at its evaluations "
             f"(`time/machine_gflops`); arms more than {MACHINE_TOLERANCE:.0%} apart are flagged",
             "- cost: mean per run of samples generated (including reference / extra "
             "rollouts) and tokens (generated + trained)", ""]
    lines += _calibration_lines(a) + ["", "Targets:", ""]
    rows = [[p, f"{t:.4f}", s] for p, t, s in a.targets.itertuples(index=False)]
    return "\n".join(lines) + "\n" + _md_table(["pair", "target accuracy", "source"], rows)


def _calibration_lines(a: Analysis) -> list[str]:
    cal = a.calibration
    if cal is None:
        return ["Cost clock: none (no record has per-step cost counts)."]
    u = cal.units
    return [f"Cost clock calibration ({a.calibration_source}; {len(cal.runs)} runs, {cal.steps} "
            f"steps, machine probe {_f(cal.machine_gflops, '{:.1f}')} GFLOP/s): "
            f"{u['gen_token'] * 1e6:.3g} µs per generated token, {u['gen_sample'] * 1e3:.3g} ms "
            f"per generated sample, {u['train_token'] * 1e6:.3g} µs per trained token, "
            f"{u['train_step'] * 1e3:.3g} ms per step; selection per step: "
            + ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in cal.select_s.items())
            + f". Fit R²: rollout {_f(cal.r2.get('rollout', math.nan))}, training "
            f"{_f(cal.r2.get('training', math.nan))}. Method: {cal.method}."
            + (f" Note: {cal.note}." if cal.note else "")]


def _rank_cell(r: pd.Series) -> str:
    if bool(r["reference"]):
        return "ref"
    return str(r["rank"]) if not pd.isna(r["rank"]) else "-"


def _speedup_cell(r: pd.Series) -> str:
    if bool(r["reference"]):
        return "1.00 (reference)"
    cell = _ci(r["iqm_speedup"], r["iqm_lo"], r["iqm_hi"])
    return cell + (" (1 pair)" if r["method"] == "pair" else "")


def _pair_md(a: Analysis) -> str:
    clock = CLOCK_NAMES[a.rank_clock]
    rows = []
    for _, r in a.pairs.iterrows():
        both = [f"{_f(r[f'median_{m}_s'], '{:.1f}')} / {_f(r[f'median_{m}_first_s'], '{:.1f}')}"
                for m in ("cost", "time")]
        rows.append([r["pair"], r["label"], str(r["seeds"]),
                     f"{r['reached']} / {r['reached_first']}", *both,
                     f"{_f(r['median_steps'], '{:.0f}')} / {_f(r['median_steps_first'], '{:.0f}')}",
                     f"{_f(r['median_tokens'], '{:,.0f}')} / "
                     f"{_f(r['median_tokens_first'], '{:,.0f}')}",
                     _ci(r["speedup"], r["speedup_lo"], r["speedup_hi"]),
                     _ci(r["speedup_first"], r["speedup_first_lo"], r["speedup_first_hi"]),
                     _ci(r.get("speedup_wall", math.nan), r.get("speedup_wall_lo", math.nan),
                         r.get("speedup_wall_hi", math.nan)), r["note"]])
    return _md_table(["pair", "strategy", "seeds", "seeds reaching (held / first)",
                      "median cost-clock s (held / first)", "median wall s (held / first)",
                      "median steps (held / first)", "median tokens (held / first)",
                      f"speedup, held, {clock} [CI]", f"speedup, first, {clock} [CI]",
                      "speedup, held, wall clock [CI]", "note"], rows)


def write_tables(a: Analysis, out: Path, reps: int, seed: int, level: float,
                 recheck_file: Path | None = None) -> list[Path]:
    written = []
    board = a.leaderboard
    path = out / "leaderboard.csv"
    board.to_csv(path, index=False)
    written.append(path)
    clock = CLOCK_NAMES[a.rank_clock]
    rows = [[_rank_cell(r), r["label"], _speedup_cell(r),
             "1.00 (reference)" if r["reference"] else _ci(r["iqm_wall"], r["iqm_wall_lo"],
                                                           r["iqm_wall_hi"]),
             "-" if r["reference"] else _ci(r["poi"], r["poi_lo"], r["poi_hi"]),
             r["pairs_reached"], _f(r["median_cost_to_target_s"], "{:.1f}"),
             _f(r["median_time_to_target_s"], "{:.1f}"), _f(r["machine_gflops"], "{:.1f}"),
             f"{r['samples_mean']:,.0f}", f"{r['reference_samples_mean']:,.0f}",
             f"{r['tokens_mean']:,.0f}", r["git_commits"]]
            for _, r in board.iterrows()]
    figures = ["accuracy_vs_time.png", "accuracy_vs_cost.png", "speedup.png",
               "runs_dotplot.png", *(["performance_profile.png"] if a.profiles else []),
               "effective_frac.png"]
    md = ["# Leaderboard: time to target accuracy", "",
          f"Strategies ranked by their speedup over uniform GRPO in **{clock}** time until "
          "they **hold** the target accuracy (the smoothed curve stays at or above it to the "
          "end of the run), aggregated across pairs as the interquartile mean (IQM) of the "
          "pairs' speedups (each uniform's median over the strategy's). Uniform is the reference (1.00 by definition). The wall-clock column is "
          "the paper's metric on the same rule; the per-pair table gives first crossings too.",
          "", _md_table(["rank", "strategy", f"speedup, {clock} [{level:.0%} CI]",
                         "speedup, wall clock [CI]", "P(improve over uniform) [CI]",
                         "pairs reaching target", "median cost-clock s to target (over pairs)",
                         "median wall s to target (over pairs)", "machine GFLOP/s (median)",
                         "samples / run", "of which reference", "tokens / run",
                         "git commit(s)"], rows),
          "## Per pair", "", _pair_md(a)]
    if not a.claims.empty:
        md += ["## Published claims against this suite", "", claims.markdown(a.claims, clock)]
    md += ["Figures: " + ", ".join(f"`{f}`" for f in figures) + ".", ""]
    if a.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in a.notes] + [""]
    md += [_definitions(a, reps, seed, level), _provenance(a.records.summaries, recheck_file)]
    path = out / "leaderboard.md"
    path.write_text("\n".join(md))
    written.append(path)

    if not a.claims.empty:
        path = out / "claims.csv"
        a.claims.to_csv(path, index=False)
        written.append(path)

    t1 = a.pairs[["pair", "label", "seeds", "reached", "median_steps", "steps_saved_pct",
                  "per_step_time_saved_pct", "total_time_saved_pct", "total_cost_saved_pct",
                  "speedup", "speedup_lo", "speedup_hi", "effective_frac",
                  "effective_vs_uniform", "note"]]
    path = out / "table1.csv"
    t1.to_csv(path, index=False)
    written.append(path)
    body = [[r["pair"], r["label"], _f(r["median_steps"], "{:.0f}"),
             _f(r["steps_saved_pct"], "{:.2f}%"), _f(r["per_step_time_saved_pct"], "{:.2f}%"),
             _f(r["total_time_saved_pct"], "{:.2f}%"), _f(r["total_cost_saved_pct"], "{:.2f}%"),
             _ci(r["speedup"], r["speedup_lo"], r["speedup_hi"]),
             f"{_f(r['effective_frac'])} ({_f(r['effective_vs_uniform'], '{:.2f}x')})",
             f"{int(r['reached'])}/{int(r['seeds'])}"]
            for _, r in t1.iterrows() if r["label"] != stats.BASELINE]
    path = out / "table1.md"
    path.write_text("# Time saved relative to uniform (as the paper's Table 1)\n\n"
                    "Steps saved = 1 - median steps-to-target / uniform's; per-step time saved = "
                    "1 - mean on-clock seconds per step / uniform's; total time saved = 1 - "
                    "median time-to-target / uniform's, on the wall clock (the paper's) and on "
                    "the cost clock; all to the held target (see leaderboard.md). n/a: not "
                    "reached, or no uniform reference (see leaderboard.md notes). Effective "
                    "questions: mean fraction of the selected prompts whose group had non-zero "
                    "reward variance (x uniform's).\n\n"
                    + _md_table(["pair", "strategy", "steps to target", "steps saved",
                                 "per-step time saved", "total time saved (wall)",
                                 "total time saved (cost clock)", f"speedup, {clock} [CI]",
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


# ---------------------------------------------------------------------------- entry point
