"""Question pools: the task side of every selbench run.

A :class:`Pool` is what a selection strategy picks from (``train``) plus a held-out ``eval``
set, and the :class:`~harness.instrument.tasks.verifier.Verifier` that turns a completion into a
reward of exactly 1.0 or 0.0 (see :mod:`harness.instrument.tasks.verifier`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.config.base import ConfigError

if TYPE_CHECKING:
    # a type only: verifier.py imports Question from here
    from harness.instrument.tasks.verifier import Verifier


@dataclass(frozen=True)
class Question:
    """One verifiable question.

    ``qid`` is stable (same config and seed give the same ids) so embeddings, pass-rate
    histories and run records can be keyed on it. ``text`` is the bare question, before any
    prompt template. ``meta`` is JSON-serialisable and carries what the verifier needs.
    """

    qid: str
    text: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class TaskDataError(ConfigError):
    """A data file's rows (or the pool built from them) cannot make a sound run.

    A :class:`ConfigError` (one line: the field, the file, how many rows and the fix), so the CLI
    prints it and stops before any model loads.
    """


# --- pools ----------------------------------------------------------------------------------


@dataclass
class Pool:
    """A named question pool: ``train`` to select from, disjoint ``eval`` to measure on."""

    name: str
    train: list[Question]
    eval: list[Question]
    verifier: Verifier
    # named held-out sets (e.g. GSM8K, MATH500), their questions in ``eval`` too; a run's
    # accuracy is the mean over the sets (empty: one unnamed set, ``eval`` itself)
    eval_sets: dict[str, list[Question]] = field(default_factory=dict)
    # where the questions came from (a file, a dataset name, reasoning-gym tiers), for messages
    origin: str = ""

    def __post_init__(self) -> None:
        # Leakage between train and eval would silently inflate every accuracy number.
        overlap = {q.text for q in self.train} & {q.text for q in self.eval}
        if overlap:
            example = next(iter(overlap))
            raise ValueError(
                f"pool {self.name!r}: {len(overlap)} question texts are in both train and eval,"
                f" e.g. {example[:80]!r}"
            )


def check_pool_size(pool: Pool, batch_size: int, field: str) -> None:
    """Raise :class:`TaskDataError` (one line) unless ``pool`` can feed a run.

    A step draws ``batch_size`` distinct training questions, so the pool needs at least that
    many; the held-out set (and each named eval set) must not be empty. ``field`` names the
    batch-size setting in the message (e.g. ``"train.batch_size"``). Call it right after the
    pool is built, before any model loads.
    """
    origin = f" (from {pool.origin})" if pool.origin else ""
    if len(pool.train) < batch_size:
        raise TaskDataError(
            field, batch_size,
            f"pool {pool.name!r} has only {len(pool.train)} training questions{origin} but a step "
            f"draws {batch_size} distinct ones; lower {field} to {max(len(pool.train), 1)} or less,"
            " or give the pool more questions (task.n_train, task.max_rows or a bigger task.path)",
        )
    empty = [name for name, qs in pool.eval_sets.items() if not qs]
    if not pool.eval or empty:
        which = f"eval set {empty[0]!r}" if empty else "held-out set"
        raise TaskDataError(
            "task", pool.name,
            f"the pool's {which} is empty (0 questions{origin}); give it questions: task.n_eval "
            "or task.eval_fraction (with at least 2 distinct questions in task.path), or a "
            "non-empty task.eval_path / task.eval_sets file",
        )
