"""Where a result came from: git commit, date, package versions. Torch-free."""

from __future__ import annotations

import datetime as _dt
import subprocess
from importlib import metadata
from pathlib import Path

from harness.paths import PROJECT_ROOT

_PACKAGES = ("torch", "transformers", "reasoning-gym", "math-verify", "numpy")


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """Short commit of ``root``, with ``-dirty`` (as ``git describe --dirty``) when tracked files
    differ from it or new files are not yet committed (ignored ones, such as results, do not
    count): a run from an uncommitted tree must not claim a commit's code."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip()
        if not commit:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return commit + ("-dirty" if status.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def provenance(commit: str | None = None) -> dict[str, object]:
    """``commit``: the one taken when the run's code was loaded (default: now)."""
    return {"git_commit": commit or git_commit(),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "versions": versions()}
