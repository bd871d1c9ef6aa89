"""The OpenRLHF executor: GRPO math parity with OpenRLHF 0.11.2, flags, dry runs, glue pieces.

OpenRLHF's package ``__init__`` files import GPU-only kernels (flash-attn) and vLLM, so its
modules are loaded here without them: ``openrlhf.models`` is registered as a bare namespace
(its ``loss.py`` and ``utils.py`` then run unchanged, with the real DeepSpeed), and functions that
live inside modules importing vLLM or flash-attn (``compute_advantages_and_returns``,
``_collect_prompt_batch``, the CLI's argument parser) are taken verbatim from the installed source
files and executed with the real objects they refer to. Skips name what is missing.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from harness import config
from harness.config.base import ConfigError
from harness.core import grpo

PAPER_PAIRS = ["qwen2.5-math-1.5b-math", "qwen2.5-math-1.5b-deepscaler", "qwen2.5-math-1.5b-orz",
               "qwen2.5-3b-deepscaler", "qwen2.5-3b-deepmath", "qwen2.5-math-7b-deepscaler"]
TOL = 1e-6


# ------------------------------------------------------------------ loading OpenRLHF's code


def _openrlhf_root() -> Path:
    spec = importlib.util.find_spec("openrlhf")
    if spec is None or spec.origin is None:
        pytest.skip("openrlhf is not installed (pip install -e '.[openrlhf]' or scripts/setup.sh)")
    return Path(spec.origin).parent


def _openrlhf_models() -> tuple[Any, Any]:
    """OpenRLHF's real ``models/loss.py`` and ``models/utils.py`` (which import DeepSpeed)."""
    root = _openrlhf_root()
    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed (OpenRLHF's models/utils.py imports it)")
    if "openrlhf.models" not in sys.modules:
        package = types.ModuleType("openrlhf.models")  # skip __init__: it imports flash-attn
        package.__path__ = [str(root / "models")]
        sys.modules["openrlhf.models"] = package
    import openrlhf.models.loss as loss
    import openrlhf.models.utils as utils

    return loss, utils


def _function_from_source(path: Path, name: str, namespace: dict[str, Any]) -> Any:
    """The function (or method) ``name`` defined in ``path``, compiled from the file unchanged."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            node.decorator_list = []  # @torch.no_grad() is applied by the caller where needed
            module = ast.Module(body=[node], type_ignores=[])
            exec(compile(module, str(path), "exec"), namespace)  # noqa: S102 - OpenRLHF's own source
            return namespace[name]
    raise LookupError(f"{name} not found in {path}")


def _openrlhf_group_norm(rewards: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Per-token advantages from OpenRLHF's ``compute_advantages_and_returns`` (group_norm)."""
    _, utils = _openrlhf_models()
    root = _openrlhf_root()
    import itertools

    from openrlhf.trainer.ppo_utils.experience import Experience
    from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController
    from openrlhf.trainer.ppo_utils.length_penalty import apply_length_penalties
    from openrlhf.utils.logging_utils import init_logger

    path = root / "trainer/ppo_utils/experience_maker.py"
    namespace = {"torch": torch, "itertools": itertools, "List": list, "Experience": Experience,
                 "compute_reward": utils.compute_reward, "masked_mean": utils.masked_mean,
                 "apply_length_penalties": apply_length_penalties, "logger": init_logger("t")}
    method = _function_from_source(path, "compute_advantages_and_returns", namespace)
    cumulative = _function_from_source(path, "get_cumulative_returns", namespace)
    prompts, g = rewards.shape
    args = SimpleNamespace(
        rollout=SimpleNamespace(n_samples_per_prompt=g),
        algo=SimpleNamespace(advantage=SimpleNamespace(estimator="group_norm", gamma=1.0,
                                                       no_std_norm=False)),
        reward=SimpleNamespace(clip_range=(-10.0, 10.0), overlong_buffer_len=None,
                               overlong_penalty_factor=1.0, stop_properly_penalty_coef=None),
        data=SimpleNamespace(max_len=4096), rollout_max_new_tokens=None)
    args.rollout.max_new_tokens = action_mask.shape[1]
    maker = SimpleNamespace(strategy=SimpleNamespace(args=args), advantage_estimator="group_norm",
                            kl_ctl=FixedKLController(0.0))
    maker.get_cumulative_returns = lambda *a: cumulative(maker, *a)
    # two micro-batches, as the experience maker would hand them over
    flat = rewards.reshape(-1)
    half = len(flat) // 2
    exps = []
    for rows in (range(0, half), range(half, len(flat))):
        rows = list(rows)
        mask = action_mask[rows]
        exps.append(Experience(rewards=flat[rows].clone(), action_mask=mask,
                               kl=torch.zeros(mask.shape), index=rows,
                               response_length=mask.sum(-1), truncated=torch.zeros(len(rows)),
                               info={}))
    with torch.no_grad():
        out = method(maker, exps)
    return torch.cat([e.advantages for e in out])


# ------------------------------------------------------------------ GRPO math parity


def _random_batch(seed: int, rows: int = 24, width: int = 17) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (rows,), generator=gen)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    return {
        "logp": -torch.rand(rows, width, generator=gen, dtype=torch.float64).float() * 3,
        "old": -torch.rand(rows, width, generator=gen, dtype=torch.float64).float() * 3,
        "mu": -torch.rand(rows, width, generator=gen, dtype=torch.float64).float() * 3,
        "adv": torch.randn(rows, generator=gen),
        "mask": mask,
    }


