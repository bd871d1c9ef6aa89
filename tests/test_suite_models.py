"""Every CPU suite pair starts from its shipped base weights, on every machine.

The weights are files in the project (configs/models/weights/), checked against the sha256 in
their model config; the held-out accuracy of the base model (exact metric: no sampling) must be
the value recorded in configs/suites/cpu.yaml when the suite was frozen. A build would be
bit-identical on one kind of CPU only; these bytes are the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config, policy, suite

SUITE = suite.load_suite("cpu")


def test_the_suite_has_six_pairs_with_recorded_accuracies() -> None:
    assert len(SUITE.pairs) == 6
    assert set(SUITE.step0_accuracy) == set(SUITE.pairs)


@pytest.mark.parametrize("pair", SUITE.pairs)
def test_base_model_is_the_shipped_one_and_scores_as_recorded(pair: str, tmp_path: Path) -> None:
    from harness.trainer import Trainer

    cfg = config.resolve(pair, "uniform")
    shipped = policy.shipped_dir(cfg.model)  # raises on a checksum mismatch
    assert shipped is not None, f"{pair}: model {cfg.model.name} has no shipped weights"
    assert policy.file_sha256(shipped / policy.WEIGHTS_FILE) == cfg.model.weights_sha256
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    assert tr.model_path == shipped
    acc, _ = tr.evaluate()
    # to the third decimal (the value is recorded to the fourth)
    assert abs(acc - SUITE.step0_accuracy[pair]) < 5e-4, (pair, acc)
