"""How hard is a pair's pool for its base policy? Pass rates over G samples per question.

The CPU suite is tuned with this: a useful pool has a mean pass rate between 0.2 and 0.6, at
least 20% of questions never solved and at least 10% always solved (the spread real math RL
has, where uniform selection wastes a large share of its groups).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.config import RunConfig
from harness.runs.progress import bar


def probe(cfg: RunConfig, max_questions: int = 512, progress: bool = True) -> dict[str, Any]:
    from harness.core.sampler import Sampler

    sampler = Sampler.load(cfg, progress=progress)
    n = min(max_questions, len(sampler.pool.train))
    g = cfg.train.group_size
    chunk = max(1, cfg.eval.batch_size // g)
    rates = []
    shown = bar(n, disable=not progress, desc=f"probe {cfg.pair}", unit="question")
    for start in range(0, n, chunk):
        idx = list(range(start, min(n, start + chunk)))
        _, rewards = sampler.rollout_and_score(idx, g, step=0, salt=3)
        rates.append(rewards.mean(axis=1))
        shown.update(len(idx))
    shown.close()
    acc, _ = sampler.evaluate()
    tiers = [str(q.meta.get("tier", "")) for q in sampler.pool.train[:n]]
    p = np.concatenate(rates)
    by_tier = {t: float(p[[i for i, x in enumerate(tiers) if x == t]].mean()) for t in sorted(set(tiers))}
    return {
        "pair": cfg.pair,
        "questions": int(n),
        "group_size": g,
        "mean_pass_rate": float(p.mean()),
        "never_solved": float(np.mean(p == 0)),
        "always_solved": float(np.mean(p == 1)),
        "informative": float(np.mean((p > 0) & (p < 1))),
        "eval_accuracy": acc,
        "tier_pass_rate": by_tier,
    }


def held_out_accuracy(cfg: RunConfig) -> float:
    """The base policy's held-out accuracy under ``cfg.eval`` (e.g. a sampled pass rate to set
    beside the exact metric)."""
    from harness.core.sampler import Sampler

    acc, _ = Sampler.load(cfg, progress=False).evaluate()
    return acc


def format_row(row: dict[str, Any]) -> str:
    return (f"{row['pair']}: mean pass rate {row['mean_pass_rate']:.3f}, never solved "
            f"{row['never_solved']:.1%}, always solved {row['always_solved']:.1%}, informative "
            f"{row['informative']:.1%} (G={row['group_size']}, {row['questions']} questions); "
            f"held-out accuracy {row['eval_accuracy']:.3f}; by tier "
            + ", ".join(f"{k} {v:.2f}" for k, v in row["tier_pass_rate"].items()))
