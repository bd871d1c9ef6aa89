"""How hard is a pair's pool for its base policy? Pass rates over G samples per question.

The CPU suite is tuned with this: a useful pool has a mean pass rate between 0.2 and 0.6, at
least 20% of questions never solved and at least 10% always solved (the spread real math RL
has, where uniform selection wastes a large share of its groups).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from harness.config import RunConfig


def probe(cfg: RunConfig, max_questions: int = 512, progress: bool = True) -> dict[str, Any]:
    from harness.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "probe", progress=progress)
        n = min(max_questions, len(trainer.pool.train))
        g = cfg.train.group_size
        chunk = max(1, cfg.eval.batch_size // g)
        rates = []
        for start in tqdm(range(0, n, chunk), disable=not progress, desc=f"probe {cfg.pair}"):
            idx = list(range(start, min(n, start + chunk)))
            _, rewards = trainer.rollout_and_score(idx, g, step=0, salt=3)
            rates.append(rewards.mean(axis=1))
        acc, _ = trainer.evaluate()
        tiers = [str(q.meta.get("tier", "")) for q in trainer.pool.train[:n]]
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
    from harness.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        acc, _ = Trainer(cfg, Path(tmp) / "probe", progress=False).evaluate()
    return acc


def format_row(row: dict[str, Any]) -> str:
    return (f"{row['pair']}: mean pass rate {row['mean_pass_rate']:.3f}, never solved "
            f"{row['never_solved']:.1%}, always solved {row['always_solved']:.1%}, informative "
            f"{row['informative']:.1%} (G={row['group_size']}, {row['questions']} questions); "
            f"held-out accuracy {row['eval_accuracy']:.3f}; by tier "
            + ", ".join(f"{k} {v:.2f}" for k, v in row["tier_pass_rate"].items()))