def test_group_norm_advantages_match_openrlhf() -> None:
    gen = torch.Generator().manual_seed(0)
    rewards = torch.randint(0, 2, (6, 8), generator=gen).float()
    rewards[0] = 1.0  # an all-correct group: zero advantage in both
    rewards[1] = 0.0
    rewards[2] = torch.rand(8, generator=gen)  # non-binary rewards too
    width = 11
    lengths = torch.randint(1, width + 1, (48,), generator=gen)
    action_mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    theirs = _openrlhf_group_norm(rewards, action_mask)
    ours = grpo.group_norm_advantages(rewards).reshape(-1, 1) * action_mask
    assert theirs.shape == ours.shape
    torch.testing.assert_close(theirs * action_mask, ours, atol=TOL, rtol=0)
    assert torch.all(ours[:16] == 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_loss_matches_openrlhf_on_policy(seed: int) -> None:
    loss_mod, _ = _openrlhf_models()
    b = _random_batch(seed)
    adv_tok = b["adv"][:, None].expand_as(b["logp"])
    logp_a = b["logp"].clone().requires_grad_(True)
    theirs, clip_ratio, *_ = loss_mod.PolicyLoss(clip_eps_low=0.2, clip_eps_high=0.2)(
        logp_a, b["old"], adv_tok, action_mask=b["mask"])
    theirs.backward()
    logp_b = b["logp"].clone().requires_grad_(True)
    ours, stats = grpo.policy_loss(logp_b, b["old"], b["adv"], b["mask"], clip_eps=0.2)
    ours.backward()
    assert abs(float(theirs) - float(ours)) < TOL
    torch.testing.assert_close(logp_a.grad, logp_b.grad, atol=TOL, rtol=0)
    assert abs(float(clip_ratio) - stats["clip_frac"]) < TOL
    assert float(clip_ratio) > 0  # the random ratios do leave the clip range


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_corrected_loss_matches_openrlhf_importance_correction(seed: int) -> None:
    """Ours with behaviour log-probs mu == OpenRLHF's token-level clip correction, no bound."""
    from harness.executors.openrlhf.flags import REPLAY_IS_BOUND

    loss_mod, _ = _openrlhf_models()
    b = _random_batch(seed)
    adv_tok = b["adv"][:, None].expand_as(b["logp"])
    policy = loss_mod.PolicyLoss(clip_eps_low=0.2, clip_eps_high=0.2, is_correction_level="token",
                                 is_correction_mode="clip", is_correction_gating="ratio",
                                 is_correction_threshold=[0.0, REPLAY_IS_BOUND])
    logp_a = b["logp"].clone().requires_grad_(True)
    theirs, *_ = policy(logp_a, b["old"], adv_tok, action_mask=b["mask"],
                        rollout_log_probs=b["mu"])
    theirs.backward()
    logp_b = b["logp"].clone().requires_grad_(True)
    ours, _ = grpo.policy_loss(logp_b, b["old"], b["adv"], b["mask"], clip_eps=0.2,
                               behaviour_logp=b["mu"])
    ours.backward()
    assert abs(float(theirs) - float(ours)) < TOL
    torch.testing.assert_close(logp_a.grad, logp_b.grad, atol=TOL, rtol=0)
    # and the correction is not a no-op: the plain loss differs on the same tensors
    plain, _ = grpo.policy_loss(b["logp"], b["old"], b["adv"], b["mask"], clip_eps=0.2)
    assert abs(float(plain) - float(ours)) > 1e-3


def test_k3_kl_matches_openrlhf() -> None:
    _, utils = _openrlhf_models()
    b = _random_batch(3)
    theirs = utils.compute_approx_kl(b["logp"], b["old"], kl_estimator="k3")
    torch.testing.assert_close(theirs, grpo.k3_kl(b["logp"], b["old"]), atol=TOL, rtol=0)


# ------------------------------------------------------------------ flags and dry runs


def _openrlhf_parse(argv: list[str]) -> Any:
    """Parse ``argv`` with OpenRLHF's own train_ppo_ray parser and run its checks (not train)."""
    root = _openrlhf_root()
    tree = ast.parse((root / "cli/train_ppo_ray.py").read_text())
    main = next(n for n in tree.body if isinstance(n, ast.If)
                and isinstance(n.test, ast.Compare) and "__main__" in ast.unparse(n.test))
    body = [s for s in main.body if "train(args)" not in ast.unparse(s)]
    import argparse
    import datetime

    namespace: dict[str, Any] = {"argparse": argparse, "datetime": datetime.datetime}
    old_argv = sys.argv
    sys.argv = ["train_ppo_ray", *argv]
    try:
        exec(compile(ast.Module(body=body, type_ignores=[]), "train_ppo_ray", "exec"), namespace)  # noqa: S102
    finally:
        sys.argv = old_argv
    return namespace["args"]


@pytest.mark.parametrize("replay", [False, True])
def test_argv_passes_openrlhfs_own_parser_and_checks(tmp_path: Path, replay: bool) -> None:
    from harness.executors.openrlhf.flags import openrlhf_argv

    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform",
                         overrides=[f"replay.enabled={str(replay).lower()}"])
    argv = openrlhf_argv(cfg, "/models/q", tmp_path / "reward_func.py", tmp_path)
    args = _openrlhf_parse(argv)
    assert args.algo.advantage.estimator == "group_norm"
    assert args.rollout.batch_size == 512 and args.rollout.n_samples_per_prompt == 8
    assert args.train.batch_size == 64 * 8  # one optimizer step per mini-batch of 64 prompts
    assert args.actor.adam.lr == 1e-6 and args.actor.lr_scheduler == "constant"
    assert args.algo.kl.init_coef == 0 and args.rollout.temperature == 0.6
    assert args.data.max_len == 1024 + 3072 and args.rollout.max_new_tokens == 3072
    assert args.reward.remote_url == [str(tmp_path / "reward_func.py")]
    expected = "token" if replay else "off"
    assert args.algo.advantage.is_correction_level == expected
    if replay:
        assert args.algo.advantage.is_correction_mode == "clip"
        assert list(args.algo.advantage.is_correction_threshold) == [0.0, 1e30]


