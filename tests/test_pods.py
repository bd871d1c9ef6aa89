"""PODS: the max-variance subset on hand-made reward vectors (ties and all-equal groups
included), composition with prompt strategies, the OpenRLHF refusal, and steps through the real
trainer: n samples per prompt generated and counted, G per prompt trained on."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from baselines.pods import max_variance_subset
from harness.config.base import ConfigError
from strategies.base import GroupFeedback, StepFeedback, selects_rollouts
from strategies.registry import available, build_strategy, get_entry


@pytest.mark.parametrize(("rewards", "m", "kept"), [
    # two correct of eight: both, plus the earliest wrong ones
    ([0, 1, 0, 0, 1, 0, 0, 0], 4, [0, 1, 2, 4]),
    # six correct, two wrong: both wrong ones and two correct; k = 0 (the four lowest: the
    # wrong ones, then the earliest correct ones) ties with k = 2 and the smaller k wins
    ([1, 1, 0, 1, 1, 1, 0, 1], 4, [0, 1, 2, 6]),
    # half and half: m/2 of each
    ([1, 0, 1, 0, 1, 0, 1, 0], 4, [1, 3, 4, 6]),
    # a lone success is kept with the first wrong ones (k = 1 and k = 2 tie: smallest k wins)
    ([0, 0, 0, 1, 0, 0, 0, 0], 4, [0, 1, 2, 3]),
    # odd m: one or two correct give the same variance; the smaller k wins
    ([1, 1, 1, 0, 0, 0], 3, [2, 3, 4]),
    # all equal: nothing to gain, the first m responses
    ([1, 1, 1, 1, 1, 1, 1, 1], 4, [0, 1, 2, 3]),
    ([0, 0, 0, 0, 0, 0, 0, 0], 4, [0, 1, 2, 3]),
    # graded rewards: the two highest and the lowest (variance 0.202 > 0.187 for 1 + 2)
    ([0.0, 0.2, 0.9, 1.0, 0.5], 3, [0, 2, 3]),
    ([0.3, 0.1, 0.7], 3, [0, 1, 2]),  # m = n keeps everything
])
def test_max_variance_subset_on_hand_made_rewards(rewards, m, kept) -> None:
    assert max_variance_subset(rewards, m) == kept


def test_max_variance_subset_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(2, 9))
        m = int(rng.integers(1, n + 1))
        values = rng.choice([0.0, 0.5, 1.0], size=n) if trial % 2 else rng.random(n)
        best = max(np.var(values[list(c)]) for c in itertools.combinations(range(n), m))
        chosen = max_variance_subset(values.tolist(), m)
        assert len(set(chosen)) == m and np.var(values[chosen]) == pytest.approx(best, abs=1e-12)


def test_max_variance_subset_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="cannot keep 5 of 4"):
        max_variance_subset([0, 1, 0, 1], 5)


def test_registry_lists_pods_as_a_rollout_selector() -> None:
    assert "pods" in available()
    entry = get_entry("pods")
    assert entry.description and not entry.uses_predictor and selects_rollouts(entry.factory)
    assert not selects_rollouts(get_entry("uniform").factory)


@pytest.mark.parametrize(("ratio", "n"), [(4.0, 32), (2.0, 16), (1.0, 8), (1.5, 12)])
def test_samples_per_prompt_is_ratio_times_g(ratio: float, n: int) -> None:
    pods = build_strategy("pods", {"ratio": ratio}, pool_size=10, seed=0)
    assert pods.samples_per_prompt(8) == n
    assert pods.choose_rollouts([0.0] * 30 + [1.0, 1.0], 8) == [0, 1, 2, 3, 4, 5, 30, 31]


class _Ctx:
    def __init__(self, pool_size: int) -> None:
        self.pool_size, self.group_size, self.step = pool_size, 8, 1

    def rollout(self, indices, n_samples, reuse=False):  # pragma: no cover - unused here
        raise AssertionError("PODS over uniform or MoPPS rolls nothing out while selecting")


def _drive(strategy, steps: int, n: int = 5, pool: int = 30) -> list[list[int]]:
    out = []
    for step in range(1, steps + 1):
        chosen = strategy.select(_Ctx(pool), n)
        strategy.update(StepFeedback(step, tuple(
            GroupFeedback(i, (1.0,) * (i % 5) + (0.0,) * (32 - i % 5)) for i in chosen)))
        out.append(chosen)
    return out


@pytest.mark.parametrize("prompts", ["uniform", "mopps", "greso"])
def test_prompts_are_the_prompt_strategys_own(prompts: str) -> None:
    """PODS changes which rollouts are trained on, never which prompts are selected."""
    pods = build_strategy("pods", {"prompts": prompts}, pool_size=30, seed=4)
    plain = build_strategy(prompts, {}, pool_size=30, seed=4)
    assert _drive(pods, 9) == _drive(plain, 9)


def test_state_round_trip_continues_exactly() -> None:
    a = build_strategy("pods", {"prompts": "mopps"}, pool_size=30, seed=1)
    _drive(a, 4)
    state = json.loads(json.dumps(a.state_dict()))
    rest = _drive(a, 9)
    b = build_strategy("pods", {"prompts": "mopps"}, pool_size=30, seed=7)
    b.load_state_dict(state)
    assert _drive(b, 9) == rest


def test_predictions_of_the_prompt_strategy_come_through() -> None:
    pods = build_strategy("pods", {"prompts": "mopps"}, pool_size=8, seed=0)
    chosen = pods.select(_Ctx(8), 2)
    assert pods.predicted_pass_rates(chosen) == pytest.approx([0.5, 0.5])  # the Beta(1, 1) prior
    assert build_strategy("pods", {}, pool_size=8, seed=0).predicted_pass_rates(chosen) is None


@pytest.mark.parametrize(("params", "field"), [
    ({"ratio": 0.5}, "strategy.ratio"),
    ({"prompts": "pods"}, "strategy.prompts"),  # no down-sampling on top of down-sampling
    ({"prompts": "dots"}, "strategy.prompts"),  # needs the predictor the backbone would not load
    ({"prompts": "unifrom"}, "strategy.prompts"),
    ({"prompts": "mopps", "prompt_params": {"decay": 2.0}}, "strategy.prompt_params.decay"),
    ({"raito": 2.0}, "strategy.raito"),
])
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field) as info:
        build_strategy("pods", params, pool_size=10, seed=0)
    assert "\n" not in str(info.value)


def test_openrlhf_refuses_pods_in_one_line() -> None:
    from harness import config
    from harness.executors.openrlhf.flags import check_supported

    with pytest.raises(ConfigError) as info:
        check_supported(config.resolve("qwen2.5-math-1.5b-deepscaler", "pods"))
    assert info.value.field_name == "strategy.name" and "\n" not in str(info.value)
    check_supported(config.resolve("qwen2.5-math-1.5b-deepscaler", "speed"))  # SPEED runs there


# ---------------------------------------------------------------- the real trainer


def test_a_step_trains_on_g_of_n_samples_per_prompt(config_dir, built_test_model, tmp_path) -> None:
    from harness import config
    from harness.executors import trainer

    cfg = config.resolve("test-pair", "pods", seed=0, config_dir=config_dir,
                         overrides=["train.threads=1"])
    t = cfg.train
    tr = trainer.Trainer(cfg, tmp_path / "run", progress=False)
    seen: dict[str, object] = {}
    update, observe = tr._update, tr.strategy.update

    def spy_update(ro, adv, *args, **kwargs):  # the real update, watched
        seen["rows"], seen["adv"] = ro.response_ids.shape[0], adv.clone()
        return update(ro, adv, *args, **kwargs)

    def spy_feedback(feedback):
        seen["feedback"] = feedback
        observe(feedback)

    tr._update, tr.strategy.update = spy_update, spy_feedback
    metrics = tr.train_step(1)
    n = 4 * t.group_size
    assert seen["rows"] == t.batch_size * t.group_size  # B x G trained, as for uniform
    feedback = seen["feedback"]
    assert len(feedback.groups) == t.batch_size
    assert all(len(g.rewards) == n for g in feedback.groups)  # the strategy hears all n rewards
    assert metrics["cost/samples"] == t.batch_size * n
    assert metrics["cost/discarded_samples"] == t.batch_size * (n - t.group_size)
    assert metrics["cost/tokens_generated"] > metrics["cost/tokens_trained"]
    # the max-variance subset of n mixed rewards is mixed: trained groups are informative
    # exactly when their prompt's n samples were
    mixed = np.mean([g.informative for g in feedback.groups])
    assert metrics["train/batch_effective_frac"] == pytest.approx(mixed)
    assert metrics["select/observed_pass_rate"] == pytest.approx(
        np.mean([g.pass_rate for g in feedback.groups]))
    adv = seen["adv"].reshape(t.batch_size, t.group_size)
    assert float(adv.abs().sum()) > 0 and np.isfinite(metrics["train/loss"])


def test_runs_through_the_trainer_and_records_the_cost(config_dir, built_test_model,
                                                       tmp_path) -> None:
    from harness import config
    from harness.executors import trainer
    from harness.runs.records import RunRecord

    cfg = config.resolve("test-pair", "pods", seed=0, config_dir=config_dir,
                         overrides=["train.steps=2", "train.threads=1", "strategy.ratio=2"])
    run_dir, summary = trainer.run(cfg, tmp_path, progress=False)
    rows = RunRecord(run_dir).read_metrics()
    t = cfg.train
    per_step = {k: [v for _, key, v in rows if key == k] for k in (
        "cost/samples", "cost/discarded_samples", "cost/reference_samples", "train/loss")}
    assert per_step["cost/samples"] == [t.batch_size * 2 * t.group_size] * 2
    assert per_step["cost/discarded_samples"] == [t.batch_size * t.group_size] * 2
    assert per_step["cost/reference_samples"] == [0, 0] and len(per_step["train/loss"]) == 2
    assert summary["samples"] == 2 * t.batch_size * 2 * t.group_size
    assert summary["tokens_generated"] > summary["tokens_trained"]


def test_peer_methods_import_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from strategies.registry import build_strategy; "
            "[build_strategy(n, {}, pool_size=8, seed=0) for n in ('speed', 'pods')]; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
