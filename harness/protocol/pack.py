"""Pack finished run records for committing: the published form of a sweep's results.

A finished run folder (``summary.json`` present) keeps its resolved config, summary,
evaluation curves and every per-step counter; packing gzips ``metrics.csv`` (the bulk: about
5x smaller) and drops what only a resume needs (the checkpoint, the lock file). The readers in
``harness/runs/records.py`` take the packed form as it is, so ``selbench report`` and a resumed sweep
work from committed records alone. Packing is deterministic (no timestamps in the gzip header),
so packing the same records twice gives the same bytes, and it checks the round trip before the
plain file is removed. Unfinished runs are left alone.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.runs.records import RunRecord, _read_long, packed_path

PACKED = ("metrics.csv",)  # the files that are gzipped; the small ones stay plain for reading


@dataclass
class PackResult:
    packed: int = 0
    skipped_unfinished: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _gzip(path: Path) -> None:
    out = packed_path(path)
    tmp = out.with_name(out.name + ".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as raw:
        # mtime=0 and no file name: the same records always pack to the same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            shutil.copyfileobj(src, gz)
        raw.flush()
        os.fsync(raw.fileno())
    plain_rows = _read_long(path)
    os.replace(tmp, out)
    path.rename(path.with_name(path.name + ".unpacked"))  # the reader now sees only the .gz
    try:
        if _read_long(path) != plain_rows:
            raise RuntimeError(f"{out}: the packed copy does not read back as {path.name}")
    except BaseException:
        path.with_name(path.name + ".unpacked").rename(path)
        out.unlink()
        raise
    path.with_name(path.name + ".unpacked").unlink()


def pack_run(run_dir: Path) -> bool:
    """Pack one run folder; False (and nothing changed) when the run is not finished."""
    rec = RunRecord(run_dir)
    if not rec.finished:
        return False
    for name in PACKED:
        if (run_dir / name).exists():
            _gzip(run_dir / name)
    shutil.rmtree(rec.checkpoint_dir, ignore_errors=True)
    (run_dir / ".lock").unlink(missing_ok=True)
    return True


def pack_results(results: Path) -> PackResult:
    """Pack every finished run under ``results/runs``."""
    runs = Path(results) / "runs"
    if not runs.is_dir():
        raise FileNotFoundError(f"no run records in {runs} (expected RESULTS/runs/<run_id>/)")
    out = PackResult()
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        before = _size(run_dir)
        if pack_run(run_dir):
            out.packed += 1
        else:
            out.skipped_unfinished += 1
        out.bytes_before += before
        out.bytes_after += _size(run_dir)
    return out
