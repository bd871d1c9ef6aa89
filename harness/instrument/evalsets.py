"""Accuracy over named eval sets: the mean of the per-set accuracies (the paper's average).

A pool with ``eval_sets`` (GSM8K, MATH500, ...) holds all their questions in ``pool.eval``, each
tagged ``meta["eval_set"]``. Averaging over the concatenation would weight a set by its size
(GSM8K's 1,319 questions would outweigh MATH500's 500); the paper averages the sets' accuracies.
Pools without named sets keep the plain mean. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.instrument.tasks.base import Question


def set_accuracies(questions: Sequence[Question], rewards: Sequence[float]) -> dict[str, float]:
    """Mean reward per named eval set, in first-seen order ({} when no question is tagged).

    ``rewards`` has one entry per sample; questions are repeated once per sample alongside.
    """
    if len(questions) != len(rewards):
        raise ValueError(f"{len(questions)} questions but {len(rewards)} rewards")
    sums: dict[str, list[float]] = {}
    for q, r in zip(questions, rewards, strict=True):
        name = q.meta.get("eval_set")
        if name is not None:
            sums.setdefault(str(name), []).append(float(r))
    return {name: float(np.mean(values)) for name, values in sums.items()}


def accuracy(questions: Sequence[Question], rewards: Sequence[float]) -> tuple[float, dict[str, float]]:
    """(headline accuracy, per-set accuracies): the mean over sets, or the plain mean."""
    per_set = set_accuracies(questions, rewards)
    if per_set:
        return float(np.mean(list(per_set.values()))), per_set
    return (float(np.mean(rewards)) if len(rewards) else 0.0), {}


def metric_names(per_set: dict[str, float]) -> dict[str, float]:
    """Per-set accuracies as extra metrics: ``eval/<set>``."""
    return {f"eval/{name}": value for name, value in per_set.items()}
