"""Question pools and binary verifiers: the task side of every selbench run.

A :class:`Pool` is what a selection strategy picks from (``train``) plus a held-out ``eval``
set, and the :class:`Verifier` that turns a completion into a reward of exactly 1.0 or 0.0.
Verifiers never raise: a checker that crashes or runs past its time budget gives 0.0 and is
counted, so one pathological completion cannot stop a training run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


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


class DeadlineExceeded(BaseException):  # noqa: N818 - reads better at the raise site
    """Raised from a SIGALRM handler when a check runs past its budget.

    A ``BaseException`` on purpose: checkers (math-verify, sympy, reasoning-gym) wrap their
    work in ``except Exception`` and would otherwise swallow the interrupt and keep going.
    """


def deadline_supported() -> bool:
    """Signal-based deadlines work only in the main thread of the main interpreter (POSIX)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_with_deadline(fn: Callable[[], T], seconds: float | None) -> T:
    """Run ``fn()``; raise :class:`DeadlineExceeded` if it takes longer than ``seconds``.

    Uses a one-shot ``ITIMER_REAL`` (sub-second precision, unlike ``signal.alarm``) and restores
    any timer and handler that were installed before. Outside the main thread no signal can be
    delivered to us, so ``fn`` runs unbounded there; callers guard input size instead.
    """
    if seconds is None or not deadline_supported():
        return fn()
    fired = False

    def on_alarm(signum: int, frame: Any) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise DeadlineExceeded(f"check exceeded {seconds:g} s")

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        result = fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            # Someone else's timer was running: give it back what is left of its delay.
            remaining = max(previous_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)
    if fired:
        # The interrupt was swallowed inside fn (a bare ``except:``): still a timeout.
        raise DeadlineExceeded(f"check exceeded {seconds:g} s")
    return result


class Verifier:
    """Binary reward: ``verifier(question, completion)`` is exactly 1.0 or 0.0.

    Subclasses implement :meth:`check`. Exceptions and timeouts inside ``check`` become 0.0 and
    are counted in ``failures`` (both) and ``timeouts`` (timeouts only); they never propagate.
    """

    def __init__(self, timeout: float | None = 2.0) -> None:
        self.timeout = timeout
        self.failures = 0
        self.timeouts = 0

    def check(self, question: Question, completion: str) -> bool:
        """Whether ``completion`` answers ``question`` correctly. May raise; may be slow."""
        raise NotImplementedError

    def __call__(self, question: Question, completion: str) -> float:
        try:
            ok = run_with_deadline(lambda: self.check(question, completion), self.timeout)
        except DeadlineExceeded:
            self.timeouts += 1
            self.failures += 1
            return 0.0
        except Exception:  # a broken checker must cost one reward, not the run
            self.failures += 1
            return 0.0
        return 1.0 if ok is True else 0.0


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

    def __post_init__(self) -> None:
        # Leakage between train and eval would silently inflate every accuracy number.
        overlap = {q.text for q in self.train} & {q.text for q in self.eval}
        if overlap:
            example = next(iter(overlap))
            raise ValueError(
                f"pool {self.name!r}: {len(overlap)} question texts are in both train and eval,"
                f" e.g. {example[:80]!r}"
            )
