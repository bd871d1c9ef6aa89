"""The suite's regime criteria on hand-made records."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd

from harness.instrument import criteria


def _run(seed: int, accs: list[float], every: int = 10,
         minutes: float = 1.0) -> criteria.UniformRun:
    steps = [i * every for i in range(len(accs))]
    curve = pd.DataFrame({"step": steps, "clock_s": [s * 1.0 for s in steps],
                          "tokens": steps, "samples": steps, "accuracy": accs})
    return criteria.UniformRun(seed=seed, curve=curve, generate_share=0.4, train_minutes=minutes,
                               eval_minutes=0.5, threads=1, steps=steps[-1], response_tokens=20.0)


PROBE = {"mean_pass_rate": 0.4, "never_solved": 0.25, "always_solved": 0.12,
         "tier_pass_rate": {"a": 0.9, "b": 0.5, "c": 0.3, "x": 0.0}}
WEIGHTS = {"shipped": True, "checksum_ok": True}


def _row(runs, probe=PROBE, metric="exact", **kw):
    return criteria.pair_row("p", probe, runs, metric=metric, n_eval=1024, eval_samples=2,
                             weights=WEIGHTS, lengths_by_tier={"a": 10, "b": 20, "c": 30, "x": 15},
                             **kw)


def test_a_pair_that_rises_and_plateaus_passes() -> None:
    runs = [_run(s, [0.40, 0.50, 0.58, 0.60, 0.60, 0.60]) for s in range(3)]
    row = _row(runs)
    assert abs(row["min_rise"] - 0.2) < 1e-12
    # the trailing mean of three evaluations first reaches 0.60 at step 50 (step 40: 0.593)
    assert row["steps_to_target"] == [50.0, 50.0, 50.0]
    assert row["step_spread"] == 0.0
    assert row["all_ok"]


def test_each_criterion_fails_on_its_own() -> None:
    good = [_run(s, [0.40, 0.50, 0.58, 0.60, 0.60, 0.60]) for s in range(3)]
    assert not _row(good, probe={**PROBE, "never_solved": 0.1})["spread_ok"]
    assert not _row(good, probe={**PROBE, "mean_pass_rate": 0.7})["spread_ok"]
    small = [_run(s, [0.40, 0.45, 0.50, 0.54, 0.54, 0.54]) for s in range(3)]
    assert not _row(small)["room_ok"]  # +0.14
    slow = [_run(0, [0.4, 0.5, 0.58, 0.6, 0.6, 0.6, 0.6, 0.6]),
            _run(1, [0.4, 0.45, 0.5, 0.55, 0.58, 0.6, 0.6, 0.6]),
            _run(2, [0.4, 0.5, 0.58, 0.6, 0.6, 0.6, 0.6, 0.6])]
    row = _row(slow)
    assert row["steps_to_target"] == [50.0, 70.0, 50.0]
    assert math.isclose(row["step_spread"], 20 / 50)
    assert not row["noise_ok"]
    assert not _row(good, metric="sampled")["noise_ok"]  # SE sqrt(.24/2048) = 0.011
    assert not _row([_run(s, [0.40, 0.50, 0.58, 0.60, 0.60, 0.60], minutes=2) for s in range(3)])[
        "cost_ok"]
    assert not criteria.pair_row("p", PROBE, good, metric="exact", n_eval=1024, eval_samples=1,
                                 weights={"shipped": False}, lengths_by_tier={})["all_ok"]


def test_a_seed_that_never_reaches_makes_the_spread_infinite() -> None:
    runs = [_run(0, [0.4, 0.6, 0.6]), _run(1, [0.4, 0.6, 0.6]), _run(2, [0.4, 0.5, 0.55])]
    target, steps = criteria.steps_to_own_target(runs)
    assert math.isclose(target, (0.4 + 0.6 + 0.6) / 3)
    assert steps[:2] == [20.0, 20.0]  # smoothed (0.4+0.6+0.6)/3 at step 20
    assert math.isinf(steps[2])
    assert math.isinf(criteria.step_spread(steps))


def test_se_of_a_sampled_evaluation() -> None:
    assert criteria.se_of_evaluation("exact", 0.5, 1024, 1) == 0.0
    assert math.isclose(criteria.se_of_evaluation("sampled", 0.5, 1024, 4),
                        math.sqrt(0.25 / 4096))


def test_table_marks_failures() -> None:
    runs = [_run(s, [0.40, 0.45, 0.50, 0.54, 0.54, 0.54]) for s in range(3)]
    text = criteria.format_table([_row(runs)])
    assert "| p | 3 |" in text and "**no**" in text


def test_criteria_import_no_torch() -> None:
    code = "import sys, harness.instrument.criteria; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_length_follows_difficulty_over_solved_tiers() -> None:
    rates = {"a": 0.9, "b": 0.5, "c": 0.3, "never": 0.0}
    assert criteria.length_grows_with_difficulty({"c": 30, "a": 10, "b": 20, "never": 5}, rates)
    assert not criteria.length_grows_with_difficulty({"a": 30, "b": 20, "c": 10}, rates)
    assert not criteria.length_grows_with_difficulty({"a": 10, "b": 20}, rates)  # too few tiers
