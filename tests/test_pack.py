"""Packed run records read exactly like the originals, and packing is deterministic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.protocol import pack, sweep
from harness.runs.paths import PROJECT_ROOT
from harness.runs.records import RunRecord

SUITE_RUNS = PROJECT_ROOT / "results" / "suite-check" / "runs"
RUN = "tiny600k-chainsum__uniform__61be772e__s0"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    if not (SUITE_RUNS / RUN).is_dir():
        pytest.skip("the committed suite-check records are absent")
    (tmp_path / "runs").mkdir()
    shutil.copytree(SUITE_RUNS / RUN, tmp_path / "runs" / RUN)
    return tmp_path


def test_a_packed_run_reads_back_the_same_records(results: Path) -> None:
    run = results / "runs" / RUN
    before = RunRecord(run)
    metrics, evals, tiers = before.read_metrics(), before.read_eval(), before.read_eval_tiers()
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "state.pt").write_bytes(b"x" * 1000)
    res = pack.pack_results(results)
    assert res.packed == 1 and res.bytes_after < res.bytes_before / 3
    assert not (run / "metrics.csv").exists() and (run / "metrics.csv.gz").is_file()
    assert not (run / "checkpoint").exists()
    after = RunRecord(run)
    assert after.read_metrics() == metrics and after.read_eval() == evals
    assert after.read_eval_tiers() == tiers
    assert sweep.logged_step(run) == 150  # a sweep still sees it finished at its last step


def test_packing_is_deterministic_and_leaves_unfinished_runs(results: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(results, other)
    unfinished = results / "runs" / "x__uniform__00000000__s0"
    shutil.copytree(results / "runs" / RUN, unfinished)
    (unfinished / "summary.json").unlink()
    assert pack.pack_results(results).skipped_unfinished == 1
    pack.pack_results(other)
    a = (results / "runs" / RUN / "metrics.csv.gz").read_bytes()
    assert a == (other / "runs" / RUN / "metrics.csv.gz").read_bytes()
    assert (unfinished / "metrics.csv").is_file() and not (unfinished / "metrics.csv.gz").exists()


def test_the_sweep_plan_estimates_the_cost_left_from_finished_runs(results: Path) -> None:
    import json

    from harness.protocol import sweep as sw
    from harness.protocol import sweepcost

    spec = sw.SweepSpec(name="t", path=Path("<test>"), description="", pairs=["tiny600k-chainsum"],
                        strategies=[sw.StrategyItem(name="uniform"), sw.StrategyItem(name="mopps")],
                        seeds=[0, 3], overrides=["train.threads=1"], targets={}, text="")
    plan = sw.make_plan(spec, results)
    s = json.loads((results / "runs" / RUN / "summary.json").read_text())
    per_run_h = (s["clock_s"] + s["eval_s"]) / 3600
    line = sweepcost.estimate_cost(plan)
    assert line.startswith(f"cost: 1 finished runs took {per_run_h:.1f} core-hours")
    # seed 3 of uniform at seed 0's rate; mopps, with no finished run of its own, at the pair's
    assert f"the 3 left need about {3 * per_run_h:.1f} core-hours" in line
    assert line.endswith("(1 priced by finished runs of the same pair and strategy, "
                         "2 by other strategies on the pair)")
    assert line in sw.format_plan(plan)
    # the sweep's running estimate: the same prices, per run, over the runs at once
    rate, tiers = sweepcost.prices(plan)
    assert tiers == [1, 0, 2, 0] and len(rate) == 3
    per_step = per_run_h * 3600 / s["steps"]
    assert all(abs(r - per_step) < 1e-9 for r in rate.values())
    left = {run_id: s["steps"] for run_id in rate}
    assert abs(sweepcost.hours_left(rate, left, 2) - 1.5 * per_run_h) < 1e-9
    assert sweepcost.hours_left(rate, {**left, "unpriced": 10}, 2) is None
