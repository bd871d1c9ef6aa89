"""Strategy interface, registry and the uniform baseline (torch-free)."""

import subprocess
import sys

import pytest

from strategies.base import GroupFeedback
from strategies.registry import UnknownStrategyError, available, build_strategy, get_entry


class _Ctx:
    def __init__(self, size: int, step: int = 1) -> None:
        self.pool_size, self.step, self.group_size = size, step, 8

    def rollout(self, indices, n_samples):  # pragma: no cover - uniform never asks
        raise AssertionError("uniform must not request extra rollouts")


def test_registry_did_you_mean() -> None:
    assert "uniform" in available()
    with pytest.raises(UnknownStrategyError, match="did you mean 'uniform'"):
        get_entry("unifrom")


def test_uniform_is_a_permutation_per_epoch() -> None:
    s = build_strategy("uniform", {}, pool_size=10, seed=3)
    ctx = _Ctx(10)
    first = s.select(ctx, 5) + s.select(ctx, 5)
    assert sorted(first) == list(range(10))  # one epoch covers the pool exactly once
    second = s.select(ctx, 5) + s.select(ctx, 5)
    assert sorted(second) == list(range(10))
    assert first != second  # reshuffled per epoch


def test_uniform_batches_stay_distinct_across_epoch_boundary() -> None:
    s = build_strategy("uniform", {}, pool_size=7, seed=0)
    ctx = _Ctx(7)
    for _ in range(20):
        batch = s.select(ctx, 4)
        assert len(set(batch)) == 4


def test_uniform_deterministic_and_resumable() -> None:
    a = build_strategy("uniform", {}, pool_size=50, seed=1)
    b = build_strategy("uniform", {}, pool_size=50, seed=1)
    ctx = _Ctx(50)
    assert [a.select(ctx, 8) for _ in range(3)] == [b.select(ctx, 8) for _ in range(3)]
    state = a.state_dict()
    rest_a = [a.select(ctx, 8) for _ in range(10)]
    c = build_strategy("uniform", {}, pool_size=50, seed=99)
    c.load_state_dict(state)
    assert [c.select(ctx, 8) for _ in range(10)] == rest_a


def test_uniform_rejects_params() -> None:
    from harness.config.base import ConfigError

    with pytest.raises(ConfigError, match="strategy.alpha"):
        build_strategy("uniform", {"alpha": 0.5}, pool_size=5, seed=0)


def test_group_feedback_informative() -> None:
    assert GroupFeedback(0, (1.0, 0.0)).informative
    assert not GroupFeedback(0, (1.0, 1.0)).informative
    assert GroupFeedback(0, (1.0, 0.0, 0.0, 1.0)).pass_rate == 0.5


def test_strategies_import_without_torch() -> None:
    code = ("import sys; import strategies, baselines.uniform, strategies.oracle, strategies.registry; "
            "strategies.registry.get_entry('uniform'); strategies.registry.get_entry('oracle'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
