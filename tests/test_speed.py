"""SPEED-RL: screening keeps and drops on hand-made rewards, the trained group is the union of
screening and continuation rollouts, refills when too few pass, the backbone's partial-reuse
accumulator, and a run through the real trainer with its cost counters."""

from __future__ import annotations

import json

import pytest

from harness.config.base import ConfigError
from harness.core.context import KeptGroups
from strategies.base import StepFeedback
from strategies.registry import available, build_strategy, get_entry

G = 8


class _Ctx:
    """A pure-Python context: prompt ``i`` answers with its fixed sample sequence ``seq(i)`` of G
    rewards, consumed in order across the step's rollouts, and keeps ``reuse=True`` rollouts with
    the backbone's own accumulator (lists of rewards standing in for the samples)."""

    def __init__(self, pool_size: int, seq) -> None:
        self.pool_size, self.group_size, self.step = pool_size, G, 1
        self.seq = seq
        self.used: dict[int, int] = {}
        self.calls: list[tuple[list[int], int, bool]] = []
        self.kept_groups: KeptGroups[list[float]] = KeptGroups(G, lambda a, b: a + b, len)

    def rollout(self, indices, n_samples, reuse=False):
        self.calls.append(([int(i) for i in indices], n_samples, reuse))
        out = []
        for i in indices:
            start = self.used.get(i, 0)
            rewards = list(self.seq(i)[start:start + n_samples])
            self.used[i] = start + n_samples
            if reuse:
                self.kept_groups.add(i, rewards)
            out.append(rewards)
        return out

    def predict(self, ref_indices, ref_labels):  # pragma: no cover - SPEED never predicts
        raise AssertionError("SPEED must not ask for predictions")


MIXED = (1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0)  # screening part mixed: passes
SOLVED = (1.0,) * G
FAILED = (0.0,) * G


def test_registry_lists_speed() -> None:
    assert "speed" in available()
    entry = get_entry("speed")
    assert entry.description and not entry.uses_predictor


@pytest.mark.parametrize(("rewards", "params", "kept"), [
    ((0.0, 0.0, 0.0, 0.0), {}, False),  # never solved
    ((1.0, 1.0, 1.0, 1.0), {}, False),  # always solved
    ((1.0, 0.0, 0.0, 0.0), {}, True),  # 1/4: mixed, the authors' std > 0
    ((1.0, 1.0, 1.0, 0.0), {}, True),
    ((1.0, 0.0, 0.0, 0.0), {"min_pass_rate": 0.25}, False),  # bounds are exclusive
    ((1.0, 1.0, 0.0, 0.0), {"min_pass_rate": 0.25, "max_pass_rate": 0.75}, True),
    ((1.0, 1.0, 1.0, 0.0), {"max_pass_rate": 0.75}, False),
])
def test_screening_keeps_only_mixed_pass_rates(rewards, params, kept) -> None:
    assert build_strategy("speed", params, pool_size=4, seed=0).passes(rewards) is kept


def test_the_trained_group_is_screening_plus_continuation() -> None:
    passing = {2, 5, 7, 9}
    ctx = _Ctx(12, seq=lambda i: MIXED if i in passing else (SOLVED if i % 2 else FAILED))
    chosen = build_strategy("speed", {}, pool_size=12, seed=0).select(ctx, 3)
    assert len(chosen) == 3 and set(chosen) <= passing
    screens, last = ctx.calls[:-1], ctx.calls[-1]
    # every round screens 4 samples per prompt still missing, each prompt at most once a step
    assert all(n == 4 and reuse for _, n, reuse in screens)
    screened = [i for idx, _, _ in screens for i in idx]
    assert len(screened) == len(set(screened))
    assert len(screens[0][0]) == 3
    # one continuation call rolls out the other G - 4 samples of exactly the chosen prompts
    assert last == (chosen, G - 4, True)
    # the union is the group: screening rollouts first, then the continuation, G in all
    assert ctx.kept_groups.complete == {i: list(MIXED) for i in chosen}
    assert chosen == [i for i in screened if i in passing][:3]  # first come, first served


def test_rounds_refill_until_enough_prompts_pass() -> None:
    ctx = _Ctx(20, seq=lambda i: MIXED if i in (4, 11) else FAILED)
    chosen = build_strategy("speed", {}, pool_size=20, seed=1).select(ctx, 2)
    assert sorted(chosen) == [4, 11]
    rounds = [idx for idx, n, _ in ctx.calls[:-1]]
    # each round screens as many candidates as prompts are still missing
    missing = 2
    for idx in rounds:
        assert len(idx) == missing
        missing -= sum(i in (4, 11) for i in idx)
    assert missing == 0 and len(rounds) > 1


def test_fills_with_the_earliest_screened_when_too_few_pass() -> None:
    ctx = _Ctx(10, seq=lambda i: MIXED if i == 6 else SOLVED)  # one passer in the pool
    chosen = build_strategy("speed", {}, pool_size=10, seed=0).select(ctx, 3)
    screened = [i for idx, _, _ in ctx.calls[:-1] for i in idx]
    assert sorted(screened) == list(range(10))  # the pool was spent
    assert chosen[0] == 6 and chosen[1:] == [i for i in screened if i != 6][:2]
    assert ctx.calls[-1] == (chosen, G - 4, True)  # the fill is continued too: B groups of G
    assert set(ctx.kept_groups.complete) == set(chosen)
    short = _Ctx(40, seq=lambda i: FAILED)
    chosen = build_strategy("speed", {"max_rounds": 2}, pool_size=40, seed=0).select(short, 4)
    rolled = [i for idx, _, _ in short.calls[:-1] for i in idx]
    assert len(short.calls) == 3 and chosen == rolled[:4]  # 2 rounds of 4, then the fill


