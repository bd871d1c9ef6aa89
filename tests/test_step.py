"""The shared step core (harness.core.step): selection checks, fresh counts with replay, feedback,
counters and metrics from a batch worked out by hand, and its state round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from harness import config
from harness.core.replay import Group
from harness.core.step import Batch, ExtraCost, StepCore, seed_for
from strategies.base import GroupFeedback, StepFeedback


class Picks:
    """A strategy that returns what it is told and remembers its feedback."""

    def __init__(self, picks: list[list[int]], predictions: dict[int, float] | None = None) -> None:
        self.picks = picks
        self.fed: list[StepFeedback] = []
        self.predictions = predictions

    def select(self, ctx: Any, n: int) -> list[int]:
        return self.picks.pop(0)[:n]

    def update(self, feedback: StepFeedback) -> None:
        self.fed.append(feedback)

    def predicted_pass_rates(self, indices: list[int]) -> list[float] | None:
        return None if self.predictions is None else [self.predictions[i] for i in indices]

    def state_dict(self) -> dict[str, Any]:
        return {"fed": len(self.fed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = state


class Ctx:
    step = 1


def _cfg(config_dir, *overrides: str) -> config.RunConfig:
    return config.resolve("test-pair", "uniform", seed=0, config_dir=config_dir,
                          overrides=list(overrides))


def _group(index: int, rewards: Sequence[float], step: int = 1) -> Group:
    n = len(rewards)
    return Group(index=index, step=step, prompt=torch.tensor([1, 2]),
                 responses=[torch.tensor([3, 4])] * n, behaviour_logp=[torch.zeros(2)] * n,
                 rewards=tuple(float(r) for r in rewards))


def _batch(rows: dict[int, list[float]], replayed: list[Group] = (), **kw: Any) -> Batch:
    trained = np.array(list(rows.values()) + [g.rewards for g in replayed], dtype=np.float64)
    fb = StepFeedback(step=1, groups=tuple(GroupFeedback(index=i, rewards=tuple(r))
                                           for i, r in rows.items()))
    g = trained.shape[1]
    return Batch(feedback=fb, trained=trained, replayed=list(replayed), new_prompts=len(rows),
                 samples=len(rows) * g, tokens_generated=10 * len(rows) * g,
                 tokens_trained=12 * len(trained) * g, responses_trained=len(trained) * g, **kw)


def test_an_invalid_selection_names_the_strategy_and_what_was_expected(config_dir) -> None:
    cfg = _cfg(config_dir)
    b = cfg.train.batch_size
    core = StepCore(cfg, Picks([[0] * b]), [""] * 64)
    with pytest.raises(RuntimeError, match=rf"strategy 'uniform' returned an invalid selection at "
                                           rf"step 1: expected {b} distinct indices in \[0, 64\), "
                                           rf"got {b} \(1 distinct\)"):
        core.select(Ctx())
    core = StepCore(cfg, Picks([list(range(60, 60 + b))]), [""] * 64)  # past the pool's end
    with pytest.raises(RuntimeError, match="invalid selection"):
        core.select(Ctx())


def test_fresh_count_waits_for_the_buffer_to_fill_the_rest(config_dir) -> None:
    cfg = _cfg(config_dir, "replay.enabled=true", "replay.sigma=0.25", "replay.capacity=16")
    core = StepCore(cfg, Picks([]), [""] * 64)
    b = cfg.train.batch_size  # 8: two fresh once six groups can be replayed
    assert core.fresh_count() == b
    core.replay.add([_group(i, [0, 1, 0, 1]) for i in range(5)])
    assert core.fresh_count() == b
    core.replay.add([_group(5, [1, 0, 0, 0])])
    assert core.fresh_count() == 2
    # the replay draw is the step's own stream, never one of the excluded prompts
    drawn = core.replay_draw(3, 4, exclude={0, 1})
    assert len(drawn) == 4 and not {g.index for g in drawn} & {0, 1}
    again = core.replay_draw(3, 4, exclude={0, 1})
    assert [g.index for g in drawn] == [g.index for g in again]
    assert seed_for(0, 3, 3) != seed_for(0, 4, 3)


def test_finish_feeds_back_counts_and_measures_the_batch(config_dir) -> None:
    cfg = _cfg(config_dir, "replay.enabled=true")
    strategy = Picks([], predictions={0: 0.5, 1: 0.25})
    core = StepCore(cfg, strategy, ["a", "b"] + ["a"] * 62)
    core.begin()
    replayed = [_group(7, [1, 0, 1, 0], step=0)]
    rows = {0: [1.0, 1.0, 1.0, 1.0], 1: [0.0, 1.0, 0.0, 0.0]}
    batch = _batch(rows, replayed, to_replay=[_group(1, rows[1])])
    m = core.finish(1, batch, ExtraCost(prompts=3, samples=12, tokens=50, seconds=0.0),
                    {"train/loss": 0.1})
    assert strategy.fed == [batch.feedback]
    assert core.replay.indices() == [1]
    assert m["train/zero_std_frac"] == 0.5 and m["train/effective_frac"] == 0.5
    assert m["train/batch_effective_frac"] == pytest.approx(2 / 3)
    assert m["train/reward_mean"] == pytest.approx(7 / 12)
    assert m["select/observed_pass_rate"] == pytest.approx(5 / 8)
    assert m["select/predicted_pass_rate"] == pytest.approx(0.375)
    assert m["select/prediction_abs_err"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["select/repeat_frac"] == 0.0 and m["select/distinct_total"] == 2.0
    assert m["train/tier_share/a"] == pytest.approx(2 / 3)  # prompts 0 and 7; 1 is tier b
    assert m["replay/share"] == 1 / cfg.train.batch_size and m["replay/age_mean"] == 1.0
    assert m["train/loss"] == 0.1
    assert m["cost/tokens_generated"] == 80 + 50 and m["cost/reference_samples"] == 12
    c = core.counters
    assert (c.prompts, c.samples, c.reference_prompts, c.tokens_trained) == (5, 20, 3, 144)
    assert c.clock_s == m["time/clock"] == m["time/step"] > 0
    # the same prompt again: a repeat
    core.begin()
    m2 = core.finish(2, _batch({0: [0.0, 1.0, 1.0, 1.0]}), ExtraCost())
    assert m2["select/repeat_frac"] == 1.0 and m2["select/distinct_total"] == 2.0
    assert core.counters.samples == 24


def test_a_down_sampled_prompts_pass_rate_is_that_of_all_its_samples(config_dir) -> None:
    core = StepCore(_cfg(config_dir), Picks([]), [""] * 64)
    core.begin()
    batch = _batch({0: [1.0, 0.0, 0.0, 0.0]}, discarded_samples=4)
    batch.feedback = StepFeedback(step=1, groups=(GroupFeedback(0, (1.0, 0, 0, 0, 1, 1, 1, 1)),))
    m = core.finish(1, batch, ExtraCost())
    assert m["select/observed_pass_rate"] == 0.625 and m["cost/discarded_samples"] == 4
    assert m["train/reward_mean"] == 0.25


def test_state_round_trip(config_dir) -> None:
    cfg = _cfg(config_dir, "replay.enabled=true")
    core = StepCore(cfg, Picks([]), [""] * 64)
    core.begin()
    core.finish(1, _batch({3: [0.0, 1.0, 0.0, 1.0]}, to_replay=[_group(3, [0, 1, 0, 1])]),
                ExtraCost())
    other = StepCore(cfg, Picks([]), [""] * 64)
    other.load_state_dict(core.state_dict())
    assert other.counters == core.counters
    assert other.times_selected.tolist() == core.times_selected.tolist()
    assert other.replay.indices() == [3]
    assert other.strategy.loaded == {"fed": 1}