def test_kl_and_warmup_map_to_openrlhf_flags(tmp_path: Path) -> None:
    from harness.executors.openrlhf.flags import openrlhf_argv

    cfg = config.resolve("qwen2.5-3b-deepmath", "uniform",
                         overrides=["train.kl_coef=0.001", "train.warmup_steps=6"])
    args = _openrlhf_parse(openrlhf_argv(cfg, "/m", tmp_path / "r.py", tmp_path))
    assert args.algo.kl.use_loss and args.algo.kl.estimator == "k3"
    assert args.algo.kl.init_coef == 0.001
    assert args.actor.lr_scheduler == "constant_with_warmup"
    assert abs(args.actor.lr_warmup_ratio - 0.1) < 1e-12
    assert args.rollout.max_new_tokens == 4096
    cfg = config.resolve("qwen2.5-3b-deepmath", "uniform",
                         overrides=["train.lr_schedule=cosine", "train.lr_min_ratio=0.2"])
    args = _openrlhf_parse(openrlhf_argv(cfg, "/m", tmp_path / "r.py", tmp_path))
    assert args.actor.lr_scheduler == "cosine_with_min_lr" and args.actor.min_lr_ratio == 0.2


@pytest.mark.parametrize("override, field", [
    ("executor.openrlhf.vllm_engines=4", "executor.openrlhf.vllm_engines"),
    ("executor.openrlhf.attn_implementation=sdpa", "executor.openrlhf.attn_implementation"),
    ("executor.openrlhf.micro_train_batch_size=3", "train.mini_batch_size"),
])
def test_settings_openrlhf_cannot_honour_fail_early(override: str, field: str) -> None:
    from harness.executors.openrlhf.flags import check_supported

    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform", overrides=[override])
    with pytest.raises(ConfigError) as info:
        check_supported(cfg)
    assert info.value.field_name == field
    assert "\n" not in str(info.value)


