"""Progress that suits where it goes: a live bar on a terminal, plain lines in a log file.

tqdm redraws with carriage returns, which in a log file (a sweep's per-run logs, a demo piped
to a file, CI) become hundreds of KB of one long line. When stderr is not a terminal, ``bar``
returns :class:`LogBar` instead: one line every ``SELBENCH_PROGRESS_S`` seconds (default 30)
and one at the end, each with the count, the elapsed time, an estimate of the time left and
the same postfix a terminal would show.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("SELBENCH_PROGRESS_S", "30")))
    except ValueError:
        return 30.0


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LogBar:
    """The part of tqdm's interface the harness uses, writing whole lines."""

    def __init__(self, total: int | float | None, desc: str = "", unit: str = "it",
                 initial: int | float = 0, file: TextIO | None = None,
                 interval: float | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self._start_n = initial
        self.file = file or sys.stderr
        self.interval = _interval() if interval is None else interval
        self.postfix = ""
        self._t0 = time.monotonic()
        self._last = self._t0
        self._closed = False

    def update(self, n: int | float = 1) -> None:
        self.n += n
        self._maybe_write()

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())
        self._maybe_write()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        # a sweep's count moves once per finished run (minutes): its postfix, which follows
        # the runs' steps, is the heartbeat
        self.postfix = s
        self._maybe_write()

    def _maybe_write(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write()

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        done = self.n - self._start_n
        count = f"{self.n:g}/{self.total:g} {self.unit}" if self.total else f"{self.n:g} {self.unit}"
        left = ""
        if self.total and done > 0 and self.n < self.total:
            left = f", ~{_fmt_s(elapsed / done * (self.total - self.n))} left"
        post = f" | {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {count}, {_fmt_s(elapsed)} elapsed{left}{post}"

    def _write(self) -> None:
        print(self.line(), file=self.file, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._write()

    def __enter__(self) -> LogBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(total: int | float | None = None, *, desc: str = "", unit: str = "it",
        initial: int | float = 0, disable: bool = False, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar on a terminal, a :class:`LogBar` elsewhere, a silent bar when disabled."""
    if disable:
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, **tqdm_kwargs)
    return LogBar(total, desc=desc, unit=unit, initial=initial)
