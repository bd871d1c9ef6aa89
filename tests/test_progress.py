"""Progress output: whole lines (no carriage returns) when stderr is not a terminal."""

from __future__ import annotations

import io

from harness import config
from harness.runs import progress


def test_logbar_writes_a_line_per_interval_with_time_left() -> None:
    out = io.StringIO()
    bar = progress.LogBar(10, desc="sweep demo", unit="run", file=out, interval=0.0)
    bar.update(2)
    bar.set_postfix_str("pair uniform s0 3/80")
    bar.update(3)
    bar.close()
    bar.close()  # closing twice writes one final line
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[0].startswith("sweep demo: 2/10 run, ") and "left" in lines[0]
    # a postfix change alone (a run's step moved) is a heartbeat line too
    assert lines[1].startswith("sweep demo: 2/10 run, ") and lines[1].endswith("| pair uniform s0 3/80")
    assert lines[2].endswith("| pair uniform s0 3/80") and "5/10 run" in lines[2]


def test_logbar_stays_quiet_between_intervals() -> None:
    out = io.StringIO()
    bar = progress.LogBar(1000, desc="x", file=out, interval=3600.0)
    for _ in range(1000):
        bar.update(1)
    assert out.getvalue() == ""
    bar.close()
    assert out.getvalue().splitlines() == [bar.line()] and "1000/1000" in bar.line()


def test_a_run_logs_lines_not_a_redrawn_bar(config_dir, built_test_model, tmp_path, capfd,
                                            monkeypatch) -> None:
    from harness.executors.trainer import Trainer

    monkeypatch.setenv("SELBENCH_PROGRESS_S", "0")
    cfg = config.resolve("test-pair", "uniform", config_dir=config_dir,
                         overrides=["train.steps=2"])
    capfd.readouterr()
    Trainer(cfg, tmp_path / "run", progress=True).run()
    err = capfd.readouterr().err
    assert "\r" not in err
    steps = [ln for ln in err.splitlines() if ln.startswith("test-pair uniform s0: ")]
    assert steps and steps[-1].startswith("test-pair uniform s0: 2/2 step") and "acc=" in steps[-1]
