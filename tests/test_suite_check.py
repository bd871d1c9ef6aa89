"""`selbench suite check` end to end on the test pair: probe, uniform runs, criteria rows."""

from __future__ import annotations

import math
from pathlib import Path

from harness.instrument import suite_check


def test_check_runs_uniform_probes_and_scores_each_criterion(config_dir, built_test_model,
                                                             tmp_path: Path) -> None:
    results = tmp_path / "check"
    rows = suite_check.check(["test-pair"], [0, 1], results, workers=2, progress=False,
                             config_dir=config_dir)
    (row,) = rows
    assert row["pair"] == "test-pair" and row["seeds"] == 2
    # every criterion has a verdict, and the verdicts follow from the measured values
    for key in ("spread_ok", "room_ok", "noise_ok", "portable_ok", "realism_ok", "cost_ok"):
        assert isinstance(row[key], bool)
    assert row["room_ok"] == (row["min_rise"] >= 0.15)
    assert not row["weights_shipped"] and not row["portable_ok"]  # the test model is a build
    assert row["metric"] == "sampled" and row["se"] > 0
    assert 0 < row["generate_share"] < 1
    assert row["train_minutes"] > 0 and len(row["steps_to_target"]) == 2
    assert all(math.isinf(s) or s >= 0 for s in row["steps_to_target"])
    # the probe is cached under the results folder; a second check reruns nothing
    assert len(list((results / "probes").glob("*.json"))) == 1
    again = suite_check.check(["test-pair"], [0, 1], results, workers=2, progress=False,
                              config_dir=config_dir)
    assert again[0]["min_rise"] == row["min_rise"]
    out = suite_check.write(rows, results)
    assert "| test-pair | 2 |" in out.read_text()
    assert (results / "criteria.csv").is_file()
