"""``selbench suite check``: measure a suite's pairs against the regime criteria.

For each pair: a probe of the base policy (pass-rate spread over the pool at G samples, and the
gap between the exact held-out metric and a sampled one), then uniform runs of the pair's own
settings on several seeds (a sweep in ``--results``, so an interrupted check resumes), then one
row per pair of :mod:`harness.instrument.criteria`. Only uniform ever runs here: a suite is judged by its
baseline before any strategy is compared on it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import config
from harness.instrument import criteria
from harness.runs.records import RunRecord

PROBE_QUESTIONS = 2048
GAP_SAMPLES = 4


def _probe_path(results: Path, cfg: config.RunConfig) -> Path:
    # keyed by the run id of seed 0: a changed pair config gets a new probe
    return results / "probes" / f"{cfg.run_id()}.json"


def probe_pair(cfg: config.RunConfig, results: Path, progress: bool = True) -> dict[str, Any]:
    """The base policy's pass-rate spread on the pool, and exact vs sampled held-out accuracy
    (cached in ``results/probes``)."""
    path = _probe_path(results, cfg)
    if path.is_file():
        return json.loads(path.read_text())
    from harness.instrument import probe

    row = probe.probe(cfg, max_questions=PROBE_QUESTIONS, progress=progress)
    if cfg.eval.metric == "exact":
        sampled = dataclasses.replace(
            cfg, eval=dataclasses.replace(cfg.eval, metric="sampled", samples=GAP_SAMPLES))
        row["sampled_eval_accuracy"] = probe.held_out_accuracy(sampled)
        row["exact_gap"] = row["sampled_eval_accuracy"] - row["eval_accuracy"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=2) + "\n")
    return row


def uniform_run(run_dir: Path) -> criteria.UniformRun:
    rec = RunRecord(run_dir)
    cfg = config.load_resolved(rec.config_path)
    curve = pd.DataFrame(rec.read_eval())
    m = pd.DataFrame(rec.read_metrics(), columns=["step", "metric", "value"])
    w = m.pivot_table(index="step", columns="metric", values="value")
    summary = json.loads(rec.summary_path.read_text())
    samples = w["cost/samples"].sum()
    return criteria.UniformRun(
        seed=cfg.seed, curve=curve,
        generate_share=float((w["time/generate"] / w["time/step"]).mean()),
        train_minutes=float(summary["clock_s"]) / 60, eval_minutes=float(summary["eval_s"]) / 60,
        threads=cfg.train.threads, steps=int(summary["steps"]),
        response_tokens=float(w["cost/tokens_generated"].sum() / max(1.0, samples)))


def weights_status(cfg: config.RunConfig) -> dict[str, Any]:
    from harness.instrument import policy

    try:
        shipped = policy.shipped_dir(cfg.model)
    except policy.ShippedWeightsError:
        return {"shipped": True, "checksum_ok": False}
    return {"shipped": shipped is not None, "checksum_ok": shipped is not None}


def tier_lengths(cfg: config.RunConfig) -> dict[str, float]:
    """Mean reference-response length in characters per tier, in the pool's tier order."""
    if cfg.model.response != "trace":
        return {}
    from harness.instrument import policy
    from harness.instrument.tasks import load_pool

    pool = load_pool(cfg.task, cfg.pair)
    out: dict[str, list[int]] = {}
    for q in pool.eval:
        out.setdefault(str(q.meta.get("tier", "")), []).append(
            len(policy.reference_response(cfg.model, q)))
    return {t: float(np.mean(v)) for t, v in out.items()}


def check(pairs: Sequence[str], seeds: Sequence[int], results: Path, workers: int | None,
          progress: bool = True, config_dir: Path | None = None) -> list[dict[str, Any]]:
    from harness.protocol import sweep, sweep_exec

    spec = sweep.SweepSpec(
        name="suite-check", path=Path("<suite check>"), description="uniform on each pair",
        pairs=list(pairs), strategies=[sweep.StrategyItem(name="uniform")], seeds=list(seeds),
        overrides=["train.threads=1"], targets={}, text="")
    plan = sweep.make_plan(spec, results, config_dir)
    print(sweep.format_plan(plan), file=sys.stderr)
    if plan.todo():
        sweep.write_metadata(plan)
        sweep_exec.prebuild_models(plan, progress=progress)
        executor = sweep_exec.make_executor("local", plan, None, workers)
        outcomes = sweep_exec.schedule(plan, executor, progress=progress)
        print(sweep_exec.format_outcomes(plan, outcomes), file=sys.stderr)
        if sweep_exec.exit_code(outcomes):
            raise sweep.SweepError("some uniform runs did not finish (see their logs above); "
                                   "rerun the same command to resume them")
    rows = []
    for pair in pairs:
        runs = [r for r in plan.runs if r.pair == pair]
        cfg = runs[0].cfg
        probe = probe_pair(cfg, results, progress=progress)
        uni = [uniform_run(results / "runs" / r.run_id) for r in runs]
        n_eval = cfg.eval.max_questions or cfg.task.n_eval
        rows.append(criteria.pair_row(
            pair, probe, uni, metric=cfg.eval.metric, n_eval=n_eval,
            eval_samples=cfg.eval.samples, weights=weights_status(cfg),
            lengths_by_tier=tier_lengths(cfg)))
    return rows


def write(rows: list[dict[str, Any]], results: Path) -> Path:
    out = results / "criteria.md"
    out.write_text(criteria.format_table(rows))
    flat = [{k: ("/".join(str(s) for s in v) if isinstance(v, list) else v)
             for k, v in r.items()} for r in rows]
    pd.DataFrame(flat).to_csv(results / "criteria.csv", index=False)
    return out
