"""`selbench recheck`: a committed run replayed with this code reproduces its records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness import config
from harness.executors import trainer
from harness.protocol import recheck
from harness.runs.records import RunRecord


def test_compare_counts_common_values_and_lists_new_counters() -> None:
    then = [(0, "eval.csv accuracy", 0.5), (1, "train/loss", 2.0), (1, "train/old", 1.0),
            (1, "time/step", 3.0), (2, "train/loss", 1.0), (9, "train/loss", 7.0)]
    now = [(0, "eval.csv accuracy", 0.5), (1, "train/loss", 2.0), (1, "train/new", 4.0),
           (1, "time/step", 9.0), (2, "train/loss", 1.5)]
    d = recheck.compare(then, now, steps=2)
    # step 9 lies past the replay; time/ is never compared; train/old and train/new one side only
    assert (d.values, d.different) == (3, 1)
    assert (d.worst_metric, d.worst_step, d.worst_rel) == ("train/loss", 2, 0.5)
    assert d.added == ("train/new",) and d.dropped == ("train/old",)
    assert d.differing == ("train/loss",)
    assert recheck.compare(then[:2], then[:2], steps=2).different == 0
    nan = [(1, "train/loss", math.nan)]
    assert recheck.compare(nan, nan, steps=1).different == 0


def _summary(folder: Path, run_id: str, commit: str, label: str) -> None:
    (folder / run_id).mkdir(parents=True)
    (folder / run_id / "summary.json").write_text(json.dumps({"git_commit": commit, "label": label}))


def test_pick_runs_takes_one_run_per_commit_covering_labels(tmp_path) -> None:
    runs = tmp_path / "runs"
    _summary(runs, "a__uniform__s0", "c1", "uniform")
    _summary(runs, "a__dots__s0", "c1", "dots")
    _summary(runs, "b__uniform__s0", "c2", "uniform")
    (runs / "unfinished").mkdir()
    picked = [p.name for p in recheck.pick_runs(tmp_path)]
    # c2 has one run and picks first (uniform); c1 then picks the label not yet covered
    assert picked == ["b__uniform__s0", "a__dots__s0"]


@pytest.mark.parametrize("strategy", ["uniform", "dapo"])
def test_replay_reproduces_a_run_and_finds_a_changed_value(config_dir, built_test_model,
                                                           tmp_path, strategy) -> None:
    cfg = config.resolve("test-pair", strategy, seed=3, config_dir=config_dir)
    run_dir, _ = trainer.run(cfg, tmp_path / "results", progress=False)
    check = recheck.replay(run_dir, 2, tmp_path / "scratch")
    assert check.identical and check.steps == 2
    # two steps of counters plus the evaluations at steps 0 and 2, all compared
    assert check.diff.values > 2 * 10
    assert not (tmp_path / "scratch" / run_dir.name / "summary.json").exists()

    # the committed record altered at one value: the replay names it
    rec = RunRecord(run_dir)
    loss = next(v for s, m, v in rec.read_metrics() if s == 2 and m == "train/loss")
    text = rec.metrics_path.read_text()
    row = f"2,train/loss,{loss!r}\n"
    assert row in text
    rec.metrics_path.write_text(text.replace(row, f"2,train/loss,{loss * 1.5!r}\n"))
    changed = recheck.replay(run_dir, 2, tmp_path / "scratch2")
    assert not changed.identical
    assert (changed.diff.different, changed.diff.worst_metric, changed.diff.worst_step) == (
        1, "train/loss", 2)
    assert "train/loss at step 2" in changed.verdict()


def test_a_config_that_no_longer_gives_its_run_id_is_refused(config_dir, built_test_model,
                                                             tmp_path) -> None:
    cfg = config.resolve("test-pair", "uniform", seed=0, config_dir=config_dir)
    run_dir, _ = trainer.run(cfg, tmp_path / "results", progress=False)
    moved = run_dir.with_name(run_dir.name.replace("__s0", "__s9"))
    run_dir.rename(moved)
    with pytest.raises(ValueError, match="run id"):
        recheck.replay(moved, 2, tmp_path / "scratch")


def test_cli_names_a_missing_run(tmp_path, capsys) -> None:
    from harness import cli

    (tmp_path / "runs").mkdir()
    assert cli.main(["recheck", str(tmp_path), "--run", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("selbench: error:") and "nope" in err and "\n" not in err
    assert cli.main(["recheck", str(tmp_path)]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_provenance_line_names_differences_and_uncovered_commits() -> None:
    data = {"code": "abc1234", "runs": [
        {"run_id": "r1", "commit": "c1", "steps": 10, "values": 90, "identical": True, "verdict": ""},
        {"run_id": "r2", "commit": "c2", "steps": 10, "values": 90, "identical": False, "verdict": ""},
    ]}
    line = recheck.provenance_line(data, {"c1", "c2", "c3"})
    assert "1 of 2 runs" in line and "first 10 steps by `abc1234`" in line
    assert "not: `r2`" in line and "commits not rechecked: `c3`" in line
    assert "not rechecked" not in recheck.provenance_line(data, {"c1", "c2"})


def test_recheck_writes_table_and_json(config_dir, built_test_model, tmp_path) -> None:
    cfg = config.resolve("test-pair", "uniform", seed=5, config_dir=config_dir)
    trainer.run(cfg, tmp_path, progress=False)
    checks, path = recheck.recheck(tmp_path, 1, progress=False)
    assert [c.identical for c in checks] == [True]
    assert "1 of 1 runs reproduced bit for bit" in path.read_text()
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["runs"][0]["run_id"] == cfg.run_id() and data["runs"][0]["identical"]


def test_an_eager_run_is_replayed_eager_whatever_the_environment(config_dir, built_test_model,
                                                                 tmp_path, monkeypatch) -> None:
    import os

    monkeypatch.delenv("SELBENCH_COMPILE", raising=False)
    cfg = config.resolve("test-pair", "uniform", seed=7, config_dir=config_dir)
    run_dir, summary = trainer.run(cfg, tmp_path / "results", progress=False)
    assert summary["compiled"] is False
    monkeypatch.setenv("SELBENCH_COMPILE", "1")
    check = recheck.replay(run_dir, 2, tmp_path / "scratch")
    assert check.identical  # compiled kernels would round differently
    assert os.environ["SELBENCH_COMPILE"] == "1"  # the caller's setting is left as it was
