"""The demo end to end in its smoke-test form: model build (cached), a throwaway predictor fit
running beside the uniform runs, the DOTS runs, and the report with its figures; and the plan
of ``--with-replay``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest


def test_with_replay_adds_the_same_dots_with_replay(tmp_path: Path) -> None:
    from harness.protocol import demo, sweep

    plain = sweep.make_plan(demo._spec(False, tmp_path), tmp_path)
    both = sweep.make_plan(demo._spec(False, tmp_path, with_replay=True), tmp_path)
    assert sorted({r.label for r in plain.runs}) == ["dots-cooldown", "uniform"]
    assert sorted({r.label for r in both.runs}) == ["dots-cooldown", "dots-cooldown+rr", "uniform"]
    assert len(both.runs) == len(plain.runs) + 2
    # the replay arm differs from its DOTS arm in the replay switch only
    dots = next(r.cfg for r in both.runs if r.label == "dots-cooldown" and r.seed == 0)
    rr = next(r.cfg for r in both.runs if r.label == "dots-cooldown+rr" and r.seed == 0)
    assert dots.strategy == rr.strategy and dots.train == rr.train and rr.replay.enabled


@pytest.mark.slow
def test_demo_quick_end_to_end_and_rerun_is_a_noop(tmp_path: Path) -> None:
    results = tmp_path / "demo"
    cmd = [sys.executable, "-m", "harness.cli", "demo", "--quick", "--results", str(results)]
    env = dict(os.environ)
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    assert first.returncode == 0, first.stderr[-3000:]
    report = results / "report"
    runs = pd.read_csv(report / "runs.csv")
    # one pair, uniform and DOTS, two seeds each
    assert sorted(runs["label"].unique()) == ["dots-cooldown", "uniform"]
    assert sorted(runs.groupby("label")["seed"].nunique()) == [2, 2]
    # the throwaway predictor lives with the results, not in the cache real runs use
    assert (results / "quick-predictor" / "manifest.json").is_file()
    assert "speedup" in (report / "table1.md").read_text()
    for png in ("speedup.png", "accuracy_vs_time.png"):
        img = mpimg.imread(report / png)
        # a drawn figure at ~150 dpi (one-row strips such as speedup.png are short and wide)
        assert min(img.shape[:2]) > 300 and img[..., :3].std() > 0.05, png
    stamps = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*/summary.json")}
    assert len(stamps) == 4
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "4 finished before" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing was rerun


def test_verdict_says_whether_the_interval_excludes_one() -> None:
    import math

    import pandas as pd

    from harness.protocol.demo import verdict

    pairs = pd.DataFrame([
        {"pair": "p", "label": "uniform", "seeds": 2, "reached": 2, "speedup": 1.0,
         "speedup_lo": 0.5, "speedup_hi": 2.0},
        {"pair": "p", "label": "fast", "seeds": 2, "reached": 2, "speedup": 1.8,
         "speedup_lo": 1.2, "speedup_hi": 2.5},
        {"pair": "p", "label": "slow", "seeds": 3, "reached": 1, "speedup": 0.4,
         "speedup_lo": 0.0, "speedup_hi": 0.7},
        {"pair": "p", "label": "tie", "seeds": 2, "reached": 2, "speedup": 1.1,
         "speedup_lo": 0.6, "speedup_hi": 1.9},
        {"pair": "q", "label": "lone", "seeds": 1, "reached": 1, "speedup": math.nan,
         "speedup_lo": math.nan, "speedup_hi": math.nan},
    ])
    lines = verdict(pairs)
    assert len(lines) == 4  # uniform gets none
    assert "1.80x" in lines[0] and "[95% interval 1.20, 2.50]" in lines[0]
    assert "above 1: faster, outside" in lines[0]
    assert "below 1: slower, outside" in lines[1] and "1/3 seeds" in lines[1]
    assert "within the noise" in lines[2] and "with 2 seeds" in lines[2]
    assert "no verdict" in lines[3]
