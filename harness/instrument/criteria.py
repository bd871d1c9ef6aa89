"""The CPU suite's regime criteria, computed from uniform runs and a probe. Torch-free.

A pair is a measuring instrument only if its baseline rises far above evaluation noise, the
same way on every seed, from base weights every machine shares. Each criterion here is read off
records that ``selbench suite check`` writes (a probe of the base policy and uniform runs of
the pair's own settings); the thresholds are the suite's specification (issue 14):

1. spread: base mean pass rate in [0.2, 0.6] at G = 8, >= 20% of the pool never solved,
   >= 10% always solved;
2. room: uniform raises held-out accuracy by >= 0.15 on every seed within its budget;
3. noise: standard error of one evaluation <= 0.005, the smallest rise >= 10 of them, and the
   seed-to-seed spread (max - min) of uniform's steps to its own median final accuracy (the
   report's target: trailing-smoothed, first crossing) <= 15% of the median;
4. portable base weights: shipped, checksum matching, step-0 accuracy equal on every seed;
5. closer to real RLVR: worked-solution responses whose length grows with difficulty; the share
   of step time spent generating is reported (the paper: about half);
6. cost: a 150-step uniform run takes <= 4 CPU-minutes of training on one thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.protocol import stats

SPREAD_MEAN = (0.2, 0.6)
MIN_NEVER, MIN_ALWAYS = 0.20, 0.10
MIN_RISE = 0.15
MAX_SE = 0.005
MIN_RISE_IN_SE = 10.0
MAX_STEP_SPREAD = 0.15
MAX_TRAIN_MINUTES = 4.0
BUDGET_STEPS = 150


@dataclass
class UniformRun:
    """What the criteria need of one uniform run."""

    seed: int
    curve: pd.DataFrame  # eval rows: step, clock_s, tokens, samples, accuracy
    generate_share: float  # mean over steps of time/generate / time/step
    train_minutes: float  # on-clock seconds of the whole run / 60
    eval_minutes: float
    threads: int
    steps: int
    response_tokens: float  # mean generated tokens per sample


def se_of_evaluation(metric: str, accuracy: float, n_questions: int, samples: int) -> float:
    """Sampling standard error of one evaluation: 0 for the exact metric (a teacher-forced
    probability has no sampling noise); for a sampled pass rate over ``n_questions`` x
    ``samples`` draws the binomial bound sqrt(a (1 - a) / (n s)), which per-question variation
    can only lower."""
    if metric == "exact":
        return 0.0
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / max(1, n_questions * samples))


def steps_to_own_target(runs: Sequence[UniformRun]) -> tuple[float, list[float]]:
    """(target, steps to it per seed): the target is the median over seeds of the smoothed final
    accuracy, exactly as ``selbench report`` sets it; a seed that never reaches it is ``inf``."""
    finals = [stats.smooth(r.curve.sort_values("step")["accuracy"].to_numpy())[-1] for r in runs]
    target = float(np.median(finals))
    return target, [stats.first_crossing(r.curve, target).steps for r in runs]


def step_spread(steps: Sequence[float]) -> float:
    """(max - min) / median of the steps to target; ``inf`` when a seed never gets there."""
    s = np.asarray(steps, dtype=float)
    if len(s) == 0 or np.isinf(s).any():
        return math.inf
    med = float(np.median(s))
    return float((s.max() - s.min()) / med) if med > 0 else math.inf


def pair_row(pair: str, probe: Mapping[str, Any], runs: Sequence[UniformRun], *,
             metric: str, n_eval: int, eval_samples: int, weights: Mapping[str, Any],
             lengths_by_tier: Mapping[str, float] | None = None) -> dict[str, Any]:
    """One row of the criteria table: the measured values and a pass flag per criterion."""
    curves = [r.curve.sort_values("step")["accuracy"].to_numpy() for r in runs]
    step0 = [float(c[0]) for c in curves]
    finals = [float(c[-1]) for c in curves]
    rises = [f - s for s, f in zip(step0, finals, strict=True)]
    se = max(se_of_evaluation(metric, a, n_eval, eval_samples) for a in step0 + finals)
    target, steps = steps_to_own_target(runs)
    spread = step_spread(steps)
    within_budget = all(r.steps <= BUDGET_STEPS for r in runs)
    one_thread = all(r.threads == 1 for r in runs)
    train_min = max(r.train_minutes for r in runs)
    grows = length_grows_with_difficulty(lengths_by_tier or {}, probe.get("tier_pass_rate", {}))
    row: dict[str, Any] = {
        "pair": pair,
        "seeds": len(runs),
        # 1. spread
        "mean_pass": probe["mean_pass_rate"], "never": probe["never_solved"],
        "always": probe["always_solved"],
        "spread_ok": (SPREAD_MEAN[0] <= probe["mean_pass_rate"] <= SPREAD_MEAN[1]
                      and probe["never_solved"] >= MIN_NEVER
                      and probe["always_solved"] >= MIN_ALWAYS),
        # 2. room
        "step0": float(np.mean(step0)), "final": float(np.mean(finals)),
        "min_rise": min(rises), "room_ok": within_budget and min(rises) >= MIN_RISE,
        # 3. noise
        "metric": metric, "se": se,
        "rise_in_se": math.inf if se == 0 else min(rises) / se,
        "target": target, "steps_to_target": steps, "step_spread": spread,
        "noise_ok": (se <= MAX_SE and (se == 0 or min(rises) / se >= MIN_RISE_IN_SE)
                     and spread <= MAX_STEP_SPREAD),
        # 4. portability
        "weights_shipped": bool(weights.get("shipped")),
        "checksum_ok": bool(weights.get("checksum_ok")),
        "step0_equal": max(step0) - min(step0) < 1e-9,
        "portable_ok": (bool(weights.get("shipped")) and bool(weights.get("checksum_ok"))
                        and max(step0) - min(step0) < 1e-9),
        # 5. realism
        "response_tokens": float(np.mean([r.response_tokens for r in runs])),
        "length_grows": grows,
        "generate_share": float(np.mean([r.generate_share for r in runs])),
        "exact_gap": probe.get("exact_gap"),
        # 6. cost
        "train_minutes": train_min, "eval_minutes": max(r.eval_minutes for r in runs),
        "cost_ok": one_thread and train_min * BUDGET_STEPS / max(r.steps for r in runs)
        <= MAX_TRAIN_MINUTES,
    }
    row["realism_ok"] = row["length_grows"]
    row["all_ok"] = all(row[k] for k in ("spread_ok", "room_ok", "noise_ok", "portable_ok",
                                         "realism_ok", "cost_ok"))
    return row


def length_grows_with_difficulty(lengths: Mapping[str, float],
                                 pass_rates: Mapping[str, float]) -> bool:
    """Do longer reference responses go with harder questions? True when, over the tiers the
    base policy solves at all, the rank correlation between a tier's mean reference length and
    its base pass rate is at most -0.5 (tiers it never solves, such as untaught two-digit
    questions, say nothing about how length follows difficulty)."""
    tiers = [t for t in lengths if pass_rates.get(t, 0.0) > 0.02]
    if len(tiers) < 3:
        return False
    length = pd.Series([lengths[t] for t in tiers]).rank()
    solved = pd.Series([pass_rates[t] for t in tiers]).rank()
    return bool(length.corr(solved) <= -0.5)


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _steps(steps: Sequence[float]) -> str:
    return "/".join("never" if math.isinf(s) else f"{s:.0f}" for s in steps)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The criteria table in markdown, one row per pair; every failed criterion in bold."""
    head = ("| pair | seeds | 1. spread: mean / never / always | 2. room: step 0 -> final, "
            "min rise | 3. noise: SE, steps to target (spread) | 4. portable | "
            "5. tokens per response, generate share | 6. train min / 150 steps (eval) | all |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        spread = "inf" if math.isinf(r["step_spread"]) else f"{r['step_spread']:.0%}"
        gap = "" if r.get("exact_gap") is None else f", exact gap {r['exact_gap']:+.3f}"
        lines.append(
            f"| {r['pair']} | {r['seeds']} "
            f"| {r['mean_pass']:.2f} / {r['never']:.0%} / {r['always']:.0%} {_mark(r['spread_ok'])} "
            f"| {r['step0']:.3f} -> {r['final']:.3f}, {r['min_rise']:+.3f} {_mark(r['room_ok'])} "
            f"| {r['se']:.4f} ({r['metric']}{gap}), {_steps(r['steps_to_target'])} "
            f"({spread}) {_mark(r['noise_ok'])} "
            f"| {_mark(r['portable_ok'])} "
            f"| {r['response_tokens']:.1f}, {r['generate_share']:.0%} {_mark(r['realism_ok'])} "
            f"| {r['train_minutes']:.1f} ({r['eval_minutes']:.1f}) {_mark(r['cost_ok'])} "
            f"| {_mark(r['all_ok'])} |")
    return "\n".join(lines) + "\n"
