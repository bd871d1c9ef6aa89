"""Run records survive kills: every finished step is readable, a torn line is skipped."""

from pathlib import Path

from harness.runs.records import RunRecord


def test_append_read_and_truncate(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path / "run")
    rec.start("pair: x\n")
    for step in (1, 2, 3):
        rec.log_step(step, {"train/reward_mean": step / 10, "time/step": 1.5})
        rec.log_eval({"step": step, "clock_s": step * 1.5, "samples": 8 * step,
                      "tokens": 100 * step, "accuracy": 0.1 * step})
    rows = rec.read_metrics()
    assert len(rows) == 6 and rows[0] == (1, "train/reward_mean", 0.1)
    rec.truncate_after(2)
    assert {r[0] for r in rec.read_metrics()} == {1, 2}
    assert [r["step"] for r in rec.read_eval()] == [1.0, 2.0]
    # start() on an existing folder keeps what is there
    rec.start("pair: other\n")
    assert (tmp_path / "run" / "config.yaml").read_text() == "pair: x\n"


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path / "run")
    rec.start("")
    rec.log_step(1, {"a": 1.0})
    with open(rec.metrics_path, "a") as fh:
        fh.write("2,a")  # a kill in the middle of a write
    assert rec.read_metrics() == [(1, "a", 1.0)]