def test_all_six_paper_pairs_validate_and_dry_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from harness.executors import openrlhf

    assert set(PAPER_PAIRS) <= set(config.list_names("pairs"))
    models = {}
    for pair in PAPER_PAIRS:
        cfg = config.resolve(pair, "uniform", seed=1)
        models.setdefault(cfg.model.name, []).append(pair)
        t = cfg.train
        assert (t.batch_size, t.group_size, t.mini_batch_size, t.lr, t.kl_coef, t.steps,
                t.temperature) == (512, 8, 64, 1e-6, 0.0, 60, 0.6)
        assert t.max_new_tokens == (4096 if cfg.model.name == "qwen2.5-3b" else 3072)
        assert [e.name for e in cfg.task.eval_sets] == ["gsm8k", "math500", "minerva_math",
                                                        "olympiadbench"]
        assert (cfg.eval.temperature, cfg.eval.top_p) == (0.6, 0.95)
        run_dir, summary = openrlhf.run(cfg, tmp_path, dry_run=True)
        out = capsys.readouterr().out
        assert summary is None and f"-m {openrlhf.ENTRY}" in out and "--rollout.batch_size 512" in out
        assert str(run_dir / "openrlhf" / "reward_func.py") in out
        assert not (run_dir / "summary.json").exists()
    assert sorted(len(v) for v in models.values()) == [1, 2, 3]
    # DOTS with rollout replay, the paper's method, launches the same way
    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "dots", overrides=["replay.enabled=true"])
    run_dir, _ = openrlhf.run(cfg, tmp_path, dry_run=True)
    assert "dots+rr" in run_dir.name and "is_correction_level token" in capsys.readouterr().out


