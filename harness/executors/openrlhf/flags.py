"""Our run config -> OpenRLHF 0.11.2 ``train_ppo_ray`` flags: the one place the two meet.

:func:`check_supported` stops a run whose settings OpenRLHF cannot honour before anything starts,
with a one-line :class:`ConfigError` naming the field. :func:`openrlhf_argv` returns every flag of
the launch. How selbench's GRPO maps onto OpenRLHF's:

- B prompts x G samples: ``--rollout.batch_size B --rollout.n_samples_per_prompt G``; one optimizer
  step per mini-batch of prompts: ``--train.batch_size mini_batch_size * G`` (OpenRLHF counts
  sequences), one pass: ``--train.max_epochs 1``.
- Advantages ``(r - mean_g) / (std_g + 1e-9)``: ``--algo.advantage.estimator group_norm``.
- PPO-clip with token-mean aggregation: ``--actor.eps_clip``, ``--actor.loss_agg_mode token-mean``.
- KL: none (``--algo.kl.init_coef 0``, no reference model), or the k3 estimator as a loss term.
- Constant learning rate (linear warm-up over ``warmup_steps`` GRPO steps when set).
- Rollout replay: replayed groups carry their behaviour log-probs as ``rollout_log_probs`` and fresh
  ones carry pi_old, so OpenRLHF's token-level importance correction with clipping and no bound,
  ``coef = pi_old / mu`` times the PPO-clip loss of ``pi / pi_old``, is exactly
  :func:`harness.core.grpo.policy_loss` with ``behaviour_logp`` (tested in ``tests/test_openrlhf.py``).

Prompts never come from OpenRLHF's dataset: no ``--data.prompt_dataset`` is passed, the selbench
controller feeds the sample generator from the strategy; prompt text is rendered by selbench
(:func:`harness.instrument.policy.render_prompt`), so no chat template or input template flag is passed.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import RunConfig
from harness.config.base import ConfigError
from strategies.base import selects_rollouts
from strategies.registry import get_entry

# No upper bound on the replay importance weight (the paper's corrected clip has none); a finite
# number because OpenRLHF clamps with it.
REPLAY_IS_BOUND = 1e30


def actor_processes(cfg: RunConfig) -> int:
    o = cfg.executor.openrlhf
    return o.nodes * o.gpus_per_node


def optimizer_steps(cfg: RunConfig) -> int:
    """Optimizer steps of the whole run: OpenRLHF sizes its LR schedule with this."""
    t = cfg.train
    return t.steps * (t.batch_size // t.mini_batch_size)


def check_supported(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` for settings OpenRLHF cannot honour (before any work)."""
    t, o = cfg.train, cfg.executor.openrlhf
    prefix = "executor.openrlhf"
    if o.colocate_all and o.nodes * o.gpus_per_node != o.vllm_engines * o.vllm_tensor_parallel:
        raise ConfigError(f"{prefix}.vllm_engines", o.vllm_engines,
                          f"with colocate_all the engines must cover the actor GPUs: vllm_engines x "
                          f"vllm_tensor_parallel = nodes x gpus_per_node = {o.nodes * o.gpus_per_node}")
    if o.packing_samples and "flash_attention" not in o.attn_implementation:
        raise ConfigError(f"{prefix}.attn_implementation", o.attn_implementation,
                          "packing_samples needs a flash_attention kernel (OpenRLHF would silently "
                          "switch it); set packing_samples=false or a flash_attention_* kernel")
    if o.max_tokens_per_gpu is not None and not o.packing_samples:
        raise ConfigError(f"{prefix}.max_tokens_per_gpu", o.max_tokens_per_gpu,
                          "token-budget batching needs packing_samples=true")
    sequences_per_step = t.mini_batch_size * t.group_size
    if o.max_tokens_per_gpu is None and sequences_per_step % (o.micro_train_batch_size
                                                              * actor_processes(cfg)):
        raise ConfigError("train.mini_batch_size", t.mini_batch_size,
                          f"mini_batch_size x group_size = {sequences_per_step} sequences must split "
                          f"evenly over {actor_processes(cfg)} actor GPUs x micro_train_batch_size "
                          f"{o.micro_train_batch_size} (DeepSpeed gradient accumulation)")
    if t.batch_size * t.group_size // o.micro_rollout_batch_size < actor_processes(cfg):
        raise ConfigError(f"{prefix}.micro_rollout_batch_size", o.micro_rollout_batch_size,
                          f"too large: every one of the {actor_processes(cfg)} actor GPUs needs at "
                          "least one micro-batch of the step's sequences")
    if t.warmup_steps > t.steps:
        raise ConfigError("train.warmup_steps", t.warmup_steps,
                          f"OpenRLHF warms up over a share of the run: at most train.steps={t.steps}")
    if cfg.eval.temperature == 0 and cfg.eval.top_p < 1:
        raise ConfigError("eval.top_p", cfg.eval.top_p, "greedy evaluation takes top_p=1.0")
    if selects_rollouts(get_entry(cfg.strategy_name).factory):
        raise ConfigError("strategy.name", cfg.strategy_name,
                          "this strategy samples more rollouts per prompt than it trains on (PODS "
                          "down-sampling), which the OpenRLHF executor does not support; run it "
                          "with executor.name=inprocess")


