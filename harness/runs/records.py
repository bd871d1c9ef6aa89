"""Run records: a folder per run that survives a kill.

``results/runs/<run_id>/``
- ``config.yaml``: the fully resolved config (the run id is derived from it plus the seed)
- ``metrics.csv``: long form ``step,metric,value``, one block appended and fsynced per step,
  so a run killed with SIGKILL keeps every finished step
- ``eval.csv``: the evaluation curve ``step,clock_s,samples,tokens,accuracy,extra_s``
- ``eval_tiers.csv``: long form ``step,tier,accuracy``, the held-out accuracy of each
  difficulty tier (reasoning-gym pools), written beside every ``eval.csv`` row
- ``summary.json``: written once at the end (its presence marks the run finished)
- ``checkpoint/``: the latest resumable state
- ``data.json``: what the run read (harness.runs.fingerprint); a resume with other data is refused

A finished run may be *packed* for committing (``harness/protocol/pack.py``): ``metrics.csv`` becomes
``metrics.csv.gz`` and the checkpoint goes; readers here take either form.

Every write either lands whole or leaves the file as it was: appends are cut back when they
fail, whole files are written beside the old one and renamed over it. A full disk (or any other
OS write error) raises :class:`RecordWriteError`, one line naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import gzip
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

# extra_s: the part of clock_s spent on strategies' extra rollouts (references, oracle
# candidates), so "off the clock" accountings are clock_s - extra_s from the same run
EVAL_COLUMNS = ["step", "clock_s", "samples", "tokens", "accuracy", "extra_s"]


class RecordWriteError(RuntimeError):
    """A record or checkpoint could not be written (a full disk, a folder gone read-only).

    What was written before is intact; the message names the file, the reason and the fix."""

    def __init__(self, path: Path, cause: OSError) -> None:
        self.path = Path(path)
        self.cause = cause
        reason = (cause.strerror or str(cause)).lower()
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = (f"free space on the disk of {self.path.parent} (or give --results on another "
                   "disk)")
        else:
            fix = f"make {self.path.parent} writable again"
        super().__init__(f"could not write {self.path} ({reason}); the records before it are "
                         f"intact: {fix}, then rerun the same command to resume from the last "
                         "checkpoint")


def _write_all(fd: int, data: bytes | memoryview) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]  # a short write (a nearly full disk) writes on
    return len(data)


def _append(path: Path, text: str) -> None:
    # one write + fsync per step: either the whole step's rows are on disk or none
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as err:
        raise RecordWriteError(path, err) from None
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        except OSError as err:
            # part of a step would read as a finished step: cut the file back (truncating
            # frees blocks, so it works on a full disk too)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise RecordWriteError(path, err) from None
    finally:
        os.close(fd)


class _Sink(io.RawIOBase):
    """A write-only file over ``fd`` that keeps the OSError of a failed write: torch.save turns
    it into a bare RuntimeError, and the reason (a full disk) must survive."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return _write_all(self.fd, data)
        except OSError as err:
            self.error = err
            raise

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def atomic_save(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` with ``write(file)`` into ``path.tmp``, fsync it, rename it over ``path``:
    a save that fails (a full disk: :class:`RecordWriteError`) or is killed leaves the previous
    file whole and no temporary one behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    sink: _Sink | None = None
    try:
        sink = _Sink(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        with sink:
            write(sink)  # type: ignore[arg-type]
            os.fsync(sink.fd)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        cause = err if isinstance(err, OSError) else sink.error if sink is not None else None
        if cause is None:
            raise  # a writer's own bug, not the disk
        raise RecordWriteError(path, cause) from None


@contextlib.contextmanager
def folder_lock(folder: Path, busy: Exception) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively for the block, or raise ``busy`` at once if another
    process holds it: one writer per folder (run records, label collections)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield


class RunBusyError(RuntimeError):
    """Another process holds the run folder's lock (defined here, torch-free, so that the CLI
    can catch it without importing the trainer)."""

    @classmethod
    def for_run(cls, run_dir: Path) -> RunBusyError:
        return cls(f"run {run_dir} is being written by another process; wait for it or stop it, "
                   "then rerun to resume")


def atomic_write(path: Path, text: str) -> None:
    atomic_save(path, lambda fh: fh.write(text.encode("utf-8")))


class RunRecord:
    """Writer (and reader) of one run folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.metrics_path = self.root / "metrics.csv"
        self.eval_path = self.root / "eval.csv"
        self.eval_tiers_path = self.root / "eval_tiers.csv"
        self.summary_path = self.root / "summary.json"
        self.config_path = self.root / "config.yaml"
        self.checkpoint_dir = self.root / "checkpoint"

    def start(self, config_yaml: str) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RecordWriteError(self.root, err) from None
        if not self.config_path.exists():
            atomic_write(self.config_path, config_yaml)
        if not self.metrics_path.exists():
            _append(self.metrics_path, "step,metric,value\n")
        if not self.eval_path.exists():
            _append(self.eval_path, ",".join(EVAL_COLUMNS) + "\n")
        if not self.eval_tiers_path.exists():
            _append(self.eval_tiers_path, "step,tier,accuracy\n")

    @property
    def finished(self) -> bool:
        return self.summary_path.exists()

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for key, value in metrics.items():
            writer.writerow([step, key, repr(float(value))])
        _append(self.metrics_path, buf.getvalue())

    def log_eval(self, row: Mapping[str, float]) -> None:
        # extra_s is optional: executors without extra rollouts have none
        _append(self.eval_path, ",".join(repr(float(row.get(c, 0.0))) if c != "step"
                                         else str(int(row[c])) for c in EVAL_COLUMNS) + "\n")

    def log_eval_tiers(self, step: int, accuracies: Mapping[str, float]) -> None:
        _append(self.eval_tiers_path, "".join(f"{step},{tier},{float(acc)!r}\n"
                                              for tier, acc in accuracies.items()))

    def read_eval_tiers(self) -> list[tuple[int, str, float]]:
        """``(step, tier, accuracy)`` rows; empty for runs recorded before tiers were."""
        present = self.eval_tiers_path.exists() or packed_path(self.eval_tiers_path).exists()
        return _read_long(self.eval_tiers_path) if present else []

    def truncate_after(self, step: int) -> None:
        """Drop rows of steps after ``step`` (used when resuming from an older checkpoint)."""
        for path in (self.metrics_path, self.eval_path, self.eval_tiers_path):
            if not path.exists():
                continue
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [lines[0]] + [ln for ln in lines[1:] if _row_step(ln) is not None
                                 and _row_step(ln) <= step]  # type: ignore[operator]
            atomic_write(path, "".join(kept))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.summary_path, json.dumps(summary, indent=2, sort_keys=True))

    def read_metrics(self) -> list[tuple[int, str, float]]:
        """Every complete row; a torn last line from a kill mid-write is skipped."""
        return _read_long(self.metrics_path)

    def read_eval(self) -> list[dict[str, float]]:
        """Rows keyed by the file's own header (records written before a column existed stay
        readable; a missing ``extra_s`` reads as 0); a torn last line is skipped."""
        out = []
        with open_record(self.eval_path) as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return out
        header = rows[0]
        for rec in rows[1:]:
            if len(rec) != len(header):
                continue
            try:
                row = {c: float(v) for c, v in zip(header, rec, strict=True)}
            except ValueError:
                continue
            row.setdefault("extra_s", 0.0)
            out.append(row)
        return out


def packed_path(path: Path) -> Path:
    """Where a packed (gzip) copy of a record file lives."""
    return path.with_name(path.name + ".gz")


def open_record(path: Path):  # noqa: ANN201 (a text file object)
    """Open a record file for reading, or its packed ``.gz`` copy when only that exists."""
    if not path.exists() and packed_path(path).exists():
        return gzip.open(packed_path(path), "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _read_long(path: Path) -> list[tuple[int, str, float]]:
    """Rows of a long-form ``step,name,value`` file; a torn last line is skipped."""
    rows = []
    with open_record(path) as fh:
        for rec in list(csv.reader(fh))[1:]:
            if len(rec) != 3:
                continue
            try:
                rows.append((int(rec[0]), rec[1], float(rec[2])))
            except ValueError:
                continue
    return rows


def _row_step(line: str) -> int | None:
    head = line.split(",", 1)[0]
    try:
        return int(head)
    except ValueError:
        return None