def test_oversampling_drops_the_surplus_first_come_first_served() -> None:
    ctx = _Ctx(50, seq=lambda i: MIXED)
    chosen = build_strategy("speed", {"oversample": 4}, pool_size=50, seed=3).select(ctx, 4)
    assert len(ctx.calls) == 2 and len(ctx.calls[0][0]) == 16
    assert chosen == ctx.calls[0][0][:4]
    assert set(ctx.kept_groups.complete) == set(chosen)  # surplus screenings stay partial


def test_screening_must_leave_room_for_a_continuation() -> None:
    ctx = _Ctx(10, seq=lambda i: MIXED)
    ctx.group_size = 4
    with pytest.raises(ValueError, match="screen_samples=4 must be below train.group_size=4"):
        build_strategy("speed", {}, pool_size=10, seed=0).select(ctx, 2)


def _drive(strategy, steps: int, n: int, pool: int) -> list[list[int]]:
    out = []
    for step in range(1, steps + 1):
        ctx = _Ctx(pool, seq=lambda i: MIXED if i % 3 else FAILED)
        ctx.step = step
        out.append(strategy.select(ctx, n))
        strategy.update(StepFeedback(step, ()))
    return out


def test_selections_are_seed_determined_and_resume_exactly() -> None:
    a, b = (build_strategy("speed", {}, pool_size=30, seed=5) for _ in range(2))
    assert _drive(a, 6, 4, 30) == _drive(b, 6, 4, 30)
    assert _drive(build_strategy("speed", {}, pool_size=30, seed=6), 6, 4, 30) != _drive(
        build_strategy("speed", {}, pool_size=30, seed=5), 6, 4, 30)
    state = json.loads(json.dumps(a.state_dict()))
    rest = _drive(a, 8, 4, 30)  # crosses epoch boundaries
    c = build_strategy("speed", {}, pool_size=30, seed=99)
    c.load_state_dict(state)
    assert _drive(c, 8, 4, 30) == rest


@pytest.mark.parametrize(("params", "field"), [
    ({"screen_samples": 1}, "strategy.screen_samples"),
    ({"min_pass_rate": 0.6, "max_pass_rate": 0.5}, "strategy.min_pass_rate"),
    ({"oversample": 0.5}, "strategy.oversample"),
    ({"max_rounds": 0}, "strategy.max_rounds"),
    ({"screen_sample": 4}, "strategy.screen_sample"),
])
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build_strategy("speed", params, pool_size=10, seed=0)


# ---------------------------------------------------------------- the backbone's accumulator


def test_kept_groups_add_up_to_g_and_refuse_more() -> None:
    kept: KeptGroups[list[int]] = KeptGroups(4, lambda a, b: a + b, len)
    kept.add(1, [10, 11])
    assert kept.complete == {}  # partial: not a group yet
    kept.add(1, [12, 13])
    assert kept.complete == {1: [10, 11, 12, 13]}
    kept.add(2, [1, 2, 3, 4])
    kept.add(2, [5, 6, 7, 8])  # a full rollout replaces the earlier one, as before
    assert kept.complete[2] == [5, 6, 7, 8]
    kept.add(3, [0, 0, 0])
    with pytest.raises(ValueError, match="more than the group size 4"):
        kept.add(3, [1, 1])
    with pytest.raises(ValueError, match="already has a full group"):
        kept.add(1, [9])


# ---------------------------------------------------------------- the real trainer


def test_runs_through_the_trainer(config_dir, built_test_model, tmp_path) -> None:
    from harness import config
    from harness.executors import trainer
    from harness.runs.records import RunRecord

    # the test pair with the suite's G = 8, so the paper's 4 screening samples leave 4 to continue
    cfg = config.resolve("test-pair", "speed", seed=0, config_dir=config_dir,
                         overrides=["train.steps=2", "train.threads=1", "train.group_size=8"])
    run_dir, summary = trainer.run(cfg, tmp_path, progress=False)
    rows = RunRecord(run_dir).read_metrics()
    per_step = {k: [v for _, key, v in rows if key == k] for k in (
        "cost/samples", "cost/reference_samples", "cost/reference_prompts", "cost/reused_groups",
        "train/effective_frac", "train/loss")}
    b = cfg.train.batch_size
    assert summary["steps"] == 2 and all(len(v) == 2 for v in per_step.values())
    # every trained group was rolled out by the strategy: nothing sampled again by the backbone
    assert per_step["cost/samples"] == [0, 0] and per_step["cost/reused_groups"] == [b, b]
    # screening (4 per screened prompt) and continuation (4 per chosen prompt), all on the clock
    for prompts, samples in zip(per_step["cost/reference_prompts"], per_step["cost/reference_samples"],
                                strict=True):
        assert prompts >= 2 * b and samples == 4 * prompts
    assert summary["samples"] == summary["reference_samples"] == sum(per_step["cost/reference_samples"])
    # the union of a passed screening and its continuation always has mixed rewards
    assert per_step["train/effective_frac"] == [1.0, 1.0]
    assert all(abs(v) < 1e3 for v in per_step["train/loss"])
