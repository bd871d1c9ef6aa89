"""``watch.tensorboard``: event files beside the CSV records, holding the same numbers, and a
switch that does not change what the run is."""

from __future__ import annotations

import pytest

from harness import config
from harness.executors import trainer
from harness.runs.records import RunRecord

pytest.importorskip("tensorboard")


def test_tensorboard_events_hold_the_records_numbers(config_dir, built_test_model,
                                                     tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = config.resolve("test-pair", "uniform", config_dir=config_dir)
    cfg = config.resolve("test-pair", "uniform", config_dir=config_dir,
                         overrides=["watch.tensorboard=true"])
    assert cfg.run_id() == plain.run_id()  # watching a run is not another run
    run_dir, _ = trainer.run(cfg, tmp_path, progress=False)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    rows = RunRecord(run_dir).read_metrics()
    for key in ("train/reward_mean", "train/loss", "cost/tokens_generated", "eval/accuracy"):
        want = [(s, v) for s, k, v in rows if k == key]
        got = [(e.step, e.value) for e in events.Scalars(key)]
        assert want and got == [(s, pytest.approx(v, rel=1e-6)) for s, v in want], key


def test_watch_tensorboard_without_the_package_is_a_one_line_error(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(config.ConfigError, match="watch.tensorboard.*pip install tensorboard"):
        config.resolve("tiny600k-chainsum", "uniform", overrides=["watch.tensorboard=true"])
