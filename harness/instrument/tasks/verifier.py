"""Binary verifiers with a time budget that holds in any thread.

A :class:`Verifier` turns a completion into a reward of exactly 1.0 or 0.0. Verifiers never
raise: a checker that crashes, runs past its time budget or scores a value that is not finite
gives 0.0 and is counted, so one pathological completion cannot stop a training run. The time
budget holds in any thread: in the main thread a ``SIGALRM`` deadline interrupts the check;
elsewhere (OpenRLHF calls the reward from worker threads) the check runs in a helper process that
is killed and replaced when it runs past the budget.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from harness.instrument.tasks.base import Question

T = TypeVar("T")
log = logging.getLogger("harness.instrument.tasks")


class DeadlineExceeded(BaseException):  # noqa: N818 - reads better at the raise site
    """Raised from a SIGALRM handler when a check runs past its budget.

    A ``BaseException`` on purpose: checkers (math-verify, sympy, reasoning-gym) wrap their
    work in ``except Exception`` and would otherwise swallow the interrupt and keep going.
    """


class NonFiniteScore(Exception):  # noqa: N818 - reads better at the raise site
    """A checker produced a score that is NaN or infinite: the reward is 0.0 and counted."""


def deadline_supported() -> bool:
    """Signal-based deadlines work only in the main thread of the main interpreter (POSIX)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_with_deadline(fn: Callable[[], T], seconds: float | None) -> T:
    """Run ``fn()``; raise :class:`DeadlineExceeded` if it takes longer than ``seconds``.

    Uses a one-shot ``ITIMER_REAL`` (sub-second precision, unlike ``signal.alarm``) and restores
    any timer and handler that were installed before. Outside the main thread no signal can be
    delivered to us, so ``fn`` runs unbounded there: :class:`Verifier` sends its checks to a
    helper process instead (a closure cannot travel there).
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


class _CheckFailed(Exception):  # noqa: N818
    """A check raised inside a helper process (the reward is 0.0 and counted)."""


class Verifier:
    """Binary reward: ``verifier(question, completion)`` is exactly 1.0 or 0.0.

    Subclasses implement :meth:`check`. Exceptions, timeouts and non-finite scores inside
    ``check`` become 0.0 and are counted in ``failures`` (all three), ``timeouts`` (timeouts only)
    and ``nonfinite`` (scores that are NaN or infinite, also logged); they never propagate.

    Called off the main thread with a timeout, the check runs in one of up to
    ``worker_processes`` helper processes (each holds a pickled copy of this verifier, started on
    first use; start-up does not count against the deadline), so the deadline holds there too.
    A verifier that cannot be pickled falls back to an unbounded check in the calling thread,
    with one warning.
    """

    # helper processes for checks off the main thread (None: $SELBENCH_VERIFIER_WORKERS, else
    # half the CPUs, at most 4)
    worker_processes: int | None = None

    def __init__(self, timeout: float | None = 2.0) -> None:
        self.timeout = timeout
        self.failures = 0
        self.timeouts = 0
        self.nonfinite = 0

    def check(self, question: Question, completion: str) -> bool:
        """Whether ``completion`` answers ``question`` correctly. May raise; may be slow."""
        raise NotImplementedError

    def __call__(self, question: Question, completion: str) -> float:
        try:
            if self.timeout is not None and not deadline_supported():
                ok = self._check_off_main_thread(question, completion)
            else:
                ok = run_with_deadline(lambda: self.check(question, completion), self.timeout)
            return _reward(ok)
        except DeadlineExceeded:
            self.timeouts += 1
            self.failures += 1
            return 0.0
        except NonFiniteScore as err:
            self.nonfinite += 1
            self.failures += 1
            if self.nonfinite == 1 or self.nonfinite % 1000 == 0:
                log.warning("%s: a score that is not finite counts as 0.0 (%s; %d so far)",
                            type(self).__name__, err, self.nonfinite)
            return 0.0
        except Exception:  # a broken checker must cost one reward, not the run
            self.failures += 1
            return 0.0

    def close(self) -> None:
        """Stop this verifier's helper processes (they also stop with it and at exit)."""
        workers = self.__dict__.pop("_workers", None)
        if workers is not None:
            workers.close()

    def __getstate__(self) -> dict[str, Any]:
        # helper processes belong to this process's copy; a copy elsewhere starts its own
        state = self.__dict__.copy()
        state.pop("_workers", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _check_off_main_thread(self, question: Question, completion: str) -> Any:
        workers = self.__dict__.get("_workers")
        if workers is None or workers.pid != os.getpid():
            with _WORKERS_LOCK:
                workers = self.__dict__.get("_workers")
                if workers is None or workers.pid != os.getpid():  # none yet, or forked
                    workers = self.__dict__["_workers"] = _CheckWorkers(self)
        if workers.broken:
            return self.check(question, completion)  # cannot be bounded here (warned once)
        assert self.timeout is not None
        return workers.run(question, completion, self.timeout)


def _reward(ok: Any) -> float:
    if ok is True:
        return 1.0
    if isinstance(ok, float) and not math.isfinite(ok):
        raise NonFiniteScore(f"check returned {ok!r}")
    return 0.0


# --- helper processes for checks off the main thread ----------------------------------------

_WORKERS_LOCK = threading.Lock()
# A helper whose own SIGALRM deadline did not stop the check (a long C call, say) is killed
# this long after the deadline.
_KILL_GRACE_S = 0.25
_KILL_GRACE_SHARE = 0.5
_START_TIMEOUT_S = 300.0
_CHILD = (
    "import json, os, sys; sys.path[:0] = json.loads(os.environ.pop('SELBENCH_CHECK_PATH')); "
    "from harness.instrument.tasks.verifier import _serve; _serve({fd})"
)


def _default_workers() -> int:
    env = os.environ.get("SELBENCH_VERIFIER_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def _hard_limit(seconds: float) -> float:
    return seconds + max(_KILL_GRACE_S, _KILL_GRACE_SHARE * seconds)


class _Helper:
    """One helper process: a pickled verifier in, ``(question, completion, seconds)`` jobs."""

    def __init__(self, payload: bytes) -> None:
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        env = dict(os.environ, SELBENCH_CHECK_PATH=json.dumps(sys.path))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD.format(fd=theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.conn.send_bytes(payload)
            if not self.conn.poll(_START_TIMEOUT_S):
                raise RuntimeError(f"no answer in {_START_TIMEOUT_S:g} s")
            reply = self.conn.recv()
        except BaseException:
            self.kill()
            raise
        if reply[0] != "ready":
            self.kill()
            raise RuntimeError(reply[1])

    def ask(self, job: bytes, limit: float) -> tuple[Any, ...] | None:
        """The helper's reply, or None if it gave none within ``limit`` seconds (or died)."""
        try:
            self.conn.send_bytes(job)
            if self.conn.poll(limit):
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def kill(self) -> None:
        self.conn.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class _CheckWorkers:
    """Up to ``size`` helpers; each call takes an idle one (or starts one) for one check."""

    def __init__(self, verifier: Verifier) -> None:
        self.pid = os.getpid()
        self.size = verifier.worker_processes or _default_workers()
        self.name = type(verifier).__name__
        self.broken = False
        self._idle: list[_Helper] = []
        self._live: set[_Helper] = set()
        self._starting = 0
        self._closed = False
        self._cond = threading.Condition()
        self._payload = b""
        try:
            self._payload = pickle.dumps(verifier)
        except Exception as err:
            self._broken(f"it cannot be pickled ({type(err).__name__}: {err})")
        weakref.finalize(self, _kill_all, self._live)

    def run(self, question: Question, completion: str, seconds: float) -> bool:
        job = pickle.dumps((question, completion, seconds))  # may raise: counted as a failure
        helper = self._acquire()
        reply = None
        try:
            reply = helper.ask(job, _hard_limit(seconds))
        finally:
            with self._cond:
                if reply is None:
                    self._live.discard(helper)
                    self._starting += 1  # its replacement starts now, in the background
                else:
                    self._idle.append(helper)
                self._cond.notify()
            if reply is None:
                helper.kill()  # past its deadline (or dead)
                threading.Thread(target=self._replace, daemon=True,
                                 name="selbench-verifier-helper").start()
        if reply is None:
            raise DeadlineExceeded(f"check exceeded {seconds:g} s (its helper process was killed)")
        kind = reply[0]
        if kind == "ok":
            return bool(reply[1])
        if kind == "timeout":
            raise DeadlineExceeded(f"check exceeded {seconds:g} s")
        if kind == "nonfinite":
            raise NonFiniteScore(reply[1])
        raise _CheckFailed(reply[1])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            _kill_all(self._live)
            self._idle.clear()

    def _acquire(self) -> _Helper:
        """An idle helper, once one is free (waiting for a free one is not check time)."""
        with self._cond:
            while not self._idle and len(self._live) + self._starting >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._starting += 1  # holds a slot while the helper starts (outside the lock)
        helper = self._start()
        if helper is None:
            raise _CheckFailed("the helper process did not start")
        return helper

    def _replace(self) -> None:
        helper = self._start()
        if helper is not None:
            with self._cond:
                self._idle.append(helper)
                self._cond.notify()

    def _start(self) -> _Helper | None:
        """A new live helper (its slot was counted in ``_starting``), or None if it failed."""
        helper = None
        try:
            helper = _Helper(self._payload)
        except Exception as err:
            self._broken(f"its helper process did not start ({err})")
        finally:
            with self._cond:
                self._starting -= 1
                if helper is not None and not self._closed:
                    self._live.add(helper)
                self._cond.notify_all()
        if helper is not None and self._closed:
            helper.kill()
            return None
        return helper

    def _broken(self, why: str) -> None:
        if not self.broken:
            self.broken = True
            log.warning("%s: %s; checks off the main thread now run without a deadline",
                        self.name, why)


def _kill_all(helpers: set[_Helper]) -> None:
    for helper in list(helpers):
        helper.kill()
    helpers.clear()


def _serve(fd: int) -> None:
    """A helper process's loop: unpickle the verifier, then answer checks until EOF."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; we stop at EOF
    conn = Connection(fd)
    try:
        verifier: Verifier = pickle.loads(conn.recv_bytes())
    except BaseException as err:
        conn.send(("error", f"could not load the verifier: {type(err).__name__}: {err}"))
        return
    conn.send(("ready",))
    while True:
        try:
            question, completion, seconds = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            ok = run_with_deadline(functools.partial(verifier.check, question, completion),
                                   seconds)
            reply: tuple[Any, ...] = ("ok", _reward(ok) == 1.0)
        except DeadlineExceeded:
            reply = ("timeout",)
        except NonFiniteScore as err:
            reply = ("nonfinite", str(err))
        except Exception as err:
            reply = ("error", f"{type(err).__name__}: {err}")
        conn.send(reply)

