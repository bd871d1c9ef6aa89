"""Where a result came from: git commit, date, package versions. Torch-free."""

from __future__ import annotations

import datetime as _dt
import subprocess
from importlib import metadata

from harness.paths import PROJECT_ROOT

_PACKAGES = ("torch", "transformers", "reasoning-gym", "math-verify", "numpy")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
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


def provenance() -> dict[str, object]:
    return {"git_commit": git_commit(), "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "versions": versions()}
