"""Time-to-target statistics on small hand-computed cases, censoring included."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from rliable import metrics

from harness.protocol import crosspair, stats

INF = math.inf


def _evals(runs: dict[tuple[str, str, int], tuple[list[float], list[float]]],
           step_every: int = 10) -> pd.DataFrame:
    """One eval row per (clock, accuracy) point; steps 0, 10, 20, ...; tokens = 100 x step."""
    rows = []
    for (pair, label, seed), (clock, acc) in runs.items():
        for i, (c, a) in enumerate(zip(clock, acc, strict=True)):
            rows.append({"run_id": f"{pair}__{label}__s{seed}", "pair": pair, "label": label,
                         "seed": seed, "step": i * step_every, "clock_s": c,
                         "samples": 8.0 * i * step_every, "tokens": 100.0 * i * step_every,
                         "accuracy": a})
    return pd.DataFrame(rows)


def test_smooth_is_a_trailing_mean_of_three() -> None:
    np.testing.assert_allclose(stats.smooth([0.1, 0.2, 0.3, 0.4, 1.0]),
                               [0.1, 0.15, 0.2, 0.3, 0.5666666666666667])
    np.testing.assert_allclose(stats.smooth([0.5]), [0.5])


def test_first_crossing_uses_the_smoothed_curve_and_censors() -> None:
    curve = pd.DataFrame({"step": [0, 2, 4, 6], "clock_s": [0.0, 10.0, 20.0, 30.0],
                          "samples": [0, 16, 32, 48], "tokens": [0, 200, 400, 600],
                          "accuracy": [0.1, 0.3, 0.5, 0.4]})  # smoothed 0.1, 0.2, 0.3, 0.4
    c = stats.first_crossing(curve.iloc[::-1], 0.3)  # row order does not matter
    assert (c.reached, c.time_s, c.steps, c.tokens, c.samples) == (True, 20.0, 4.0, 400.0, 32.0)
    # the raw curve touches 0.5 at step 4, the smoothed one never: censored, not dropped
    c = stats.first_crossing(curve, 0.45)
    assert not c.reached and c.time_s == c.steps == c.tokens == INF


@pytest.mark.parametrize(("values", "expected"), [
    ([3.0, 1.0, 2.0], 2.0), ([1.0, 2.0, 3.0, 4.0], 2.0), ([5.0, INF], 5.0),
    ([INF, INF, 1.0], INF), ([7.0], 7.0), ([INF], INF)])
def test_censored_median(values: list[float], expected: float) -> None:
    assert stats.censored_median(values) == expected


def test_censored_median_of_nothing_is_nan() -> None:
    assert math.isnan(stats.censored_median([]))


def test_ratio_censoring_rules() -> None:
    np.testing.assert_array_equal(stats.ratio(100.0, np.array([50.0, INF, 200.0])),
                                  [2.0, 0.0, 0.5])
    assert float(stats.ratio(INF, 10.0)) == INF and float(stats.ratio(INF, INF)) == 0.0


def test_target_is_uniform_median_smoothed_final_or_fixed() -> None:
    ev = _evals({
        ("A", "uniform", 0): ([0, 10, 20], [0.2, 0.3, 0.4]),  # smoothed final 0.3
        ("A", "uniform", 1): ([0, 10, 20], [0.2, 0.5, 0.5]),  # 0.4
        ("A", "uniform", 2): ([0, 10, 20], [0.2, 0.2, 0.2]),  # 0.2
        ("B", "fast", 0): ([0, 10, 20], [0.2, 0.5, 0.5]),  # no uniform on B
    })
    t = stats.targets(ev)
    assert list(t["pair"]) == ["A"] and t["target"].iloc[0] == pytest.approx(0.3)
    t = stats.targets(ev, fixed={"B": 0.45, "A": 0.25})
    assert dict(zip(t["pair"], t["target"], strict=True)) == {"A": 0.25, "B": 0.45}
    assert set(t["source"]) == {"fixed"}


def test_a_target_rise_asks_for_that_share_of_uniforms_median_rise() -> None:
    ev = _evals({
        ("A", "uniform", 0): ([0, 10, 20], [0.2, 0.3, 0.4]),  # smoothed final 0.3
        ("A", "uniform", 1): ([0, 10, 20], [0.1, 0.5, 0.6]),  # 0.4
        ("A", "uniform", 2): ([0, 10, 20], [0.2, 0.2, 0.2]),  # 0.2
    })
    # median first evaluation 0.2, median smoothed final 0.3: 0.2 + 0.5 x 0.1
    t = stats.targets(ev, rise=0.5)
    assert t["target"].iloc[0] == pytest.approx(0.25)
    assert "50% of its rise" in t["source"].iloc[0]
    assert stats.targets(ev, rise=1.0)["target"].iloc[0] == pytest.approx(0.3)
    # a fixed target is taken as given
    assert stats.targets(ev, fixed={"A": 0.9}, rise=0.5)["target"].iloc[0] == 0.9
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="rise must be in"):
            stats.targets(ev, rise=bad)


def _two_strategy_case() -> pd.DataFrame:
    # target 0.5 (fixed); smoothed accuracy crosses at the listed clock times
    up = [0.2, 0.8, 0.8, 0.8]  # smoothed 0.2, 0.5, ...: reaches at the 2nd evaluation
    late = [0.2, 0.2, 0.8, 0.8]  # smoothed 0.2, 0.2, 0.4, 0.6: reaches at the 4th
    flat = [0.2, 0.2, 0.2, 0.2]  # never
    return _evals({
        ("A", "uniform", 0): ([0, 50, 100, 150], up),  # 50
        ("A", "uniform", 1): ([0, 40, 80, 120], late),  # 120
        ("A", "uniform", 2): ([0, 70, 140, 210], up),  # 70
        ("A", "fast", 0): ([0, 30, 60, 90], up),  # 30
        ("A", "fast", 1): ([0, 40, 80, 120], up),  # 40
        ("A", "fast", 2): ([0, 10, 20, 30], flat),  # censored
        ("A", "never", 0): ([0, 10, 20, 30], flat),
        ("A", "never", 1): ([0, 10, 20, 30], flat),
    })


def test_run_table_and_pair_speedups_with_censoring() -> None:
    ev = _two_strategy_case()
    runs = stats.run_table(ev, stats.targets(ev, fixed={"A": 0.5}))
    fast = runs[runs["label"] == "fast"]
    assert list(fast["time_to_target_s"]) == [30.0, 40.0, INF]
    assert list(fast["censored"]) == [False, False, True]
    assert list(fast["steps_to_target"]) == [10.0, 10.0, INF]
    assert list(runs[runs["label"] == "uniform"]["steps_to_target"]) == [10.0, 30.0, 10.0]
    per_step = {r: 1.0 for r in runs["run_id"]} | {"A__fast__s0": 0.75, "A__fast__s1": 0.75,
                                                   "A__fast__s2": 0.75}
    table = stats.pair_table(runs, per_step, reps=500, seed=0).set_index("label")
    # uniform times 50, 120, 70: median 70; fast 30, 40, inf: median 40 (2 of 3 reached)
    assert table.loc["uniform", "median_time_s"] == 70.0
    assert table.loc["fast", "median_time_s"] == 40.0
    assert table.loc["fast", "speedup"] == pytest.approx(70 / 40)
    assert table.loc["fast", "total_time_saved_pct"] == pytest.approx(100 * (1 - 40 / 70))
    assert table.loc["fast", "steps_saved_pct"] == pytest.approx(0.0)  # 10 vs uniform's 10
    assert table.loc["fast", "per_step_time_saved_pct"] == pytest.approx(25.0)
    lo, hi = table.loc["fast", "speedup_lo"], table.loc["fast", "speedup_hi"]
    assert lo <= 70 / 40 <= hi
    # a strategy whose seeds all fail: speedup 0 with a degenerate interval, nothing dropped
    assert table.loc["never", "seeds"] == 2 and table.loc["never", "reached"] == 0
    assert (table.loc["never", "speedup"], table.loc["never", "speedup_lo"],
            table.loc["never", "speedup_hi"]) == (0.0, 0.0, 0.0)
    assert math.isnan(table.loc["never", "total_time_saved_pct"])


def test_bootstrap_speedup_hand_computed() -> None:
    # identical seeds: every resample gives the same ratio
    assert stats.bootstrap_speedup([100.0, 100.0], [50.0, 50.0], 200, 0) == (2.0, 2.0, 2.0)
    # strategy 50 or censored, reference 100: resampled medians are 50 (ratio 2) unless both
    # draws are censored (probability 1/4, ratio 0), so the 95% interval is [0, 2]
    point, lo, hi = stats.bootstrap_speedup([100.0], [50.0, INF], 2000, 0)
    assert (point, lo, hi) == (2.0, 0.0, 2.0)
    # seeded and deterministic
    a = stats.bootstrap_speedup([90.0, 100.0, 130.0], [40.0, 70.0, INF], 500, 3)
    assert a == stats.bootstrap_speedup([90.0, 100.0, 130.0], [40.0, 70.0, INF], 500, 3)


def test_reference_time_notes() -> None:
    ev = _evals({
        ("A", "uniform", 0): ([0, 10, 20], [0.2, 0.2, 0.2]),  # uniform never reaches 0.5
        ("A", "fast", 0): ([0, 10, 20], [0.2, 0.8, 0.8]),
        ("B", "fast", 0): ([0, 10, 20], [0.2, 0.8, 0.8]),  # no uniform
        ("C", "uniform", 0): ([0, 10, 20], [0.6, 0.8, 0.8]),  # met at step 0
    })
    runs = stats.run_table(ev, stats.targets(ev, fixed={"A": 0.5, "B": 0.5, "C": 0.5}))
    refs = stats.reference_times(runs)
    assert all(math.isnan(v) for v, _ in refs.values())
    assert "does not reach" in refs["A"][1] and "no uniform runs" in refs["B"][1]
    assert "before training" in refs["C"][1] and "--target C=" in refs["C"][1]
    table = stats.pair_table(runs, reps=50)
    assert table["speedup"].isna().all()
    assert crosspair.score_matrices(runs).speedups == {}


def _aggregate_case() -> pd.DataFrame:
    """Per-run speedups: pair A fast [2, 4], pair B fast [1, 0 (censored)]; uniform all 1."""
    rows = []
    for pair, uni, fast in (("A", [100.0, 100.0], [50.0, 25.0]), ("B", [10.0, 10.0], [10.0, INF])):
        for label, times in (("uniform", uni), ("fast", fast)):
            for seed, t in enumerate(times):
                rows.append({"pair": pair, "label": label, "seed": seed,
                             "run_id": f"{pair}{label}{seed}", "time_to_target_s": t,
                             "reached": math.isfinite(t)})
    return pd.DataFrame(rows)


def test_score_matrices_and_rliable_aggregates() -> None:
    mats = crosspair.score_matrices(_aggregate_case())
    assert mats.pairs["fast"] == ["A", "B"]
    np.testing.assert_array_equal(mats.speedups["fast"], [[2.0, 1.0], [4.0, 0.0]])
    np.testing.assert_array_equal(mats.norm_times["fast"], [[0.5, 1.0], [0.25, INF]])
    np.testing.assert_array_equal(mats.baseline_speedups["fast"], np.ones((2, 2)))
    agg = crosspair.aggregate(mats, reps=300, seed=0).set_index("label")
    # per-pair speedups (ratio of censored medians: the faster of 2 seeds): A 100 / 25 = 4,
    # B 10 / 10 = 1; their IQM (nothing to trim from two values) 2.5
    assert agg.loc["fast", "iqm_speedup"] == pytest.approx(2.5)
    assert agg.loc["fast", "iqm_lo"] <= 2.5 <= agg.loc["fast", "iqm_hi"]
    # PoI: pair A 1.0 (2 and 4 beat 1, 1); pair B (1 ties 1, 0 loses) 0.25; mean 0.625
    assert agg.loc["fast", "poi"] == pytest.approx(0.625)
    assert agg.loc["fast", "poi_lo"] <= 0.625 <= agg.loc["fast", "poi_hi"]
    assert agg.loc["uniform", "iqm_speedup"] == 1.0 and agg.loc["uniform", "poi"] == 0.5
    again = crosspair.aggregate(mats, reps=300, seed=0).set_index("label")
    pd.testing.assert_frame_equal(agg, again)  # seeded: the same intervals every time


def test_an_arm_identical_to_the_baseline_scores_one() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for pair in "ABCDEF":
        times = list(rng.uniform(50, 150, size=5)) + [INF]  # a censored seed too
        for label in ("uniform", "copy"):
            for seed, t in enumerate(times):
                rows.append({"pair": pair, "label": label, "seed": seed,
                             "run_id": f"{pair}{label}{seed}", "time_to_target_s": t,
                             "reached": math.isfinite(t)})
    agg = crosspair.aggregate(crosspair.score_matrices(pd.DataFrame(rows)), reps=500,
                          seed=0).set_index("label")
    assert agg.loc["copy", "iqm_speedup"] == 1.0
    assert agg.loc["copy", "iqm_lo"] < 1.0 < agg.loc["copy", "iqm_hi"]
    # the IQM of per-run speedups against uniform's median would not be 1
    assert agg.loc["uniform", "self_iqm"] < 0.99


def test_aggregate_leaves_global_rng_alone() -> None:
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    crosspair.aggregate(crosspair.score_matrices(_aggregate_case()), reps=20, seed=0)
    assert np.random.rand() == expected


def test_performance_profile_counts_censored_runs_as_never_reached() -> None:
    mats = crosspair.score_matrices(_aggregate_case())
    taus = np.array([0.0, 0.3, 0.6, 1.0, 2.0])
    prof = crosspair.performance_profile(mats, taus, reps=100, seed=0)
    np.testing.assert_allclose(prof["fast"][0], [0.0, 0.25, 0.5, 0.75, 0.75])
    np.testing.assert_allclose(prof["uniform"][0], [0.0, 0.0, 0.0, 1.0, 1.0])
    lo, hi = prof["fast"][1]
    assert np.all(lo <= prof["fast"][0] + 1e-12) and np.all(prof["fast"][0] <= hi + 1e-12)


def test_unequal_seed_counts_truncate_with_a_note() -> None:
    runs = _aggregate_case()
    extra = {"pair": "A", "label": "fast", "seed": 2, "run_id": "Afast2",
             "time_to_target_s": 20.0, "reached": True}
    mats = crosspair.score_matrices(pd.concat([runs, pd.DataFrame([extra])], ignore_index=True))
    assert mats.speedups["fast"].shape == (2, 2) and "first 2 seeds" in mats.notes["fast"]
    # the speedup keeps every seed: pair A's third run is not cut to match pair B
    assert [len(t) for t in mats.times["fast"]] == [3, 2]
    rect = np.array([[10.0, 12.0], [14.0, 16.0]])
    assert crosspair.pair_speedups_iqm(rect, rect / 2, 200, 0) == crosspair.pair_speedups_iqm(
        [rect[:, 0], rect[:, 1]], [rect[:, 0] / 2, rect[:, 1] / 2], 200, 0)
    # hand-computed with the censored (lower) median: uniform's medians 10 and 12; pair A's
    # times 5, 6, 9 give 6 (its first two alone would give 5), pair B's 6, 8 give 6: speedups
    # 10/6 and 2, and with two pairs nothing is trimmed, so the IQM is their mean
    point, _, _ = crosspair.pair_speedups_iqm([rect[:, 0], rect[:, 1]],
                                              [np.array([5.0, 6.0, 9.0]), rect[:, 1] / 2], 200, 0)
    assert point == pytest.approx((10 / 6 + 2.0) / 2)


def test_poi_fast_equals_rliable() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.integers(0, 4, (int(rng.integers(1, 5)), 3)).astype(float)
        y = rng.integers(0, 4, (int(rng.integers(1, 5)), 3)).astype(float)
        assert crosspair.poi_fast(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))


_BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def test_stats_and_report_import_without_torch() -> None:
    # torch cannot be imported at all: a hidden import fails loudly (optional ones are skipped
    # by the libraries), and the aggregate path (rliable, arch, scipy) runs too
    code = _BLOCK_TORCH + (
        "import numpy as np, pandas as pd\n"
        "import harness.protocol.crosspair as st, harness.protocol.report\n"
        "runs = pd.DataFrame({'pair': ['A'] * 4, 'label': ['uniform', 'uniform', 'x', 'x'],\n"
        "                     'seed': [0, 1, 0, 1], 'time_to_target_s': [10.0, 12.0, 5.0, 6.0]})\n"
        "agg = st.aggregate(st.score_matrices(runs), reps=20)\n"
        "assert agg.set_index('label').loc['x', 'poi'] == 1.0\n"
        "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- held vs first


def _curve(acc: list[float]) -> pd.DataFrame:
    n = len(acc)
    return pd.DataFrame({"step": np.arange(n) * 2, "clock_s": np.arange(n) * 10.0,
                         "samples": np.arange(n) * 16.0, "tokens": np.arange(n) * 200.0,
                         "cost_s": np.arange(n) * 3.0, "accuracy": acc})


def test_held_and_first_crossing_on_hand_made_curves() -> None:
    # touch and fall: smoothed 0.1, 0.3, 0.5, 0.433, 0.233: first at step 4, never held
    touch = _curve([0.1, 0.5, 0.9, -0.1, -0.1])
    first = stats.first_crossing(touch, 0.5)
    assert (first.reached, first.steps, first.time_s, first.cost_s) == (True, 4.0, 20.0, 6.0)
    held = stats.held_crossing(touch, 0.5)
    assert not held.reached and held.time_s == held.cost_s == held.steps == INF
    # monotone: smoothed 0.1, 0.2, 0.3, 0.4, 0.5: both rules agree on the last evaluation
    mono = _curve([0.1, 0.3, 0.5, 0.4, 0.6])
    assert stats.first_crossing(mono, 0.45) == stats.held_crossing(mono, 0.45)
    assert stats.held_crossing(mono, 0.45).steps == 8.0
    # dips and recovers: smoothed 0.5, 0.5, 0.433, 0.467, 0.567, 0.6: first at 0, held from 8
    dip = _curve([0.5, 0.5, 0.3, 0.6, 0.8, 0.4])
    assert stats.first_crossing(dip, 0.5).steps == 0.0
    assert stats.held_crossing(dip, 0.5).steps == 8.0
    # never: both censored
    flat = _curve([0.1, 0.1, 0.1])
    assert not stats.first_crossing(flat, 0.5).reached
    assert not stats.held_crossing(flat, 0.5).reached
    # a curve without a cost clock has nan cost, not a crash
    assert math.isnan(stats.held_crossing(mono.drop(columns="cost_s"), 0.45).cost_s)


def test_run_table_reports_both_rules() -> None:
    evals = _evals({("P", "uniform", 0): ([0, 10, 20, 30, 40], [0.1, 0.5, 0.9, 0.1, 0.1]),
                    ("P", "uniform", 1): ([0, 10, 20, 30, 40], [0.1, 0.3, 0.5, 0.4, 0.6])})
    runs = stats.run_table(evals, pd.DataFrame({"pair": ["P"], "target": [0.45]})
                           ).set_index("seed")
    assert runs.loc[0, "reached_first"] and not runs.loc[0, "reached"]
    assert runs.loc[0, "time_first_s"] == 20.0 and runs.loc[0, "time_to_target_s"] == INF
    assert runs.loc[1, "time_first_s"] == runs.loc[1, "time_to_target_s"] == 40.0
    assert runs.loc[1, "steps_to_target"] == 40.0 and runs.loc[1, "tokens_first"] == 4000.0


# ---------------------------------------------------------------------------- aggregates


def test_baseline_is_the_reference_not_a_measured_speedup() -> None:
    # uniform's per-run speedups against its own median (the faster seed of two) are 1 and 0.5
    runs = pd.DataFrame({"pair": ["A"] * 4 + ["B"] * 4,
                         "label": ["uniform", "uniform", "x", "x"] * 2,
                         "seed": [0, 1, 0, 1] * 2, "run_id": list("abcdefgh"),
                         "time_to_target_s": [10.0, 20.0, 5.0, 6.0, 10.0, 20.0, 5.0, 6.0]})
    agg = crosspair.aggregate(crosspair.score_matrices(runs), reps=50).set_index("label")
    assert agg.loc["uniform", "method"] == "reference"
    assert (agg.loc["uniform", "iqm_speedup"], agg.loc["uniform", "iqm_lo"],
            agg.loc["uniform", "iqm_hi"]) == (1.0, 1.0, 1.0)
    assert agg.loc["x", "method"] == "IQM"


def test_one_pair_aggregate_is_the_pairs_bootstrap_not_a_point() -> None:
    # 2 seeds each; x's per-run speedups against uniform's median (10) are 10/26 and 10/26:
    # the stratified bootstrap would give the point [0.38, 0.38]
    runs = pd.DataFrame({"pair": ["A"] * 4, "label": ["uniform", "uniform", "x", "x"],
                         "seed": [0, 1, 0, 1], "run_id": list("abcd"),
                         "time_to_target_s": [10.0, 28.0, 26.0, 26.0],
                         "reached": [True] * 4, "reached_first": [True] * 4})
    for col in ("cost", "steps", "tokens", "samples"):
        runs[stats.HELD[col]] = runs["time_to_target_s"]
    for col in stats.FIRST.values():
        runs[col] = runs["time_to_target_s"]
    agg = crosspair.aggregate(crosspair.score_matrices(runs), reps=500, seed=3).set_index("label")
    pair = stats.pair_table(runs, reps=500, seed=3).set_index("label")
    assert agg.loc["x", "method"] == "pair"
    got = tuple(agg.loc["x", ["iqm_speedup", "iqm_lo", "iqm_hi"]])
    assert got == tuple(pair.loc["x", ["speedup", "speedup_lo", "speedup_hi"]])
    assert got[1] < got[2]  # an interval, not a point: uniform's 28 s seed is resampled too
    assert got[0] == pytest.approx(10 / 26)


def test_iqm_trims_like_scipy_and_keeps_infinity_infinite() -> None:
    from scipy import stats as sps

    rng = np.random.default_rng(1)
    for n in (2, 3, 4, 7, 10):
        v = rng.uniform(0.1, 3.0, size=(5, n))
        assert np.allclose(crosspair._iqm(v, axis=1), sps.trim_mean(np.sort(v, axis=1), 0.25,
                                                                     axis=1))
    # two pairs: nothing is trimmed, so one pair where the baseline never reached the target
    # makes the IQM infinite (it once printed as 8.99e307, half of the largest float)
    assert crosspair._iqm(np.array([0.0, INF])) == INF
    # four pairs: the one infinite ratio is trimmed away
    assert crosspair._iqm(np.array([1.0, 2.0, 3.0, INF])) == 2.5
    assert np.array_equal(crosspair._iqm(np.array([[0.0, INF], [1.0, 3.0]]), axis=1),
                          [INF, 2.0])
