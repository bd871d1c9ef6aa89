"""Peer baselines DAPO, GRESO and MoPPS: their rules on hand-computed cases, determinism,
resumable state, and runs through the real trainer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.config.base import ConfigError
from strategies.base import GroupFeedback, StepFeedback
from strategies.registry import available, build_strategy, get_entry

PEERS = ("dapo", "greso", "mopps")
G = 4


class _Ctx:
    """A pure-Python context: prompt ``i`` solves ``solved(i)`` of its G samples, every time."""

    def __init__(self, pool_size: int, solved=lambda i: i % (G + 1), step: int = 1) -> None:
        self.pool_size, self.group_size, self.step = pool_size, G, step
        self.solved = solved
        self.calls: list[tuple[list[int], int, bool]] = []  # (indices, n_samples, reuse)

    def rewards(self, i: int) -> tuple[float, ...]:
        k = self.solved(i)
        return (1.0,) * k + (0.0,) * (G - k)

    def rollout(self, indices, n_samples, reuse=False):
        self.calls.append(([int(i) for i in indices], n_samples, reuse))
        return [list(self.rewards(i)) for i in indices]

    def predict(self, ref_indices, ref_labels):  # pragma: no cover - no baseline predicts
        raise AssertionError("peer baselines must not ask for predictions")

    def feedback(self, indices: list[int]) -> StepFeedback:
        return StepFeedback(self.step, tuple(GroupFeedback(i, self.rewards(i)) for i in indices))


def _drive(strategy, ctx: _Ctx, steps: int, n: int) -> list[list[int]]:
    out = []
    for step in range(1, steps + 1):
        ctx.step = step
        chosen = strategy.select(ctx, n)
        strategy.update(ctx.feedback(chosen))
        out.append(chosen)
    return out


def _zero_variance(indices, solved: bool, step: int = 1) -> StepFeedback:
    return StepFeedback(step, tuple(GroupFeedback(i, (float(solved),) * G) for i in indices))


# ---------------------------------------------------------------- shared contract


def test_registry_lists_the_peer_baselines() -> None:
    for name in PEERS:
        assert name in available()
        entry = get_entry(name)
        assert entry.name == name and entry.description and not entry.uses_predictor


@pytest.mark.parametrize("name", PEERS)
def test_selections_are_distinct_valid_and_seed_determined(name: str) -> None:
    a, b = (build_strategy(name, {}, pool_size=40, seed=5) for _ in range(2))
    runs = [_drive(s, _Ctx(40), steps=12, n=6) for s in (a, b)]
    assert runs[0] == runs[1]
    for batch in runs[0]:
        assert len(set(batch)) == 6 and all(0 <= i < 40 for i in batch)
    other = _drive(build_strategy(name, {}, pool_size=40, seed=6), _Ctx(40), steps=12, n=6)
    assert other != runs[0]


@pytest.mark.parametrize("name", PEERS)
def test_state_round_trip_continues_exactly(name: str) -> None:
    a = build_strategy(name, {}, pool_size=30, seed=1)
    _drive(a, _Ctx(30), steps=4, n=5)
    state = json.loads(json.dumps(a.state_dict()))  # what a checkpoint stores
    rest = _drive(a, _Ctx(30), steps=9, n=5)  # crosses epoch boundaries
    b = build_strategy(name, {}, pool_size=30, seed=99)
    b.load_state_dict(state)
    assert _drive(b, _Ctx(30), steps=9, n=5) == rest


@pytest.mark.parametrize(("name", "params", "field"), [
    ("dapo", {"oversample": 0.5}, "strategy.oversample"),
    ("dapo", {"max_rounds": 0}, "strategy.max_rounds"),
    ("greso", {"p_easy": 0.99}, "strategy.p_easy"),
    ("greso", {"target_zero_variance": 1.5}, "strategy.target_zero_variance"),
    ("mopps", {"decay": 1.2}, "strategy.decay"),
    ("mopps", {"prior_beta": 0.0}, "strategy.prior_beta"),
    ("mopps", {"decya": 0.5}, "strategy.decya"),
])
def test_bad_params_name_the_field(name: str, params: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build_strategy(name, params, pool_size=10, seed=0)


@pytest.mark.parametrize("name", PEERS)
def test_selecting_more_than_the_pool_is_an_error(name: str) -> None:
    with pytest.raises(ValueError, match="pool of 3"):
        build_strategy(name, {}, pool_size=3, seed=0).select(_Ctx(3), 4)


def test_baselines_import_without_torch() -> None:
    code = ("import sys; from strategies.registry import get_entry; "
            "[get_entry(n) for n in ('dapo', 'greso', 'mopps')]; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- DAPO


def test_dapo_refills_until_the_informative_prompts_are_found() -> None:
    # only prompts 3 and 7 have mixed rewards; 6 candidates per round over a pool of 12
    ctx = _Ctx(12, solved=lambda i: 2 if i in (3, 7) else 0)
    chosen = build_strategy("dapo", {}, pool_size=12, seed=0).select(ctx, 2)
    assert sorted(chosen) == [3, 7]
    rolled = [i for idx, _, _ in ctx.calls for i in idx]
    assert len(rolled) == len(set(rolled)) <= 12  # never the same prompt twice in a step
    assert all(len(idx) == 6 and g == G and reuse for idx, g, reuse in ctx.calls)
    assert len(ctx.calls) == (1 if {3, 7} <= set(ctx.calls[0][0]) else 2)


def test_dapo_drops_the_surplus_first_come_first_served() -> None:
    ctx = _Ctx(50, solved=lambda i: 1)  # every group informative
    chosen = build_strategy("dapo", {}, pool_size=50, seed=3).select(ctx, 4)
    assert len(ctx.calls) == 1 and len(ctx.calls[0][0]) == 12  # oversample 3 x 4
    assert chosen == ctx.calls[0][0][:4]


def test_dapo_fills_with_all_equal_groups_when_the_rounds_are_spent() -> None:
    position: dict[int, int] = {}

    def solved(i: int) -> int:  # only the 6th prompt rolled out this step is informative
        position.setdefault(i, len(position))
        return 2 if position[i] == 5 else G

    ctx = _Ctx(40, solved=solved)
    s = build_strategy("dapo", {"oversample": 1, "max_rounds": 2}, pool_size=40, seed=0)
    chosen = s.select(ctx, 4)
    rolled = [i for idx, _, _ in ctx.calls for i in idx]
    assert len(ctx.calls) == 2 and len(rolled) == 8
    assert chosen == [rolled[5], rolled[0], rolled[1], rolled[2]]


def test_dapo_stops_when_the_pool_is_spent() -> None:
    ctx = _Ctx(5, solved=lambda i: 0)
    chosen = build_strategy("dapo", {}, pool_size=5, seed=0).select(ctx, 4)
    assert len(ctx.calls) == 1 and sorted(ctx.calls[0][0]) == list(range(5))
    assert chosen == ctx.calls[0][0][:4]


# ---------------------------------------------------------------- GRESO


def test_greso_skip_probability_follows_the_streak() -> None:
    s = build_strategy("greso", {}, pool_size=6, seed=0)
    s.update(_zero_variance([0, 1], solved=True))
    s.update(_zero_variance([0], solved=True))
    s.update(_zero_variance([2], solved=False))
    s.update(StepFeedback(1, (GroupFeedback(1, (1.0, 0.0, 1.0, 0.0)),)))  # informative: reset
    assert s.skip_probability(0) == pytest.approx(1 - 0.5 ** 2)  # easy, streak 2
    assert s.skip_probability(1) == 0.0
    assert s.skip_probability(2) == pytest.approx(0.5)  # hard, streak 1
    assert s.skip_probability(3) == 0.0  # never seen
    s.p_hard = 0.8
    assert s.skip_probability(2) == pytest.approx(0.2) and s.skip_probability(0) == 0.75


@pytest.mark.parametrize(("streak", "n", "kept"), [(1, 1000, 0.5), (2, 500, 0.25)])
def test_greso_keeps_a_prompt_with_probability_p_to_the_streak(streak, n, kept) -> None:
    s = build_strategy("greso", {}, pool_size=4000, seed=0)
    for _ in range(streak):
        s.update(_zero_variance(range(4000), solved=False))
    s.select(_Ctx(4000), n)
    examined = s.stream.cursor  # candidates looked at to keep n
    assert abs(examined - n / kept) < 0.1 * n / kept


def test_greso_never_picks_long_streaks_while_others_remain() -> None:
    s = build_strategy("greso", {}, pool_size=10, seed=0)
    for _ in range(50):  # kept with 0.5 ** 50: never in practice
        s.update(_zero_variance(range(5), solved=False))
    assert sorted(s.select(_Ctx(10), 5)) == [5, 6, 7, 8, 9]


def test_greso_falls_back_to_the_shortest_streaks() -> None:
    s = build_strategy("greso", {}, pool_size=6, seed=0)
    for i, z in enumerate([60, 50, 1, 70, 55, 65]):
        for _ in range(z):
            s.update(_zero_variance([i], solved=False))
    assert sorted(s.select(_Ctx(6), 3)) == [1, 2, 4]


def test_greso_adapts_the_exploration_probabilities_after_the_first_epoch() -> None:
    s = build_strategy("greso", {}, pool_size=8, seed=0)
    step = StepFeedback(1, (GroupFeedback(0, (1.0,) * G), GroupFeedback(1, (1.0, 0.0, 0.0, 0.0)),
                            GroupFeedback(2, (1.0, 1.0, 0.0, 0.0)), GroupFeedback(3, (0.0, 1.0, 1.0, 1.0))))
    s.select(_Ctx(8), 4)  # first epoch: no history yet, nothing adapts
    s.update(step)
    assert (s.p_easy, s.p_hard) == (0.5, 0.5)
    s.select(_Ctx(8), 4)
    s.select(_Ctx(8), 4)  # into the second pass over the pool
    s.update(step)
    # easy share 1/4 >= 0.25/3: skip more; hard share 0 < 0.25*2/3: explore more
    assert s.p_easy == pytest.approx(0.49) and s.p_hard == pytest.approx(0.51)
    low = build_strategy("greso", {"p_easy": 0.05}, pool_size=8, seed=0)
    low.stream.epoch = 2
    low.update(step)
    assert low.p_easy == 0.05  # clamped at min_p


# ---------------------------------------------------------------- MoPPS


def test_mopps_posterior_update_with_forgetting() -> None:
    s = build_strategy("mopps", {}, pool_size=3, seed=0)  # decay 0.5, Beta(1, 1) prior
    s.update(StepFeedback(1, (GroupFeedback(0, (1.0, 1.0, 0.0, 0.0)),)))
    assert (s.alpha[0], s.beta[0]) == (3.0, 3.0)  # 0.5*1 + 0.5*1 + 2
    s.update(StepFeedback(2, (GroupFeedback(0, (1.0,) * 4),)))
    assert (s.alpha[0], s.beta[0]) == (6.0, 2.0)  # 0.5*3 + 0.5 + 4, 0.5*3 + 0.5 + 0
    assert (s.alpha[1], s.beta[1]) == (1.0, 1.0)  # untouched prompts keep the prior
    keep = build_strategy("mopps", {"decay": 1.0}, pool_size=1, seed=0)
    for _ in range(2):
        keep.update(StepFeedback(1, (GroupFeedback(0, (1.0, 1.0, 0.0, 0.0)),)))
    assert (keep.alpha[0], keep.beta[0]) == (5.0, 5.0)  # plain Beta-Bernoulli counting


def test_mopps_picks_the_samples_nearest_the_target_without_rollouts() -> None:
    rates = np.array([0.05, 0.1, 0.3, 0.45, 0.58, 0.7, 0.9, 0.95])
    s = build_strategy("mopps", {}, pool_size=8, seed=0)  # 4 x 2 candidates: the whole pool
    s.alpha, s.beta = rates * 1e7, (1 - rates) * 1e7  # posteriors sharp around the rates
    ctx = _Ctx(8)
    ctx.rollout = None  # selection must not roll anything out
    assert s.select(ctx, 2) == [3, 4]
    assert s.predicted_pass_rates([3, 4]) == pytest.approx([0.45, 0.58])
    far = build_strategy("mopps", {"target": 0.9}, pool_size=8, seed=0)
    far.alpha, far.beta = rates * 1e7, (1 - rates) * 1e7
    assert far.select(ctx, 3) == [6, 7, 5]  # distances 0, 0.05, 0.2


def test_mopps_draws_candidates_from_the_epoch_order() -> None:
    s = build_strategy("mopps", {"candidates_ratio": 1}, pool_size=10, seed=2)
    ctx = _Ctx(10)
    assert sorted(s.select(ctx, 5) + s.select(ctx, 5)) == list(range(10))


# ---------------------------------------------------------------- the real trainer


@pytest.mark.parametrize("name", PEERS)
def test_runs_through_the_trainer(name, config_dir, built_test_model, tmp_path) -> None:
    from harness import config
    from harness.executors import trainer
    from harness.runs.records import RunRecord

    cfg = config.resolve("test-pair", name, seed=0, config_dir=config_dir,
                         overrides=["train.steps=2", "train.threads=1"])
    run_dir, summary = trainer.run(cfg, tmp_path, progress=False)
    _check_run(cfg, RunRecord(run_dir).read_metrics(), summary)


REAL_CACHE = Path("/work/cache") if Path("/work/cache").is_dir() else None


@pytest.mark.slow  # needs the tiny-b model: a build on a fresh machine
@pytest.mark.parametrize("name", PEERS)
def test_runs_on_a_real_pair(name, tmp_path, monkeypatch) -> None:
    from harness import config
    from harness.executors import trainer
    from harness.runs.records import RunRecord

    if REAL_CACHE is not None:
        monkeypatch.setenv("SELBENCH_CACHE", str(REAL_CACHE))
    else:
        monkeypatch.delenv("SELBENCH_CACHE", raising=False)  # the default cache
    cfg = config.resolve("tiny-b-arith", name, seed=0, steps=3, overrides=[
        "train.threads=1", "train.batch_size=16", "train.mini_batch_size=16",
        "eval.max_questions=32"])
    run_dir, summary = trainer.run(cfg, tmp_path, progress=False)
    _check_run(cfg, RunRecord(run_dir).read_metrics(), summary)


def _check_run(cfg, rows, summary: dict) -> None:
    name, steps, t = cfg.strategy_name, cfg.train.steps, cfg.train
    assert summary["steps"] == steps and summary["strategy"] == name
    per_step = {k: [v for _, key, v in rows if key == k] for k in (
        "cost/reference_samples", "cost/samples", "select/predicted_pass_rate")}
    assert len(per_step["cost/reference_samples"]) == len(per_step["cost/samples"]) == steps
    if name == "dapo":
        # at least one round of 3B candidates x G samples per step, all on the clock (whether or
        # not the backbone trains on those groups instead of sampling the chosen prompts again)
        assert all(r >= 3 * t.batch_size * t.group_size for r in per_step["cost/reference_samples"])
    else:  # pre-rollout methods spend no rollouts on selection, only the batch's own
        assert per_step["cost/reference_samples"] == [0] * steps
        assert per_step["cost/samples"] == [t.batch_size * t.group_size] * steps
    # MoPPS reports its posterior means, so the records hold its prediction error
    assert len(per_step["select/predicted_pass_rate"]) == (steps if name == "mopps" else 0)
