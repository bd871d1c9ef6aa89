"""Every CPU suite pair starts from its shipped base weights, on every machine.

The weights are files in the project (configs/models/weights/), checked against the sha256 in
their model config; the held-out accuracy of the base model (exact metric: no sampling) must be
the value recorded in configs/suites/cpu.yaml when the suite was frozen. A build would be
bit-identical on one kind of CPU only; these bytes are the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config
from harness.instrument import policy, suite

SUITE = suite.load_suite("cpu")


def test_the_suite_has_six_pairs_with_recorded_accuracies() -> None:
    assert len(SUITE.pairs) == 6
    assert set(SUITE.step0_accuracy) == set(SUITE.pairs)


@pytest.mark.parametrize("pair", SUITE.pairs)
def test_base_model_is_the_shipped_one_and_scores_as_recorded(pair: str, tmp_path: Path) -> None:
    from harness.executors.trainer import Trainer

    cfg = config.resolve(pair, "uniform")
    shipped = policy.shipped_dir(cfg.model)  # raises on a checksum mismatch
    assert shipped is not None, f"{pair}: model {cfg.model.name} has no shipped weights"
    assert policy.file_sha256(shipped / policy.WEIGHTS_FILE) == cfg.model.weights_sha256
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    assert tr.model_path == shipped
    acc, _ = tr.evaluate()
    # to the third decimal (the value is recorded to the fourth)
    assert abs(acc - SUITE.step0_accuracy[pair]) < 5e-4, (pair, acc)


def test_the_suite_is_frozen_and_unchanged_since() -> None:
    """Pre-registration: no file that defines a suite pair changes after the freeze (a new
    suite gets a new suite file and its own freeze)."""
    assert SUITE.frozen_commit, "configs/suites/cpu.yaml: the suite must record frozen_commit"
    try:
        changed = suite.frozen_changes(SUITE)
    except suite.SuiteError as err:
        if "not in this checkout" in str(err):
            pytest.skip(str(err))
        raise
    assert changed == [], f"changed since the freeze at {SUITE.frozen_commit}: {changed}"


def test_frozen_changes_names_an_edited_pair_file(tmp_path: Path, monkeypatch) -> None:
    import shutil
    import subprocess

    from harness.runs import paths

    root = tmp_path / "repo"
    shutil.copytree(paths.CONFIG_DIR, root / "configs")
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "freeze"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    monkeypatch.setattr(paths, "PROJECT_ROOT", root)
    cfgs = root / "configs"
    # recording the commit itself is not a change
    suite_file = cfgs / "suites" / "cpu.yaml"
    text = suite_file.read_text()
    suite_file.write_text(text.replace("frozen_commit: null", f"frozen_commit: {commit}")
                          if "frozen_commit: null" in text else text)
    frozen = suite.load_suite("cpu", cfgs)
    frozen = suite.Suite(**{**frozen.__dict__, "frozen_commit": commit})
    assert suite.frozen_changes(frozen, cfgs) == []
    task = cfgs / "tasks" / "chainsum.yaml"
    task.write_text(task.read_text().replace("weight: 1.7", "weight: 1.8"))
    (cfgs / "models" / "weights" / "tiny1m-arith" / "extra.bin").write_bytes(b"x")
    suite_file.write_text(suite_file.read_text().replace("name: cpu", "name: cpu2"))
    assert suite.frozen_changes(frozen, cfgs) == [
        "configs/models/weights/tiny1m-arith/extra.bin", "configs/suites/cpu.yaml",
        "configs/tasks/chainsum.yaml"]
