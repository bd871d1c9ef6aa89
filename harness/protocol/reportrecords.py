"""The report's input: the run records under ``RESULTS_DIR/runs/*/``, read into data frames.
Torch-free.

Finished runs are those with ``summary.json``; unfinished ones are only counted. An oracle run
whose difficulty-estimation rollouts cost time is loaded twice: as run, and as its off-clock
twin with that time taken off the clock. :mod:`harness.protocol.report` analyses what
:func:`load_records` returns.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.protocol import costclock, stats
from harness.runs.records import RunRecord

EFFECTIVE_KEY = "train/effective_frac"


# Strategies whose extra rollouts only estimate difficulty (no training signal): reported twice,
# as run (rollouts on the clock, a real pre-filtering method) and with that time taken off the
# clock (an upper bound for any predictor of the same selections)
OFF_CLOCK_STRATEGIES = ("oracle",)
OFF_CLOCK_SUFFIX = " (off clock)"


# per-step share of the selected prompts trained on before in the run: a method that acts only on
# prompts it has seen (GRESO's zero-variance filter) does nothing in a run where it stays 0
REPEAT_KEY = "select/repeat_frac"
TIER_COLUMNS = [*stats.EVAL_KEYS, "step", "tier", "accuracy"]
TIER_SHARE_PREFIX = "train/tier_share/"  # per-step share of the trained groups from each tier
SHARE_COLUMNS = [*stats.EVAL_KEYS, "tier", "share"]


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
    # run_id -> its per-step phase times and work counts (the cost clock's input)
    steps: dict[str, StepRecord] = field(default_factory=dict)


@dataclass
class StepRecord:
    label: str
    table: pd.DataFrame  # costclock.step_table: empty for records without cost/ counts
    machine_gflops: float
    off_clock: bool = False  # the off-clock twin of an oracle run: its extra rollouts removed


def _label(summary: Mapping) -> str:
    # records written before labels existed: the strategy name, "+rr" when replay was on
    if summary.get("label"):
        return str(summary["label"])
    return str(summary["strategy"]) + ("+rr" if summary.get("replay") else "")


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def load_records(results: Path, only: Collection[str] | None = None) -> Records:
    """Every run folder under ``results/runs`` (``only``: just the folders so named)."""
    runs_dir = Path(results) / "runs"
    if not runs_dir.is_dir():
        raise ReportError(f"no run records: {runs_dir} does not exist (write runs there with "
                          f"`selbench run ... --results {results}`)")
    summaries, evals, effective, unfinished, tiers, shares = [], [], [], [], [], []
    steps: dict[str, StepRecord] = {}
    for run_dir in sorted(p for p in runs_dir.iterdir()
                          if p.is_dir() and (only is None or p.name in only)):
        rec = RunRecord(run_dir)
        if not rec.finished:
            unfinished.append(run_dir.name)
            continue
        s = json.loads(rec.summary_path.read_text())
        key = {"run_id": s.get("run_id", run_dir.name), "pair": s["pair"], "label": _label(s),
               "seed": int(s["seed"])}
        metrics = rec.read_metrics()
        repeats = [value for _, name, value in metrics if name == REPEAT_KEY]
        summaries.append({**key, "strategy": s["strategy"], "steps": int(s["steps"]),
                          "clock_s": float(s["clock_s"]), "samples": float(s["samples"]),
                          "tokens": float(s["tokens_generated"]) + float(s["tokens_trained"]),
                          "reference_samples": float(s.get("reference_samples", 0)),
                          "initial_accuracy": float(s["initial_accuracy"]),
                          "final_accuracy": float(s["final_accuracy"]),
                          "git_commit": s.get("git_commit", "unknown"),
                          "date": s.get("date", ""),
                          "machine_gflops": _float_or_nan(s.get("machine_gflops")),
                          "versions": json.dumps(s.get("versions", {}), sort_keys=True),
                          # nan: recorded before the metric existed
                          "max_repeat_frac": max(repeats) if repeats else math.nan})
        curve = rec.read_eval()
        evals.extend({**key, **row} for row in curve)
        steps[key["run_id"]] = StepRecord(key["label"], costclock.step_table(metrics),
                                          _float_or_nan(s.get("machine_gflops")))
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
            steps[off["run_id"]] = dataclasses.replace(steps[key["run_id"]], off_clock=True)
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
                   pd.DataFrame(shares, columns=SHARE_COLUMNS), steps)
