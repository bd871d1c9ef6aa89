"""The learning-rate schedule: warm-up, then constant or a half cosine to lr_min_ratio * lr."""

from __future__ import annotations

import math

import pytest

from harness import config
from harness.config import ConfigError


def _trainer_lr(cfg: config.RunConfig):
    """The in-process update's schedule (it reads only the config: no model is needed)."""
    from harness.executors.inprocess_update import lr_at

    return lambda step, mini: lr_at(cfg.train, step, mini)


def _cfg(**train: object) -> config.RunConfig:
    overrides = [f"train.{k}={v}" for k, v in train.items()]
    return config.resolve("tiny1m-chainsum", "uniform", overrides=overrides)


def test_constant_schedule_after_warmup_is_the_old_one() -> None:
    lr = _trainer_lr(_cfg(steps=20, batch_size=32, mini_batch_size=16, lr=1e-3, warmup_steps=4))
    # 2 mini-batches per step: the ramp reaches lr after 4 steps, then stays
    assert lr(1, 0) == pytest.approx(1e-3 / 8)
    assert lr(4, 1) == pytest.approx(1e-3)
    assert [lr(s, m) for s in range(5, 21) for m in (0, 1)] == [1e-3] * 32


def test_cosine_decays_from_the_peak_to_the_floor_at_the_last_step() -> None:
    cfg = _cfg(steps=50, batch_size=32, mini_batch_size=32, lr=2e-4, warmup_steps=10,
               lr_schedule="cosine", lr_min_ratio=0.1)
    lr = _trainer_lr(cfg)
    assert lr(5, 0) == pytest.approx(1e-4)  # still warming up
    assert lr(10, 0) == pytest.approx(2e-4)  # the peak, where the decay starts
    assert lr(50, 0) == pytest.approx(2e-5)  # the floor at the last step
    values = [lr(s, 0) for s in range(10, 51)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    # halfway through the decay: the mean of peak and floor
    assert lr(30, 0) == pytest.approx(2e-4 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 20 / 40))))


def test_schedule_fields_are_checked_and_leave_old_run_ids_alone() -> None:
    with pytest.raises(ConfigError, match="train.lr_schedule"):
        _cfg(lr_schedule="linear").validate()
    with pytest.raises(ConfigError, match="train.lr_min_ratio"):
        _cfg(lr_schedule="cosine", lr_min_ratio=1.5).validate()
    assert _cfg().run_id() == _cfg(lr_schedule="constant", lr_min_ratio=0.1).run_id()
    assert _cfg().run_id() != _cfg(lr_schedule="cosine").run_id()