def test_cli_dry_run_prints_a_complete_launch(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--pair", "qwen2.5-math-1.5b-deepscaler",
         "--strategy", "uniform", "--set", "replay.enabled=true", "--executor", "openrlhf",
         "--dry-run", "--results", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("-m openrlhf.cli.train_ppo_ray", "--actor.model_name_or_path Qwen/Qwen2.5-Math-1.5B",
                   "--algo.advantage.estimator group_norm", "--algo.advantage.is_correction_level token",
                   "--reward.remote_url", "-m harness.executors.openrlhf.launch", "SelbenchPPOTrainer"):
        assert needle in out, needle
    reward_file = Path(out.split("# reward function:")[1].split()[0])
    spec = json.loads((reward_file.parent / "launch.json").read_text())
    assert "uniform+rr" in spec["run_dir"] and "--reward.remote_url" in spec["argv"]
    assert "make_reward_func" in reward_file.read_text()
    # the launch spec's flags are the printed ones
    assert spec["argv"][spec["argv"].index("--rollout.max_new_tokens") + 1] == "3072"


def test_real_launch_without_gpus_is_a_one_line_error(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--pair", "qwen2.5-math-1.5b-deepscaler",
         "--strategy", "uniform", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "OpenRLHF executor needs" in lines[0] and "--dry-run" in lines[0]


def test_inprocess_executor_refuses_what_it_cannot_honour() -> None:
    from harness import executors

    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform", overrides=["executor.name=inprocess"])
    with pytest.raises(ConfigError, match="eval.top_p"):
        executors.run(cfg, Path("/nonexistent"))
    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform",
                         overrides=["executor.name=inprocess", "eval.top_p=1.0"])
    with pytest.raises(ConfigError, match="task.eval_sets"):
        executors.run(cfg, Path("/nonexistent"))
    with pytest.raises(ConfigError, match="--dry-run"):
        executors.run(config.resolve("tiny-a-chainsum", "uniform"), Path("/x"), dry_run=True)


# ------------------------------------------------------------------ prompt source and experiences


def _openrlhf_collect_prompt_batch() -> Any:
    root = _openrlhf_root()
    return _function_from_source(root / "trainer/ppo_utils/samples_generator.py",
                                 "_collect_prompt_batch", {})


def test_openrlhf_pulls_exactly_the_strategys_prompts_including_refills() -> None:
    from baselines.uniform import ENTRY
    from harness.executors.openrlhf.prompts import PromptSource
    from harness.executors.openrlhf.reward import parse_label

    collect = _openrlhf_collect_prompt_batch()
    strategy = ENTRY.factory(ENTRY.params_cls(), pool_size=50, seed=3)
    mirror = ENTRY.factory(ENTRY.params_cls(), pool_size=50, seed=3)
    chosen = strategy.select(None, 6)
    source = PromptSource(chosen, render=lambda i: f"Q{i}?", refill=lambda k: strategy.select(None, k))
    prompts, labels, images, exhausted = collect(source, 6)
    assert prompts == [f"Q{i}?" for i in chosen] and not exhausted and images == [None] * 6
    assert [parse_label(lb) for lb in labels] == [("train", i) for i in chosen]
    # dynamic filtering drops two groups: OpenRLHF pulls one prompt per drop
    refills = [collect(source, 1)[0][0] for _ in range(2)]
    expected = mirror.select(None, 8)
    assert source.served == expected and refills == [f"Q{i}?" for i in expected[6:]]
    # without a refill the source is exhausted after the chosen prompts
    fixed = PromptSource([4, 2], render=str)
    prompts, _, _, exhausted = collect(fixed, 3)
    assert prompts == ["4", "2"] and exhausted


def _rollout_sample(prompt: list[int], response: list[int], logp: list[float], index: int,
                    reward: float) -> Any:
    from harness.core.replay import Group
    from harness.executors.openrlhf.experiences import replay_samples

    group = Group(index=index, step=0, prompt=torch.tensor(prompt), responses=[torch.tensor(response)],
                  behaviour_logp=[torch.tensor(logp)], rewards=(reward,))
    return replay_samples(group, "p")[0]


def test_groups_round_trip_through_openrlhf_experiences() -> None:
    pytest.importorskip("openrlhf.trainer.ppo_utils.experience")
    from openrlhf.trainer.ppo_utils.experience import Experience

    from harness.core.replay import Group
    from harness.executors.openrlhf.experiences import (
        groups_from_experiences,
        mark_on_policy,
        replay_samples,
        rewards_by_index,
    )

    gen = torch.Generator().manual_seed(0)
    groups = []
    for index, plen in ((7, 3), (2, 5)):
        responses = [torch.randint(3, 50, (n,), generator=gen) for n in (2, 4)]
        groups.append(Group(index=index, step=4, prompt=torch.randint(3, 50, (plen,), generator=gen),
                            responses=responses, behaviour_logp=[-torch.rand(len(r), generator=gen)
                                                                 for r in responses],
                            rewards=(1.0, 0.0)))
    samples = [s for g in groups for s in replay_samples(g, "p")]
    assert rewards_by_index(samples, 2) == {7: (1.0, 0.0), 2: (1.0, 0.0)}
    for i, s in enumerate(samples):
        s.index = [i]
    # OpenRLHF's micro-batching (right padding), then the actor's forward writes pi_old
    batches = [Experience.concat_experiences(samples[:3], 0), Experience.concat_experiences(samples[3:], 0)]
    for exp in batches:
        exp.action_log_probs = exp.rollout_log_probs * 0.5
    mark_on_policy(batches, n_fresh_samples=2)
    torch.testing.assert_close(batches[0].rollout_log_probs[:2], batches[0].action_log_probs[:2])
    assert not torch.equal(batches[0].rollout_log_probs[2], batches[0].action_log_probs[2])
    back = groups_from_experiences(batches, samples, step=5, group_size=2)
    assert [g.index for g in back] == [7, 2]
    for old, new in zip(groups, back, strict=True):
        assert torch.equal(old.prompt, new.prompt) and new.step == 5 and new.rewards == old.rewards
        for r0, r1, l0, l1 in zip(old.responses, new.responses, old.behaviour_logp,
                                  new.behaviour_logp, strict=True):
            assert torch.equal(r0, r1)
            torch.testing.assert_close(l1, l0 * 0.5)  # pi_old of the step, not the stored mu
    with pytest.raises(ValueError, match="G=3"):
        rewards_by_index(samples, 3)


# ------------------------------------------------------------------ the reward-function file


@pytest.fixture(scope="module")
def deepscaler_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from harness.instrument.tasks.tables import local_path

    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform")
    if not local_path(cfg.task.path).is_file():
        pytest.skip(f"{local_path(cfg.task.path)} not present")
    root = tmp_path_factory.mktemp("dsr")
    sets = root / "math500.jsonl"
    rows = [{"problem": "What is $1+1$?", "answer": "2"},
            {"problem": "Simplify $\\frac{2}{4}$.", "answer": "$\\frac{1}{2}$"}]
    sets.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform", overrides=[
        f"task.eval_sets=[{{name: math500, path: {sets}}}]"])
    return cfg, root


