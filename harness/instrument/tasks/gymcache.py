"""Remembered reasoning-gym tier checks, so that config validation answers without importing it.

Validating a tier builds one question with reasoning-gym (that catches param combinations the
dataset's own checks miss), and importing reasoning-gym takes about a second (sympy, matplotlib
through cellpylib): more than everything else a ``selbench`` command does before its first line.
A check's outcome depends only on the installed reasoning-gym, the dataset and its params, so a
passed check is remembered in the cache folder under that key; resolving the same tier again
skips the import. Failures are never remembered: they re-run and print reasoning-gym's reason.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

from harness.runs.paths import cache_dir

# Bump when what a tier check covers changes, so an old pass is not taken for a new one.
CHECKS_VERSION = "1"


def _store() -> Path | None:
    try:
        version = importlib.metadata.version("reasoning-gym")
    except importlib.metadata.PackageNotFoundError:
        return None  # not installed: the check itself will say so
    return cache_dir() / "gym-checks" / f"v{CHECKS_VERSION}-reasoning-gym-{version}.json"


def _key(dataset: str, params: dict[str, Any]) -> str:
    return json.dumps([dataset, params], sort_keys=True, default=repr)


def _read(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()  # missing or torn: the checks just run again
    return set(data) if isinstance(data, list) else set()


def passed(dataset: str, params: dict[str, Any]) -> bool:
    """True when this (dataset, params) passed its check under the installed reasoning-gym."""
    try:
        path = _store()
    except OSError:  # no cache folder can be made: check afresh
        return False
    return path is not None and _key(dataset, params) in _read(path)


def remember(dataset: str, params: dict[str, Any]) -> None:
    """Record a passed check. Best effort: a read-only cache only costs the import next time,
    and two writers racing lose at most one entry (the file is replaced whole, never torn)."""
    with contextlib.suppress(OSError):
        path = _store()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = _read(path) | {_key(dataset, params)}
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(keys)))
        os.replace(tmp, path)
