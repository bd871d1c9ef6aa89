"""``selbench demo``: the CPU demo comparison, ending in a speedup figure and table.

The demo is the sweep ``studies/demo-tiny-c/demo.yaml`` (one CPU pair at batch 32, plain GRPO with
uniform selection against DOTS, two seeds) run on this machine, then ``selbench report`` on its
records. ``--with-replay`` adds the same DOTS with rollout replay (two more runs): on CPU replay
saves little time (generation is about a quarter of a step) and in the dots-b32 study its best
setting (an 80-step cooldown and an 8-batch buffer) only tied DOTS alone, so the default demo
leaves it out (four runs, about 13 minutes on a fresh 2-core machine, 4.7 of them the one-time
model build).

1. build the pair's tiny model if it is not cached;
2. fit the pair's difficulty predictor if it is not cached, *while* the uniform runs go (they do
   not need it; one worker each, so the two cores stay busy);
3. run the rest of the sweep two runs at a time;
4. write the report (speedup with intervals, accuracy against on-clock time, Table 1, leaderboard)
   and print the table.

Everything is resumable: a rerun skips finished runs and the cached model and predictor, and
resumes interrupted runs from their checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.runs.paths import PROJECT_ROOT

# on a pair of the frozen CPU suite (the archived tiny-c-arith demo: studies/demo-tiny-c)
DEMO_SWEEP = str(PROJECT_ROOT / "configs" / "sweeps" / "demo.yaml")
# --quick: a smoke test of the whole path in a minute or two (numbers mean nothing)
QUICK_SET = ["train.steps=4", "eval.every=2", "eval.max_questions=64",
             "predictor.fit.policy_steps=[0,1,2]", "predictor.fit.questions=128",
             "predictor.fit.epochs=2"]


def _spec(quick: bool, results: Path, with_replay: bool = False):  # noqa: ANN202 (SweepSpec)
    from harness.protocol import sweep

    spec = sweep.load_spec(sweep.find_sweep_file(DEMO_SWEEP))
    if with_replay:
        # every selection strategy of the demo once more with replay on, as the same name + "+rr"
        extra = [dataclasses.replace(item, replay=True) for item in spec.strategies
                 if item.name != "uniform" and not item.replay]
        spec = dataclasses.replace(spec, strategies=[*spec.strategies, *extra])
    if quick:
        # its throwaway predictor lives with its results, never where real runs look for one
        spec = dataclasses.replace(spec, name=f"{spec.name}-quick", overrides=[
            *spec.overrides, *QUICK_SET, f"predictor.artifact={results / 'quick-predictor'}"])
    return spec


def _fit_command(pair: str, overrides: list[str]) -> list[str]:
    sets = [a for o in overrides if o.startswith(("predictor.", "train.threads"))
            for a in ("--set", o)]
    return [sys.executable, "-m", "harness.cli", "predictor", "fit", "--pair", pair, "--quiet",
            *sets]


def main(results: Path, quick: bool = False, workers: int = 2, with_replay: bool = False) -> Path:
    """Run the demo into ``results`` (runs under ``results/runs``); returns the report folder."""
    from harness.cli import UserError
    from harness.predictor.resources import artifact_dir
    from harness.protocol import report, sweep, sweep_exec
    from strategies.registry import get_entry

    results = Path(results).resolve()
    results.mkdir(parents=True, exist_ok=True)
    spec = _spec(quick, results, with_replay)
    plan = sweep.make_plan(spec, results)
    print(sweep.format_plan(plan), file=sys.stderr)
    sweep.write_metadata(plan)
    sweep_exec.prebuild_models(plan)
    unfinished = UserError(f"the demo did not finish every run: rerun `selbench demo` to resume "
                           f"(logs in {plan.meta_dir / 'logs'})")

    # predictors to fit (one per pair), and the runs that can go while they are fitted
    needs_fit: dict[str, list[str]] = {}
    for run in plan.todo():
        if get_entry(run.strategy).uses_predictor and not (
                artifact_dir(run.cfg) / "manifest.json").is_file():
            needs_fit.setdefault(run.pair, run.overrides)
    fits = []
    for pair, overrides in needs_fit.items():
        log = plan.meta_dir / "logs" / f"predictor-fit-{pair}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"fitting the difficulty predictor of {pair} (log: {log})", file=sys.stderr)
        handle = open(log, "ab")  # noqa: SIM115 (closed below)
        fits.append((pair, log, handle, subprocess.Popen(
            _fit_command(pair, overrides), stdout=handle, stderr=subprocess.STDOUT,
            preexec_fn=sweep_exec.die_with_parent)))
    if fits:
        free = dataclasses.replace(plan, runs=[r for r in plan.runs if r.pair not in needs_fit
                                               or not get_entry(r.strategy).uses_predictor])
        executor = sweep_exec.LocalExecutor(results, plan.meta_dir / "logs",
                                            max(1, workers - len(fits)))
        first = sweep_exec.schedule(free, executor)
        print(sweep_exec.format_outcomes(free, first), file=sys.stderr)
        if sweep_exec.exit_code(first) != 0:
            for _, _, handle, proc in fits:
                proc.terminate()
                proc.wait()
                handle.close()
            raise unfinished
        for pair, log, handle, proc in fits:
            code = proc.wait()
            handle.close()
            if code != 0:
                raise UserError(f"the predictor fit of {pair} failed (exit {code}): see {log}")
        plan = sweep.make_plan(spec, results)
    executor = sweep_exec.LocalExecutor(results, plan.meta_dir / "logs", workers)
    outcomes = sweep_exec.schedule(plan, executor)
    print(sweep_exec.format_outcomes(plan, outcomes), file=sys.stderr)
    if sweep_exec.exit_code(outcomes) != 0:
        raise unfinished

    out = results / "report"
    analysis, written = report.report(results, out)
    table1 = out / "table1.md"
    print(table1.read_text() if table1.is_file() else "")
    lines = verdict(analysis.pairs, level=analysis.level)
    (out / "verdict.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        print(line)
    for path in written:
        if path.suffix == ".png":
            print(f"figure: {path}")
    print(f"report: {out}")
    return out


def verdict(pairs: Any, level: float = 0.95, baseline: str = "uniform") -> list[str]:
    """One plain sentence per strategy: its speedup over uniform with the interval, and whether
    the difference is outside the seed-to-seed noise (the interval excludes 1) or not."""
    lines = []
    for _, row in pairs.iterrows():
        if row["label"] == baseline:
            continue
        name, pair, seeds = row["label"], row["pair"], int(row["seeds"])
        if math.isnan(row["speedup"]):
            lines.append(f"{name} on {pair}: no uniform reference time, no verdict.")
            continue
        lo, hi = row["speedup_lo"], row["speedup_hi"]
        head = (f"{name} on {pair}: {row['speedup']:.2f}x uniform's speed to uniform's final "
                f"accuracy [{level:.0%} interval {lo:.2f}, {hi:.2f}], {int(row['reached'])}/{seeds}"
                f" seeds reaching it.")
        if lo > 1:
            tail = "The interval lies above 1: faster, outside the seed-to-seed noise."
        elif hi < 1:
            tail = "The interval lies below 1: slower, outside the seed-to-seed noise."
        else:
            tail = (f"The interval includes 1: with {seeds} seeds this difference is within the "
                    "noise; more seeds (the sweep resumes) would tell.")
        lines.append(f"{head} {tail}")
    return lines