def test_deepscaler_parquet_loads_through_the_paper_pairs_path(deepscaler_run: tuple[Any, Path]) -> None:
    from harness.instrument.tasks import load_pool

    cfg, _ = deepscaler_run
    assert cfg.task.path == "../shared/data/deepscaler_10240.parquet"
    pool = load_pool(cfg.task, cfg.pair)
    assert 10_000 < len(pool.train) <= 10_240  # all of it trains; the eval sets are separate
    assert list(pool.eval_sets) == ["math500"] and [q.answer for q in pool.eval] == ["2", "\\frac{1}{2}"]
    sample = pool.train[::40]
    for q in sample:
        assert pool.verifier(q, f"so the answer is \\boxed{{{q.answer}}}") == 1.0, q.answer
    integers = [q for q in sample if q.answer.lstrip("-").isdigit()]
    assert len(integers) > 50
    for q in integers:
        assert pool.verifier(q, f"\\boxed{{{int(q.answer) + 1}}}") == 0.0
        assert pool.verifier(q, f"\\boxed{{{q.answer}0}}") == 0.0
    assert pool.verifier.failures == 0


def test_reward_file_scores_with_our_verifier(deepscaler_run: tuple[Any, Path],
                                              built_test_model: Path) -> None:
    from harness.executors.openrlhf.reward import (
        eval_label,
        response_text,
        train_label,
        write_reward_file,
    )
    from harness.instrument.tasks import load_pool

    cfg, root = deepscaler_run
    (root / "config.yaml").write_text(config.dump(cfg))
    path = write_reward_file(root / "reward_func.py", root / "config.yaml", str(built_test_model))
    # load the file the way OpenRLHF's SingleTurnAgentExecutor does
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pool = load_pool(cfg.task, cfg.pair)
    q = pool.train[5]
    prompt = "<|im_start|>user\n" + q.text + "<|im_end|>\n<|im_start|>assistant\n"
    right = prompt + f"... so \\boxed{{{q.answer}}}<|endoftext|>"
    wrong = prompt + "... so \\boxed{x + 17}<|endoftext|>"
    out = module.reward_func([right, wrong], [prompt, prompt], [train_label(5), train_label(5)])
    assert out["rewards"].tolist() == [1.0, 0.0] and out["scores"].tolist() == [1.0, 0.0]
    halves = module.reward_func(["Q \\boxed{0.5}"], ["Q "], [eval_label(1)])
    assert halves["rewards"].tolist() == [1.0]  # eval question 1 is 1/2
    assert response_text("P: 42</s>", "P:", ["</s>"]) == " 42"
