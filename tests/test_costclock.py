"""The cost clock: counted work x calibrated unit costs, on hand-made per-step records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.protocol import costclock
from harness.runs.records import RunRecord

CAL = costclock.Calibration(
    units={"gen_token": 0.001, "gen_sample": 0.01, "train_token": 0.002, "train_step": 0.5},
    select_s={"dots": 0.25, "uniform": 0.0}, machine_gflops=100.0)


def _metrics(steps: int, scale: float = 1.0, ref: int = 0) -> list[tuple[int, str, float]]:
    """Per step: 100 generated tokens, 10 samples (+ ``ref`` reference samples), 50 trained
    tokens; phase seconds multiplied by ``scale`` (a busier machine)."""
    rows = []
    for s in range(1, steps + 1):
        work = {"cost/tokens_generated": 100.0, "cost/samples": 10.0,
                "cost/reference_samples": float(ref), "cost/tokens_trained": 50.0 + s}
        times = {"time/generate": 0.3, "time/reward": 0.1, "time/logprobs": 0.2,
                 "time/update": 0.4 + 0.01 * s, "time/select": 0.5, "time/extra_rollouts": 0.2}
        rows += [(s, k, v) for k, v in work.items()]
        rows += [(s, k, v * scale) for k, v in times.items()]
    return rows


def test_step_costs_equal_hand_computed_values() -> None:
    t = costclock.step_table(_metrics(2, ref=5))
    cost = costclock.step_costs(t, "dots+rr@cap128", CAL)  # variants share dots+rr's price...
    assert cost.select_fallback  # ...which this calibration does not have
    cost = costclock.step_costs(t, "dots", CAL)
    # step 1: 0.001*100 + 0.01*15 + 0.002*51 + 0.5 + 0.25 = 1.102; step 2: + 0.002
    np.testing.assert_allclose(cost.seconds, [1.102, 1.104])
    # reference share of the rollout cost: 5/15 of (0.1 + 0.15)
    np.testing.assert_allclose(cost.extra, [0.25 / 3, 0.25 / 3])
    total, extra = costclock.at_evals(cost, [0, 1, 2])
    np.testing.assert_allclose(total, [0.0, 1.102, 2.206])
    np.testing.assert_allclose(extra, [0.0, 0.25 / 3, 0.5 / 3])


def test_cost_clock_is_invariant_to_a_busier_machine() -> None:
    quiet = costclock.step_table(_metrics(20))
    busy = costclock.step_table(_metrics(20, scale=2.7))
    for label in ("dots", "uniform"):
        np.testing.assert_array_equal(costclock.step_costs(quiet, label, CAL).seconds,
                                      costclock.step_costs(busy, label, CAL).seconds)
    # while the wall clock of the same steps scales with the load
    assert busy["time/update"].sum() == pytest.approx(2.7 * quiet["time/update"].sum())


def test_fit_recovers_unit_costs_by_least_squares() -> None:
    rng = np.random.default_rng(0)
    runs = {}
    for r, label in enumerate(["uniform", "uniform", "dots"]):
        rows = []
        for s in range(1, 41):
            gen_tok, smp = float(rng.integers(500, 2000)), float(rng.integers(8, 64))
            ref, trained = float(rng.integers(0, 16)), float(rng.integers(200, 900))
            sel = 0.3 if label == "dots" else 0.01
            rows += [(s, "cost/tokens_generated", gen_tok), (s, "cost/samples", smp),
                     (s, "cost/reference_samples", ref), (s, "cost/tokens_trained", trained),
                     (s, "time/generate", 0.002 * gen_tok + 0.02 * (smp + ref)),
                     (s, "time/reward", 0.0), (s, "time/extra_rollouts", 0.0),
                     (s, "time/logprobs", 0.0), (s, "time/update", 0.004 * trained + 0.1),
                     (s, "time/select", sel)]
        runs[f"run{r}"] = (label, costclock.step_table(rows))
    cal = costclock.fit(runs, machine_gflops=50.0, note="synthetic")
    assert cal.units == pytest.approx({"gen_token": 0.002, "gen_sample": 0.02,
                                       "train_token": 0.004, "train_step": 0.1})
    assert cal.select_s == pytest.approx({"dots": 0.3, "uniform": 0.01})
    assert cal.r2["rollout"] == pytest.approx(1.0) and cal.steps == 120
    again = costclock.Calibration.from_json(cal.to_json())
    assert again.units == cal.units and again.runs == ["run0", "run1", "run2"]


def test_uncalibrated_selection_is_probe_corrected() -> None:
    t = costclock.step_table(_metrics(1))
    # measured selection 0.5 - 0.2 = 0.3 s on a 50 GFLOP/s machine: 0.15 s at the calibration's 100
    cost = costclock.step_costs(t, "greso", CAL, run_gflops=50.0)
    assert cost.select_fallback
    assert cost.seconds[0] == pytest.approx(0.1 + 0.1 + 0.102 + 0.5 + 0.15)


def test_records_without_counts_have_no_step_table() -> None:
    assert costclock.step_table([(1, "time/step", 1.0)]).empty
    with pytest.raises(ValueError, match="no calibration run"):
        costclock.fit({"r": ("uniform", costclock.step_table([]))})


def test_calibrate_folder_writes_calibration_json(tmp_path: Path) -> None:
    for seed in range(2):
        rec = RunRecord(tmp_path / "runs" / f"p__uniform__s{seed}")
        rec.start("{}\n")
        for step, name, value in _metrics(5):
            rec.log_step(step, {name: value})
        rec.write_summary({"run_id": rec.root.name, "strategy": "uniform", "label": "uniform",
                           "machine_gflops": 90.0 + seed})
    cal = costclock.calibrate_folder(tmp_path, note="quiet test machine")
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["note"] == "quiet test machine" and saved["steps"] == 10
    assert saved["machine_gflops"] == pytest.approx(90.5)
    assert costclock.load(tmp_path / "calibration.json").units == pytest.approx(cal.units)
    assert not math.isnan(cal.r2["training"])


def test_the_calibration_prices_what_the_leaderboard_runs() -> None:
    # the calibration must run exactly the leaderboard's strategies with its settings (only its
    # length and evaluation differ), or the prices it fits are for other work
    from harness.protocol import sweep

    board = sweep.load_spec(sweep.find_sweep_file("leaderboard"))
    cal = sweep.load_spec(sweep.find_sweep_file("calibration"))
    others = sweep.load_spec(sweep.find_sweep_file("calibration-pairs"))
    assert cal.strategies == board.strategies
    assert set(cal.pairs) | set(others.pairs) == set(board.pairs)
    assert [s.name for s in others.strategies] == ["uniform"]
    short = {"train.steps", "train.checkpoint_every", "eval.every"}
    for spec in (cal, others):
        kept = [o for o in spec.overrides if o.split("=")[0] not in short]
        assert kept == board.overrides, spec.name
