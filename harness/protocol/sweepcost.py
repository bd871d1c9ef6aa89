"""The cost of a sweep in core-hours, from the measured rate of its finished runs.

:func:`estimate_cost` is the ``cost:`` line of the plan :func:`harness.protocol.sweep.format_plan`
prints: what the finished runs took, and what the runs left will take at the rate of finished runs
of the same pair and strategy.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.protocol.sweep import FINISHED, Plan


def _core_seconds_per_step(run_dir: Path) -> float | None:
    """A finished run's measured cost per step in core-seconds (on-clock training plus
    evaluation, times its torch threads), from its summary; None when unreadable."""
    try:
        s = json.loads((run_dir / "summary.json").read_text())
        threads = yaml_threads(run_dir)
        return (float(s["clock_s"]) + float(s.get("eval_s", 0.0))) * threads / max(1, int(s["steps"]))
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None


def yaml_threads(run_dir: Path) -> int:
    """``train.threads`` of a run folder's config (0, torch's default, counts as 1 core: the
    runs a sweep estimates use one thread each)."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    return max(1, int((cfg.get("train") or {}).get("threads") or 1))


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _finished_rates(plan: Plan) -> tuple[dict[tuple[str, str], list[float]], float, int]:
    """Per (pair, label): finished runs' core-seconds per step; their total cost; their count."""
    rates: dict[tuple[str, str], list[float]] = {}
    done_s = 0.0
    n_done = 0
    for run in plan.runs:
        if run.state != FINISHED:
            continue
        rate = _core_seconds_per_step(plan.results_root / "runs" / run.run_id)
        if rate is None:
            continue
        rates.setdefault((run.pair, run.label), []).append(rate)
        done_s += rate * run.steps
        n_done += 1
    return rates, done_s, n_done


def prices(plan: Plan) -> tuple[dict[str, float], list[int]]:
    """Core-seconds per step of every unfinished run (by run id), from finished runs of its
    pair and strategy; with none, of its strategy on other pairs; then of its pair; then of
    any finished run; and how many runs each of those four tiers priced. Empty when no run
    has finished."""
    rates, _, _ = _finished_rates(plan)
    by_label: dict[str, list[float]] = {}
    by_pair: dict[str, list[float]] = {}
    for (pair, label), sample in rates.items():
        by_label.setdefault(label, []).extend(sample)
        by_pair.setdefault(pair, []).extend(sample)
    every = [r for sample in rates.values() for r in sample]
    out: dict[str, float] = {}
    tiers = [0, 0, 0, 0]
    for run in plan.runs:
        if run.state == FINISHED:
            continue
        for tier, sample in enumerate((rates.get((run.pair, run.label)), by_label.get(run.label),
                                       by_pair.get(run.pair), every)):
            if sample:
                out[run.run_id] = _median(sample)
                tiers[tier] += 1
                break
    return out, tiers


def estimate_cost(plan: Plan) -> str:
    """One line: what the finished runs cost in core-hours, and what the rest will cost at the
    measured per-step rate of finished runs (a sample of the sweep, measured on this machine;
    wall-clock on a shared machine moves by tens of percent), priced as :func:`prices` says;
    the line says how many runs each tier priced."""
    _, done_s, n_done = _finished_rates(plan)
    left = [r for r in plan.runs if r.state != FINISHED]
    if not n_done:
        return ""
    line = f"cost: {n_done} finished runs took {done_s / 3600:.1f} core-hours"
    if not left:
        return line
    rate, tiers = prices(plan)
    est_s = sum(rate[r.run_id] * (r.steps - r.steps_logged) for r in left)
    line += (f"; the {len(left)} left need about {est_s / 3600:.1f} core-hours "
             f"({tiers[0]} priced by finished runs of the same pair and strategy")
    extrapolated = [f"{n} by {what}" for n, what in zip(
        tiers[1:], ("the strategy on other pairs", "other strategies on the pair",
                    "all finished runs"), strict=True) if n]
    return line + (", " + ", ".join(extrapolated) if extrapolated else "") + ")"


def hours_left(rate: dict[str, float], steps_left: dict[str, int], slots: int) -> float | None:
    """Wall-clock hours the runs left need at ``slots`` runs at once, each on its own core:
    their priced core-seconds over the slots (None when some run has no price)."""
    if any(run_id not in rate for run_id in steps_left):
        return None
    return sum(rate[r] * n for r, n in steps_left.items()) / max(1, slots) / 3600


# the on-clock phases of a step, as metrics.csv logs them (time/step is their sum); a strategy's
# extra rollouts (DOTS's reference set, SPEED's screening) run inside select
PHASES = ("select", "generate", "reward", "logprobs", "update")


def phase_shares(run_dirs: list[Path]) -> str:
    """One line: where the time of these runs went, per on-clock phase as a share of their steps'
    time, and evaluation (off the clock) relative to it. Empty when no run has records."""
    from harness.runs.records import RunRecord

    totals = dict.fromkeys((*PHASES, "extra_rollouts", "step"), 0.0)
    eval_s = 0.0
    for run_dir in run_dirs:
        try:
            rows = RunRecord(run_dir).read_metrics()
            eval_s += float(json.loads((run_dir / "summary.json").read_text()).get("eval_s", 0.0))
        except (FileNotFoundError, ValueError):
            continue
        for _, key, value in rows:
            name = key.removeprefix("time/")
            if name != key and name in totals:
                totals[name] += value
    if totals["step"] <= 0:
        return ""
    shares = " | ".join(f"{p} {totals[p] / totals['step']:.0%}" for p in PHASES
                        if totals[p] / totals["step"] >= 0.005)
    if totals["extra_rollouts"] / totals["step"] >= 0.005:
        shares += f" (extra rollouts {totals['extra_rollouts'] / totals['step']:.0%}, in select)"
    return (f"time per phase ({len(run_dirs)} runs, {totals['step'] / 3600:.2f} h of steps): "
            f"{shares}; evaluation, off the clock, +{eval_s / totals['step']:.0%}")
