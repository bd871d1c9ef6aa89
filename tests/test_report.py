"""``selbench report`` on synthetic run records written with the real writer, plus (slow) on two
real short runs."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from harness.protocol import report, reportrecords, reporttables
from harness.runs.records import RunRecord

EVERY = 2  # steps between evaluations
# accuracy at steps 0, 2, 4, 6; the trailing mean of 3 is in the comment
BASE = [0.3, 0.3, 0.6, 0.6]  # 0.3, 0.3, 0.4, 0.5: uniform's target is 0.5, met at step 6
QUICK = [0.3, 0.6, 0.6, 0.6]  # 0.3, 0.45, 0.5, 0.6: meets 0.5 at step 4
FLAT = [0.3, 0.3, 0.3, 0.3]  # never


def write_run(results: Path, pair: str, strategy: str, seed: int, acc: list[float],
              sec_per_step: float, finished: bool = True, replay: bool = False,
              eff: float = 0.5, ref_samples: int = 0, extra_per_step: float = 0.0,
              gflops: float | None = None, repeat: float | None = None) -> Path:
    label = strategy + ("+rr" if replay else "")
    run_id = f"{pair}__{label}__cafe__s{seed}"
    rec = RunRecord(results / "runs" / run_id)
    rec.start("{}\n")
    steps = EVERY * (len(acc) - 1)
    samples_per_step = 64 + ref_samples
    rec.log_eval({"step": 0, "clock_s": 0.0, "samples": 0, "tokens": 0, "accuracy": acc[0]})
    for step in range(1, steps + 1):
        rec.log_step(step, {"train/effective_frac": eff + 0.01 * (step % 3),
                            "time/step": sec_per_step, "time/generate": 0.5 * sec_per_step,
                            "time/update": 0.5 * sec_per_step, "cost/tokens_generated": 600,
                            "cost/tokens_trained": 400, "cost/samples": 64,
                            "cost/reference_samples": ref_samples,
                            **({} if repeat is None else {"select/repeat_frac": repeat * step / steps})})
        if step % EVERY == 0:
            rec.log_eval({"step": step, "clock_s": step * sec_per_step,
                          "samples": step * samples_per_step, "tokens": step * 1000,
                          "accuracy": acc[step // EVERY], "extra_s": step * extra_per_step})
    if finished:
        rec.write_summary({
            "run_id": run_id, "pair": pair, "strategy": strategy, "replay": replay,
            "label": label, "seed": seed, "steps": steps, "initial_accuracy": acc[0],
            "final_accuracy": acc[-1], "best_accuracy": max(acc),
            "clock_s": steps * sec_per_step, "extra_s": steps * extra_per_step,
            "samples": steps * samples_per_step,
            "tokens_generated": steps * 600, "tokens_trained": steps * 400,
            "reference_samples": steps * ref_samples, "executor": "inprocess",
            "git_commit": "abc1234", "date": f"2026-01-0{seed + 1}T00:00:00+00:00",
            "versions": {"numpy": "2.4.6", "torch": "2.13.0+cpu"},
            **({} if gflops is None else {"machine_gflops": gflops})})
    return rec.root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built") / "results"
    for seed in range(3):
        for pair in ("pair-a", "pair-b"):
            write_run(root, pair, "uniform", seed, BASE, 1.0, eff=0.4)
            write_run(root, pair, "dots", seed, QUICK, 1.0, replay=True, eff=0.8,
                      ref_samples=16)
        # fewer steps, timed on a machine twice as slow: the same counted work per step
        write_run(root, "pair-a", "slow", seed, QUICK, 2.0)
        write_run(root, "pair-a", "never", seed, FLAT, 1.0)
        write_run(root, "pair-c", "dots", seed, QUICK, 1.0, replay=True,
                  ref_samples=16)  # no uniform here
    write_run(root, "pair-a", "oracle", 0, QUICK, 1.0, finished=False)
    # cost clock: 1 ms per trained token and nothing else, so 0.4 s per step for every run
    (root / "calibration.json").write_text(json.dumps(
        {"units": {"gen_token": 0.0, "gen_sample": 0.0, "train_token": 0.001, "train_step": 0.0},
         "select_s": dict.fromkeys(["uniform", "dots+rr", "slow", "never", "dots"], 0.0),
         "machine_gflops": 20.0, "method": "by hand", "note": "test fixture"}))
    return root


@pytest.fixture()
def results(built: Path, tmp_path: Path) -> Path:
    """A private copy per test (the records are written once: every step is fsynced)."""
    return Path(shutil.copytree(built, tmp_path / "results"))


def test_report_files_and_key_numbers(results: Path) -> None:
    a, written = report.report(results, reps=200)
    out = results / "report"
    names = {p.name for p in written}
    # 3 seeds per strategy: no performance profile (fewer than 10 runs), the dot plot instead
    assert names == {"leaderboard.md", "leaderboard.csv", "table1.md", "table1.csv",
                     "pairs.csv", "runs.csv", "claims.csv", "accuracy_vs_time.png",
                     "accuracy_vs_cost.png", "speedup.png", "runs_dotplot.png",
                     "effective_frac.png"}
    for png in out.glob("*.png"):
        img = mpimg.imread(png)
        assert img.shape[0] > 400 and img.shape[1] > 800, png  # ~150 dpi figures

    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 * 7 - 3  # pair-c has no target: its 3 runs are not scored
    assert runs["target"].to_numpy() == pytest.approx([0.5] * len(runs))
    dots = runs[(runs["pair"] == "pair-a") & (runs["label"] == "dots+rr")]
    assert list(dots["time_to_target_s"]) == [4.0] * 3
    assert list(dots["steps_to_target"]) == [4.0] * 3
    assert list(dots["tokens_to_target"]) == [4000.0] * 3
    never = runs[runs["label"] == "never"]
    assert never["censored"].all() and (never["time_to_target_s"] == math.inf).all()

    assert list(dots["cost_to_target_s"]) == pytest.approx([1.6] * 3)  # 4 steps x 0.4 s
    assert a.rank_clock == "cost"

    pairs = pd.read_csv(out / "pairs.csv").set_index(["pair", "label"])
    assert pairs.loc[("pair-a", "dots+rr"), "speedup"] == pytest.approx(1.5)
    # the slow machine costs it on the wall clock, not on the cost clock (same work per step)
    assert pairs.loc[("pair-a", "slow"), "speedup_wall"] == pytest.approx(0.75)
    assert pairs.loc[("pair-a", "slow"), "speedup"] == pytest.approx(1.5)
    assert pairs.loc[("pair-a", "never"), "speedup"] == 0.0
    t1 = pd.read_csv(out / "table1.csv").set_index(["pair", "label"])
    slow = t1.loc[("pair-a", "slow")]
    assert slow["steps_saved_pct"] == pytest.approx(100 / 3)
    assert slow["per_step_time_saved_pct"] == pytest.approx(-100.0)
    assert slow["total_time_saved_pct"] == pytest.approx(-100 / 3)
    assert slow["total_cost_saved_pct"] == pytest.approx(100 / 3)

    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["label"]) == ["dots+rr", "slow", "uniform", "never"]
    # uniform is the reference, listed at 1 by definition and not ranked
    assert list(board["rank"].fillna(0)) == [1, 2, 0, 3]
    assert list(board["reference"]) == [False, False, True, False]
    assert board.iloc[2]["iqm_speedup"] == 1.0 and board.iloc[2]["method"] == "reference"
    assert board.set_index("label").loc["slow", "iqm_wall"] == pytest.approx(0.75)
    top = board.iloc[0]
    assert (top["iqm_speedup"], top["iqm_lo"], top["iqm_hi"]) == pytest.approx((1.5, 1.5, 1.5))
    assert top["poi"] == 1.0 and top["pairs_reached"] == "2/2"
    assert top["samples_mean"] == pytest.approx(6 * 80)  # reference rollouts included
    assert top["reference_samples_mean"] == pytest.approx(6 * 16)
    assert top["tokens_mean"] == pytest.approx(6 * 1000)
    assert board.set_index("label").loc["never", "pairs_reached"] == "0/1"

    md = (out / "leaderboard.md").read_text()
    assert "1 unfinished run(s)" in md and "pair-a__oracle__cafe__s0" in md
    assert "pair pair-c: no uniform runs and no --target" in md
    assert "`abc1234` (21 runs)" in md and "numpy 2.4.6" in md
    assert "| 1 | dots+rr | 1.50 [1.50, 1.50] |" in md
    assert "| ref | uniform | 1.00 (reference) |" in md
    assert "performance profile skipped" in md
    assert "| pair-a | slow | 4 | 33.33% | -100.00% | -33.33% | 33.33% |" in (
        out / "table1.md").read_text()
    assert "calibration.json" in md and "1e+03 µs per trained token" in md


def test_report_is_a_pure_function_of_the_records(results: Path, tmp_path: Path) -> None:
    _, first = report.report(results, reps=50)
    _, second = report.report(results, out=tmp_path / "again", reps=50)
    assert [p.name for p in first] == [p.name for p in second]
    for one, two in zip(first, second, strict=True):  # figures included: byte for byte
        assert one.read_bytes() == two.read_bytes(), one.name


def test_fixed_target_and_strategy_without_uniform(results: Path) -> None:
    a, _ = report.report(results, fixed_targets={"pair-c": 0.55}, reps=100)
    c = a.pairs[a.pairs["pair"] == "pair-c"].iloc[0]
    # QUICK's smoothed accuracy reaches 0.55 at step 6; no uniform on pair-c: no speedup
    assert c["median_time_s"] == 6.0 and math.isnan(c["speedup"])
    assert "no uniform runs" in c["note"]
    assert a.targets.set_index("pair").loc["pair-c", "source"] == "fixed"


def test_sweep_file_targets_are_read_and_cli_targets_win(results: Path) -> None:
    meta = results / "sweeps" / "s1" / "sweep.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"name": "s1", "targets": {"pair-c": 0.55}}))
    a, _ = report.report(results, reps=50)
    assert a.targets.set_index("pair").loc["pair-c", "source"] == "fixed"
    assert a.pairs.set_index("pair").loc["pair-c", "median_time_s"] == 6.0
    a, _ = report.report(results, fixed_targets={"pair-c": 0.2}, reps=50)
    assert a.targets.set_index("pair").loc["pair-c", "target"] == 0.2
    other = results / "sweeps" / "s2" / "sweep.json"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps({"name": "s2", "targets": {"pair-c": 0.6}}))
    with pytest.raises(report.ReportError, match="sweeps disagree on the target of pair-c"):
        report.report(results, reps=50)


def test_only_uniform_and_one_strategy(tmp_path: Path) -> None:
    for seed in range(2):
        write_run(tmp_path, "p", "uniform", seed, BASE, 1.0)
        write_run(tmp_path, "p", "dots", seed, QUICK, 1.0, replay=True)
    a, written = report.report(tmp_path, reps=50)
    assert list(a.leaderboard["label"]) == ["dots+rr", "uniform"]
    assert all(p.exists() for p in written)


def test_bad_input_errors(tmp_path: Path, results: Path) -> None:
    with pytest.raises(report.ReportError, match="does not exist"):
        report.report(tmp_path / "nothing")
    write_run(tmp_path, "p", "uniform", 0, BASE, 1.0, finished=False)
    with pytest.raises(report.ReportError, match="no finished runs"):
        report.report(tmp_path)
    # a second config of the same strategy and seed would be averaged in silently otherwise
    dup = results / "runs" / "pair-a__uniform__cafe__s0"
    other = results / "runs" / "pair-a__uniform__beef__s0"
    other.mkdir()
    for name in ("eval.csv", "metrics.csv"):
        (other / name).write_bytes((dup / name).read_bytes())
    summary = json.loads((dup / "summary.json").read_text())
    (other / "summary.json").write_text(json.dumps({**summary, "run_id": other.name}))
    with pytest.raises(report.ReportError, match="two finished runs for pair pair-a"):
        report.report(results)
    with pytest.raises(report.ReportError, match="PAIR=VALUE"):
        report.parse_targets(["pair-a:0.5"])
    assert report.parse_targets(["pair-a=0.5"]) == {"pair-a": 0.5}


def test_cli_bad_target_is_one_line(results: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(results),
                           "--target", "pair-a=high"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--target expects PAIR=VALUE" in lines[0], proc.stderr


def test_a_lower_target_rise_closes_the_interval_a_median_target_leaves_open(
        tmp_path: Path) -> None:
    """At uniform's median final, resampling uniform's seeds often gives a median that never
    arrives, so the interval is open above; at 60% of its rise every uniform seed arrives and a
    strategy that is slower on every seed is shown slower."""
    ends = [0.5, 0.6, 0.7]  # uniform's seeds end here: one of three stays below the median
    for seed, end in enumerate(ends):
        # uniform rises over 4 evaluations, dots (ending a little higher) over 16
        write_run(tmp_path, "p", "uniform", seed,
                  [0.3 + (end - 0.3) * min(1.0, i / 4) for i in range(17)], 1.0)
        write_run(tmp_path, "p", "dots", seed,
                  [0.3 + (end + 0.05 - 0.3) * i / 16 for i in range(17)], 1.0)
    open_, _ = report.report(tmp_path, reps=200, out=tmp_path / "r1")
    closed, _ = report.report(tmp_path, reps=200, out=tmp_path / "r2", target_rise=0.6)
    wide, narrow = (a.leaderboard.set_index("label").loc["dots"] for a in (open_, closed))
    assert math.isinf(wide["iqm_hi"])
    assert narrow["iqm_hi"] < 1.0
    assert closed.targets["target"].iloc[0] == pytest.approx(0.3 + 0.6 * (0.6 - 0.3))
    with pytest.raises(report.ReportError, match="--target-rise must be in"):
        report.report(tmp_path, target_rise=1.2)


@pytest.mark.slow
def test_report_on_two_real_runs(tmp_path: Path) -> None:
    """Two real short runs on tiny-b-arith (uniform, oracle), then the CLI report on them."""
    env = dict(os.environ)
    common = ["--pair", "tiny-b-arith", "--seed", "0", "--steps", "4", "--set",
              "train.threads=1", "--set", "eval.every=2", "--set", "eval.max_questions=64",
              "--results", str(tmp_path), "--quiet"]
    for strategy in ("uniform", "oracle"):
        subprocess.run([sys.executable, "-m", "harness.cli", "run", "--strategy", strategy,
                        *common], check=True, env=env, timeout=1800)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(tmp_path),
                           "--reps", "200"], capture_output=True, text=True, check=True,
                          env=env, timeout=600)
    out = Path(proc.stdout.strip())
    assert out == tmp_path / "report"
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["label"]) == ["oracle", "oracle" + reportrecords.OFF_CLOCK_SUFFIX, "uniform"]
    # the target is uniform's smoothed final accuracy, recomputed here from its eval.csv
    uni = next((tmp_path / "runs").glob("tiny-b-arith__uniform__*"))
    acc = [r["accuracy"] for r in RunRecord(uni).read_eval()]
    assert runs["target"].iloc[0] == pytest.approx(sum(acc[-3:]) / 3)
    board = pd.read_csv(out / "leaderboard.csv").set_index("label")
    if acc[0] < runs["target"].iloc[0]:
        # one seed reaches its own smoothed final accuracy, at its own median time
        assert bool(runs.set_index("label").loc["uniform", "reached"])
        assert board.loc["uniform", "iqm_speedup"] == pytest.approx(1.0)
    else:  # four steps may not improve on the start: then there is no speedup, and it says so
        assert "met before training" in (out / "leaderboard.md").read_text()
    assert board.loc["oracle", "reference_samples_mean"] > 0  # the oracle's extra rollouts
    for png in ("accuracy_vs_time.png", "speedup.png", "runs_dotplot.png",
                "effective_frac.png"):
        img = mpimg.imread(out / png)
        # a drawn figure at ~150 dpi (one-row strips such as speedup.png are short and wide)
        assert min(img.shape[:2]) > 300 and img[..., :3].std() > 0.05, png


def test_finished_only_leaves_the_unfinished_runs_unsaid(results: Path, tmp_path: Path) -> None:
    report.report(results, out=tmp_path / "all", reps=50)
    report.report(results, out=tmp_path / "snap", reps=50, finished_only=True)
    assert "unfinished run(s)" in (tmp_path / "all" / "leaderboard.md").read_text()
    assert "unfinished" not in (tmp_path / "snap" / "leaderboard.md").read_text()
    # the same finished records give the same numbers
    for name in ("leaderboard.csv", "runs.csv", "pairs.csv"):
        assert (tmp_path / "all" / name).read_text() == (tmp_path / "snap" / name).read_text()


def test_oracle_is_reported_on_and_off_the_clock(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "pair-a", "uniform", seed, BASE, 1.0)
        # same steps to target as QUICK, but each step pays 1.5 s of estimation rollouts
        write_run(root, "pair-a", "oracle", seed, QUICK, 2.0, ref_samples=32, extra_per_step=1.5)
    a = report.analyse(reportrecords.load_records(root), reps=200)
    runs = a.runs.set_index(["label", "seed"])
    # uniform meets 0.5 at step 6 (6 s); oracle at step 4: 8 s on the clock, 2 s off it
    assert runs.loc[("oracle", 0), "time_to_target_s"] == pytest.approx(8.0)
    assert runs.loc[("oracle (off clock)", 0), "time_to_target_s"] == pytest.approx(2.0)
    assert runs.loc[("uniform", 0), "time_to_target_s"] == pytest.approx(6.0)
    # the off-clock twin is a second reading of the same runs, not more runs
    assert "- runs: 4 finished" in reporttables._provenance(a.records.summaries)


def test_no_target_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    write_run(tmp_path, "p", "dots", 0, QUICK, 1.0)
    with pytest.raises(report.ReportError, match="--target PAIR=ACCURACY"):
        report.report(tmp_path, reps=10)
    a, _ = report.report(tmp_path, fixed_targets={"p": 0.5}, reps=10)
    assert a.runs["reached"].all()


def test_tier_gains_table(tmp_path: Path) -> None:
    # two tiers; seed 0 and 1 of each strategy; gain = mean(last) - mean(first) per tier
    for seed, (easy, hard) in enumerate([((0.8, 0.9), (0.1, 0.3)), ((0.7, 0.9), (0.2, 0.2))]):
        for strategy in ("uniform", "dots"):
            root = write_run(tmp_path, "p", strategy, seed, BASE, 1.0)
            rec = RunRecord(root)
            for step, e, h in ((0, easy[0], hard[0]), (6, easy[1], hard[1])):
                rec.log_eval_tiers(step, {"easy": e, "hard": h})
            if strategy == "dots":  # dots trained on hard questions 3/4 of the time (uniform:
                for step in (1, 2):  # recorded before tier shares existed)
                    rec.log_step(step, {"train/tier_share/easy": 0.5 - 0.25 * step + 0.25 * seed,
                                        "train/tier_share/hard": 0.5 + 0.25 * step - 0.25 * seed})
    a, written = report.report(tmp_path, reps=10)
    gains = pd.read_csv(tmp_path / "report" / "tiers.csv")
    row = gains[(gains["label"] == "dots") & (gains["tier"] == "hard")].iloc[0]
    assert row["seeds"] == 2
    assert row["initial"] == pytest.approx(0.15) and row["final"] == pytest.approx(0.25)
    assert row["gain"] == pytest.approx(0.10)
    # seed 0 steps: 0.75, 1.0; seed 1: 0.5, 0.75 -> mean over steps then seeds 0.75
    assert row["trained_share"] == pytest.approx(0.75)
    assert math.isnan(gains[(gains["label"] == "uniform") & (gains["tier"] == "hard")]
                      .iloc[0]["trained_share"])
    assert "| p | dots | hard | 2 | 0.150 | 0.250 | +0.100 | 0.75 |" in (
        tmp_path / "report" / "tiers.md").read_text()
    assert (tmp_path / "report" / "tiers.md") in written


def test_every_strategy_gets_its_own_colour() -> None:
    from harness.protocol.figures import colours as _colours

    # as read from the records: one label per run, 9 runs of most, 3 of one (the dots-b32 folder)
    counts = {"uniform": 9, "dots+rr": 9, "dots-cooldown": 9, "dots-cooldown+rr": 9,
              "dots-cooldown+rr@cap128": 9, "dots-cooldown+rr@s75": 3}
    colours = _colours([lb for lb, n in counts.items() for _ in range(n)])
    assert colours["uniform"] == "black"
    assert len(set(colours.values())) == len(colours) == 6
    # the leaderboard: uniform and eleven more, more than matplotlib's ten colours
    board = ["uniform", "dots", "dots+rr", "dots-cooldown", "dots-cooldown+rr", "oracle",
             "oracle (off clock)", "dapo", "greso", "mopps", "speed", "pods"]
    assert len(set(_colours(board).values())) == len(board)


def test_arms_timed_on_machines_of_different_speed_are_flagged(tmp_path: Path) -> None:
    """The matmul probe's medians per strategy: 20% apart on pair-a is flagged with both
    values, 5% apart on pair-b is not, and records without the probe are left out."""
    root = tmp_path / "results"
    for seed in range(3):
        write_run(root, "pair-a", "uniform", seed, BASE, 1.0, gflops=20.0 + seed)  # median 21
        write_run(root, "pair-a", "dots", seed, QUICK, 1.0, gflops=25.2)
        write_run(root, "pair-b", "uniform", seed, BASE, 1.0, gflops=20.0)
        write_run(root, "pair-b", "dots", seed, QUICK, 1.0, gflops=21.0)
        write_run(root, "pair-c", "uniform", seed, BASE, 1.0)  # recorded before the probe
        write_run(root, "pair-c", "dots", seed, QUICK, 1.0, gflops=40.0)
    report.report(root, reps=50)
    out = root / "report"
    notes = [line for line in (out / "leaderboard.md").read_text().splitlines()
             if "different speeds" in line]
    assert len(notes) == 1
    assert "pair pair-a" in notes[0] and "dots 25.2, uniform 21.0" in notes[0]
    assert "20% apart" in notes[0]
    board = pd.read_csv(out / "leaderboard.csv").set_index("label")
    assert board.loc["uniform", "machine_gflops"] == pytest.approx(20.0)  # over all its runs
    assert board.loc["dots", "machine_gflops"] == pytest.approx(25.2)


def test_the_committed_leaderboard_report_is_what_its_committed_records_give(tmp_path) -> None:
    """results/leaderboard/report/ (the published leaderboard, claims and figures) regenerated
    from the committed records alone: every table is byte-identical, every figure is there."""
    from harness.protocol import report as report_mod
    from harness.runs.paths import PROJECT_ROOT

    results = PROJECT_ROOT / "results" / "leaderboard"
    if not (results / "runs").is_dir():
        pytest.skip("no committed leaderboard records in this checkout")
    # the runs git holds, where this is a git checkout: a sweep may be writing others beside
    # them, and finishing some that are not committed yet; else (an exported tree) the
    # finished ones
    try:
        tracked = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "--",
                                  "results/leaderboard/runs/*/summary.json"],
                                 capture_output=True, text=True).stdout
    except OSError:  # no git here
        tracked = ""
    only = {Path(line).parent.name for line in tracked.splitlines()} or None
    report_mod.report(results, out=tmp_path / "report", finished_only=True, only_runs=only)
    committed = results / "report"
    made = {p.name for p in (tmp_path / "report").iterdir()}
    assert made == {p.name for p in committed.iterdir()}
    for name in sorted(made):
        if name.endswith((".md", ".csv")):
            assert (tmp_path / "report" / name).read_text() == (committed / name).read_text(), name
    # and the sensitivity check beside it (scripts/leaderboard_snapshot.sh)
    side = results / "report-rise90"
    if side.is_dir():
        report_mod.report(results, out=tmp_path / "side", finished_only=True, only_runs=only,
                          target_rise=0.9)
        for name in sorted(p.name for p in side.iterdir() if p.suffix in (".md", ".csv")):
            assert (tmp_path / "side" / name).read_text() == (side / name).read_text(), name


def test_records_keep_each_runs_largest_repeat_share(tmp_path: Path) -> None:
    from harness.protocol.reportrecords import load_records

    root = tmp_path / "results"
    write_run(root, "p", "uniform", 0, BASE, 1.0)  # recorded before the metric: unknown
    write_run(root, "p", "greso", 0, BASE, 1.0, repeat=0.0)
    write_run(root, "p", "mopps", 0, BASE, 1.0, repeat=0.5)
    got = load_records(root).summaries.set_index("label")["max_repeat_frac"]
    assert math.isnan(got["uniform"]) and got["greso"] == 0.0 and got["mopps"] == 0.5


def test_a_figure_this_report_does_not_draw_is_not_left_from_an_earlier_one(
        results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "performance_profile.png").write_bytes(b"stale")  # fewer than 10 runs: not drawn
    _, written = report.report(results, out=out, reps=50)
    assert not (out / "performance_profile.png").exists()
    assert {p.name for p in out.glob("*.png")} == {p.name for p in written if p.suffix == ".png"}