def openrlhf_argv(cfg: RunConfig, model_path: str, reward_file: Path, work_dir: Path) -> list[str]:
    """Every flag of ``python -m openrlhf.cli.train_ppo_ray`` for this run, in one list.

    ``work_dir`` (the run folder's ``openrlhf/``) receives OpenRLHF's checkpoints and final model.
    """
    check_supported(cfg)
    t, o = cfg.train, cfg.executor.openrlhf
    ckpt_path = Path(o.ckpt_path) if o.ckpt_path else work_dir / "ckpt"
    argv = [
        # cluster layout
        "--actor.num_nodes", str(o.nodes),
        "--actor.num_gpus_per_node", str(o.gpus_per_node),
        "--vllm.num_engines", str(o.vllm_engines),
        "--vllm.tensor_parallel_size", str(o.vllm_tensor_parallel),
        "--vllm.gpu_memory_utilization", repr(o.vllm_gpu_memory_utilization),
        # model and data: prompts and rewards are selbench's
        "--actor.model_name_or_path", model_path,
        "--reward.remote_url", str(reward_file),
        "--data.max_len", str(o.max_prompt_len + t.max_new_tokens),
        # one GRPO step: B prompts x G samples, one optimizer step per mini-batch, one pass
        "--rollout.batch_size", str(t.batch_size),
        "--rollout.n_samples_per_prompt", str(t.group_size),
        "--rollout.max_new_tokens", str(t.max_new_tokens),
        "--rollout.temperature", repr(t.temperature),
        "--rollout.top_p", "1.0",
        "--rollout.micro_batch_size", str(o.micro_rollout_batch_size),
        "--train.batch_size", str(t.mini_batch_size * t.group_size),
        "--train.micro_batch_size", str(o.micro_train_batch_size),
        "--train.max_epochs", "1",
        "--train.num_episodes", "1",
        "--train.seed", str(cfg.seed),
        # the GRPO objective
        "--algo.advantage.estimator", "group_norm",
        "--actor.eps_clip", repr(t.clip_eps),
        "--actor.loss_agg_mode", "token-mean",
        "--actor.policy_loss_type", "ppo",
        # optimizer: AdamW, learning rate warmed up, then constant or cosine to a floor
        "--actor.optim", "adam",
        "--actor.adam.lr", repr(t.lr),
        "--actor.adam.betas", repr(t.adam_betas[0]), repr(t.adam_betas[1]),
        "--actor.adam.weight_decay", repr(t.weight_decay),
        "--actor.max_norm", repr(t.grad_clip),
        "--actor.lr_scheduler", ("cosine_with_min_lr" if t.lr_schedule == "cosine" else
                                 "constant_with_warmup" if t.warmup_steps else "constant"),
        "--actor.lr_warmup_ratio", repr(t.warmup_steps / t.steps),
        "--actor.min_lr_ratio", repr(t.lr_min_ratio),
        # DeepSpeed
        "--ds.zero_stage", str(o.zero_stage),
        "--ds.param_dtype", o.param_dtype,
        "--ds.attn_implementation", o.attn_implementation,
        # checkpoints: OpenRLHF saves the actor, selbench saves its own state at the same steps
        "--ckpt.path", str(ckpt_path),
        "--ckpt.output_dir", str(work_dir / "model"),
        "--ckpt.save_steps", str(t.checkpoint_every or -1),
        "--ckpt.load_enable",
        "--ckpt.best_metric_key", "none",
        "--eval.steps", "-1",  # evaluation is selbench's, off the clock
        "--logger.logging_steps", "1",
    ]
    if t.kl_coef > 0:
        argv += ["--algo.kl.init_coef", repr(t.kl_coef), "--algo.kl.use_loss",
                 "--algo.kl.estimator", "k3", "--ref.num_nodes", str(o.nodes),
                 "--ref.num_gpus_per_node", str(o.gpus_per_node)]
        if o.colocate_all:
            argv += ["--train.colocate_actor_ref"]
    else:
        argv += ["--algo.kl.init_coef", "0"]
    if cfg.replay.enabled:
        argv += ["--algo.advantage.is_correction_level", "token",
                 "--algo.advantage.is_correction_mode", "clip",
                 "--algo.advantage.is_correction_gating", "ratio",
                 "--algo.advantage.is_correction_threshold", "0.0", repr(REPLAY_IS_BOUND)]
    if o.colocate_all:
        argv += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
    if o.gradient_checkpointing:
        argv += ["--actor.gradient_checkpointing_enable"]
    if o.packing_samples:
        argv += ["--ds.packing_samples"]
    if o.max_tokens_per_gpu is not None:
        argv += ["--train.dynamic_batch_enable", "--train.max_tokens_per_gpu",
                 str(o.max_tokens_per_gpu), "--rollout.max_tokens_per_gpu", str(o.max_tokens_per_gpu)]
    if o.adam_offload:
        argv += ["--ds.adam_offload"]
    if o.dynamic_filtering:
        low, high = o.dynamic_filtering_range
        argv += ["--algo.dynamic_filtering_enable", "--algo.dynamic_filtering_range",
                 repr(float(low)), repr(float(high))]
    return argv
