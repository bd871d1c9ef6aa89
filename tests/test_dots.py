"""DOTS selection rules with hand-made pass rates; the strategy is pure, the context is a table.

The table context returns rollouts whose pass rates are known exactly and a "predictor" that is
an affine distortion of the truth, so calibration must undo it and selection must then pick the
questions whose true pass rate is nearest alpha.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.base import ConfigError
from strategies.base import GroupFeedback, StepFeedback
from strategies.difficulty import apply_linear_calibration, linear_calibration
from strategies.dots import Dots, DotsParams
from strategies.registry import build_strategy

G = 4


class _Table:
    """Pool of 40 questions whose true pass rates are k/4; rollouts return them exactly."""

    def __init__(self, step: int = 1) -> None:
        self.true = np.array([(i % 5) / 4 for i in range(40)])  # 0, .25, .5, .75, 1 repeating
        self.step = step
        self.pool_size = 40
        self.group_size = G
        self.batch_size = 8
        self.calls: list[tuple[list[int], int, bool]] = []
        self.pred_calls: list[list[int]] = []

    def rollout(self, indices, n_samples, reuse=False):
        self.calls.append((list(indices), n_samples, reuse))
        return [[1.0] * round(self.true[i] * n_samples) + [0.0] * (n_samples - round(self.true[i] * n_samples))
                for i in indices]

    def predict(self, ref_indices, ref_labels):
        self.pred_calls.append(list(ref_indices))
        return 0.3 * self.true + 0.2  # right order, wrong scale: calibration must fix it


def test_calibration_by_hand() -> None:
    slope, intercept = linear_calibration(np.array([0.2, 0.35, 0.5]), np.array([0.0, 0.5, 1.0]))
    assert slope == pytest.approx(1 / 0.3) and intercept == pytest.approx(-2 / 3)
    assert apply_linear_calibration(np.array([0.2, 0.65]), slope, intercept).tolist() == \
        pytest.approx([0.0, 1.0])  # 0.65 maps to 1.5, clipped to a valid pass rate


def test_round_rolls_out_k_references_then_picks_pass_rate_half() -> None:
    ctx = _Table()
    dots = Dots(DotsParams(references=10, mu=2), pool_size=40, seed=0)
    first = dots.select(ctx, 4)
    assert len(ctx.calls) == 1 and len(ctx.calls[0][0]) == 10 and ctx.calls[0][1] == G
    assert ctx.calls[0][2] is False  # the faithful version throws reference rollouts away
    second = dots.select(ctx, 4)  # same round: no new rollouts
    assert len(ctx.calls) == 1
    chosen = first + second
    assert len(set(chosen)) == 8 and all(ctx.true[i] == 0.5 for i in chosen)
    assert dots.last_calibration == pytest.approx((1 / 0.3, -2 / 3))
    assert dots.predicted_pass_rates(first) == pytest.approx([0.5] * 4)
    dots.select(ctx, 4)  # the round is spent: a new one starts
    assert len(ctx.calls) == 2


def test_reuse_references_trains_informative_ones_first() -> None:
    ctx = _Table()
    dots = Dots(DotsParams(references=20, mu=2, reuse_references=True), pool_size=40, seed=3)
    batch = dots.select(ctx, 4)
    refs, _, reuse = ctx.calls[0]
    assert reuse is True
    assert set(batch) <= set(refs)  # this step trains on reference groups already rolled out
    assert all(ctx.true[i] == 0.5 for i in batch)  # the informative ones closest to alpha
    rest = dots.select(ctx, 4)
    assert not set(rest) & set(batch)


def test_label_memory_needs_fewer_fresh_references() -> None:
    ctx = _Table(step=1)
    p = DotsParams(references=12, fresh_references=4, mu=1, label_memory=True, memory_age=2)
    dots = Dots(p, pool_size=40, seed=0)
    batch = dots.select(ctx, 8)
    assert len(ctx.calls[0][0]) == 12  # nothing remembered yet
    dots.update(StepFeedback(step=1, groups=tuple(
        GroupFeedback(i, tuple([1.0, 0.0, 1.0, 0.0])) for i in batch)))
    ctx.step = 2
    dots.select(ctx, 8)
    assert len(ctx.calls[1][0]) == 4  # 8 remembered labels + 4 fresh references
    refs = ctx.pred_calls[1]
    assert len(set(refs)) == 12 and set(ctx.calls[1][0]) <= set(refs)


def test_same_seed_same_selections_and_state_round_trip() -> None:
    a = Dots(DotsParams(references=10, mu=3), pool_size=40, seed=5)
    b = Dots(DotsParams(references=10, mu=3), pool_size=40, seed=5)
    ctx_a, ctx_b = _Table(), _Table()
    assert a.select(ctx_a, 3) == b.select(ctx_b, 3)
    c = Dots(DotsParams(references=10, mu=3), pool_size=40, seed=99)
    import json

    c.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for _ in range(4):
        assert a.select(ctx_a, 3) == c.select(_Table(), 3)


def test_registry_and_validation() -> None:
    dots = build_strategy("dots", {"references": 8}, pool_size=40, seed=0)
    assert isinstance(dots, Dots)
    with pytest.raises(ConfigError, match="fresh_references"):
        build_strategy("dots", {"references": 8, "fresh_references": 9}, pool_size=40, seed=0)
    default = build_strategy("dots", {}, pool_size=40, seed=0)
    assert default.references(_Table()) == 4  # mu * B / 4 with B = 8: the paper's share
    with pytest.raises(ValueError, match="exceeds the pool"):
        build_strategy("dots", {"references": 50}, pool_size=40, seed=0)


def _train(dots: Dots, ctx: _Table, batch: list[int]) -> None:
    dots.update(StepFeedback(step=ctx.step, groups=tuple(
        GroupFeedback(index=i, rewards=(1.0, 0.0, 1.0, 0.0)) for i in batch)))


def test_cooldown_keeps_recently_trained_prompts_out_of_the_next_round() -> None:
    # 8 questions have p = 0.5; a round of mu * n = 4 picks 4 of them. Without a cooldown the
    # next round may pick the same ones again; with it, the other four must come next.
    ctx = _Table(step=1)
    dots = Dots(DotsParams(references=10, mu=1, cooldown=3), pool_size=40, seed=0)
    first = dots.select(ctx, 4)
    _train(dots, ctx, first)
    ctx.step = 2
    second = dots.select(ctx, 4)
    assert not set(first) & set(second) and all(ctx.true[i] == 0.5 for i in second)
    _train(dots, ctx, second)
    ctx.step = 4  # the first batch has cooled down (4 - 1 >= 3); the second has not
    third = dots.select(ctx, 4)
    assert set(third) == set(first)
    assert dots.state_dict()["trained"]  # part of the checkpoint


def test_cooldown_never_starves_a_round() -> None:
    # a pool of 40, a round of 30 and 20 prompts cooling: the 10 cooled longest come back
    ctx = _Table(step=1)
    dots = Dots(DotsParams(references=10, mu=1, cooldown=50), pool_size=40, seed=0)
    for step, batch in ((1, list(range(10))), (2, list(range(10, 20)))):
        ctx.step = step
        _train(dots, ctx, batch)
    ctx.step = 3
    picked = dots.select(ctx, 30)
    assert len(set(picked)) == 30 and not set(picked) & set(range(10, 20))
