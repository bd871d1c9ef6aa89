"""One GRPO step of selbench's backbone against TRL's ``GRPOTrainer``, on identical work.

Run: ``python -m pytest tests/bench_trl.py -m bench -q`` (the file is not collected by default;
it needs the ``bench`` extra: trl, accelerate, datasets). Skipped when trl is not installed.

Identical work on both sides: the same tiny Qwen2 weights (loaded from one directory), the same
tokenizer, the same B prompt strings (rendered by :func:`harness.instrument.policy.render_prompt`), G samples
each at temperature 1.0 with at most T new tokens, rewards from the same verifier, group-normalised
advantages, one PPO-clip loss over all B*G sequences, one AdamW step (same lr, betas, grad clip
1.0), no KL and no reference model, float32, the same torch thread count, CPU only.

The model is built with ``warm_steps: 0``: an untrained model almost never samples EOS, so both
sides generate (nearly) all B*G*T tokens every round instead of a random number of early-stopped
ones. The mean completion length of each side is recorded to show it.

What is timed (both sides start from a fresh trainer made in an untimed ``setup``, so every round
is the same first step on the same weights; one warm-up round first):

- selbench: ``Trainer.train_step(1)`` - select, sample, decode, verify, advantages, the update
  (with mini_batch_size == batch_size it takes the old log-probs from the training forward, as
  TRL does, instead of a separate forward).
- TRL: ``trainer.train()`` with ``max_steps=1``. That call also runs a full ``gc.collect()``
  (``accelerator.free_memory()``, ~0.2 s here, the bulk of it), builds the optimizer (selbench
  does that in ``Trainer.__init__``) and the dataloader, runs ``accelerator.prepare`` and the
  train-begin/end callbacks: once-per-run work, not a GRPO step. A callback therefore also times
  TRL's own loop from ``on_step_begin`` to ``on_step_end`` (generation, rewards, loss, backward,
  clip, optimizer and scheduler step, zero_grad): that window is "one GRPO step" as TRL runs it,
  and the headline ratio uses it. The ratio against the whole ``train()`` call is reported too.

Known asymmetry, inherent to TRL and left as it is: TRL also computes token entropies in the loss
forward, for its logs (it cannot be switched off). Sampled completions differ (different RNGs);
an untrained model samples EOS rarely, and both sides pad every row to the longest anyway.

After both benchmarks of a size, ``extra_info`` holds the ratios and a table is written to
``results/bench/trl_vs_selbench.md``.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from transformers import PrinterCallback, TrainerCallback

from harness import config
from harness.instrument import policy
from harness.runs.paths import results_dir

pytest.importorskip("trl")
pytest.importorskip("accelerate")
pytest.importorskip("datasets")

pytestmark = pytest.mark.bench

# Both sides use the same intra-op thread count: by default the machine's two cores. While other
# processes keep the cores busy, two OpenMP threads per process slow down erratically (5-10x seen
# here) and one thread gives stable numbers: SELBENCH_BENCH_THREADS=1 then.
THREADS = int(os.environ.get("SELBENCH_BENCH_THREADS", "2"))
ROUNDS = 7
WARMUP = 1
LR = 1e-4
SEED = 0

# Larger than the unit-test model (hidden 64, 2 layers) so the step is dominated by model math,
# not Python overhead, as it is for real models. head_dim 32 passes the tiny spec's check.
BENCH_MODEL: dict[str, Any] = {
    "description": "benchmark-only tiny model (untrained: completions run to max length)",
    "kind": "tiny",
    "prompt_template": "{question}\nAnswer:",
    "answer_template": " {answer}",
    "tiny": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "num_kv_heads": 4,
             "intermediate_size": 512, "vocab_size": 512, "max_position": 256,
             "warm_steps": 0, "seed": 0},
    # only the tokenizer is trained on these (warm_steps is 0)
    "warm_start_task": {
        "source": "reasoning_gym", "seed": 5, "n_train": 2000, "n_eval": 1,
        "tiers": [{"name": "cs3", "dataset": "chain_sum", "weight": 1,
                   "params": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1}}],
    },
}


@dataclass(frozen=True)
class Size:
    prompts: int  # B
    group: int  # G
    tokens: int  # T, max new tokens

    @property
    def name(self) -> str:
        return f"B{self.prompts}-G{self.group}-T{self.tokens}"


# The default size, and a decode-heavy one (4x the tokens per completion, half the prompts).
SIZES = [Size(16, 8, 8), Size(8, 8, 32)]


def pair_dict(size: Size) -> dict[str, Any]:
    # The pool holds exactly B questions, so uniform selection picks all of them every step:
    # selbench trains on the same B prompts that make up TRL's dataset.
    return {
        "description": f"benchmark pair {size.name}",
        "model": "bench-tiny",
        "task": {
            "source": "reasoning_gym", "seed": 7, "n_train": size.prompts, "n_eval": 1,
            "answer_format": "first_line",
            "tiers": [{"name": "cs3", "dataset": "chain_sum", "weight": 1,
                       "params": {"min_terms": 3, "max_terms": 3,
                                  "min_digits": 1, "max_digits": 1}}],
        },
        # one optimizer step per GRPO step, one forward/backward over all B*G sequences (as TRL)
        "train": {"batch_size": size.prompts, "group_size": size.group,
                  "mini_batch_size": size.prompts, "micro_batch_size": size.prompts * size.group,
                  "lr": LR, "temperature": 1.0, "max_new_tokens": size.tokens, "kl_coef": 0.0,
                  "grad_clip": 1.0, "clip_eps": 0.2, "threads": THREADS, "checkpoint_every": 0},
    }


@dataclass
class BenchEnv:
    config_dir: Path
    model_dir: Path
    work_dir: Path

    def cfg(self, size: Size) -> config.RunConfig:
        return config.resolve(f"bench-{size.name}", "uniform", seed=SEED,
                              config_dir=self.config_dir)


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory: pytest.TempPathFactory, test_cache: Path) -> BenchEnv:
    """Configs and the built model, in temp dirs (``test_cache`` points SELBENCH_CACHE there)."""
    root = tmp_path_factory.mktemp("bench_configs")
    for sub in ("models", "pairs", "strategies"):
        (root / sub).mkdir()
    (root / "models" / "bench-tiny.yaml").write_text(yaml.safe_dump(BENCH_MODEL))
    for size in SIZES:
        (root / "pairs" / f"bench-{size.name}.yaml").write_text(yaml.safe_dump(pair_dict(size)))
    env = BenchEnv(root, Path(), tmp_path_factory.mktemp("bench_runs"))
    env.model_dir = policy.build(env.cfg(SIZES[0]).model, progress=False)
    return env


# size name -> column -> value; filled by the benchmarks, written out at module teardown
RESULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def results_table() -> Iterator[None]:
    yield
    if RESULTS:
        write_table(results_dir() / "bench" / "trl_vs_selbench.md")


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_table(path: Path) -> None:
    import accelerate
    import transformers
    import trl

    lines = [
        "# One GRPO step: selbench backbone vs TRL GRPOTrainer",
        "",
        "Command: `"
        + (f"SELBENCH_BENCH_THREADS={THREADS} " if "SELBENCH_BENCH_THREADS" in os.environ else "")
        + "python -m pytest tests/bench_trl.py -m bench -q`",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; CPU: {cpu_name()} "
        f"({os.cpu_count()} cores); torch threads: {THREADS} (both sides)",
        f"- trl {trl.__version__}, transformers {transformers.__version__}, "
        f"accelerate {accelerate.__version__}, torch {torch.__version__}",
        f"- model: tiny Qwen2, hidden {BENCH_MODEL['tiny']['hidden_size']}, "
        f"{BENCH_MODEL['tiny']['num_layers']} layers, float32; {ROUNDS} rounds after "
        f"{WARMUP} warm-up, each on a fresh trainer",
        "- ratio > 1: selbench is faster. 'TRL step' = TRL's loop from on_step_begin to "
        "on_step_end (the headline); 'TRL train()' = the whole `train(max_steps=1)` call.",
        "",
        "| size | selbench step (s) | TRL step (s) | TRL train() (s) | ratio TRL step / ours "
        "| ratio TRL train() / ours | mean completion tokens ours / TRL | load avg during |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in RESULTS.items():
        if "selbench" not in r or "trl_step" not in r:
            continue
        lines.append(
            f"| {name} | {r['selbench']:.3f} | {r['trl_step']:.3f} | {r['trl_train']:.3f} "
            f"| {r['ratio_step']:.2f} | {r['ratio_train']:.2f} "
            f"| {r['len_selbench']:.2f} / {r['len_trl']:.2f} "
            f"| {r['load_selbench']} ; {r['load_trl']} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"\n{path}:\n" + "\n".join(lines))


# ------------------------------------------------------------------ selbench


def bench_selbench_step(benchmark: Any, bench_env: BenchEnv, size: Size) -> None:
    from harness.executors.trainer import Trainer

    cfg = bench_env.cfg(size)
    metrics: list[dict[str, float]] = []
    counter = iter(range(10**6))

    def setup() -> tuple[tuple[Trainer], dict[str, Any]]:
        torch.set_num_threads(THREADS)  # Trainer sets it too (train.threads); be explicit
        trainer = Trainer(cfg, bench_env.work_dir / f"{size.name}-{next(counter)}",
                          progress=False)
        return (trainer,), {}

    def step(trainer: Trainer) -> None:
        metrics.append(trainer.train_step(1))

    benchmark.group = f"grpo-step {size.name}"
    load_before = load_avg()
    benchmark.pedantic(step, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP)
    median = benchmark.stats.stats.median
    mean_len = statistics.mean(m["train/response_len"] for m in metrics[WARMUP:])
    assert all(m["cost/samples"] == size.prompts * size.group for m in metrics)
    benchmark.extra_info.update({"threads": THREADS, "mean_completion_tokens": mean_len,
                                 "load_avg_before": load_before, "load_avg_after": load_avg()})
    RESULTS.setdefault(size.name, {}).update(
        {"selbench": median, "len_selbench": mean_len, "load_selbench": load_avg()})


# ------------------------------------------------------------------ TRL


class StepWindow(TrainerCallback):
    """Times TRL's own loop around each optimizer step; keeps the last logs and thread counts."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.threads: list[int] = []
        self.logs: list[dict[str, float]] = []
        self._start = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.threads.append(torch.get_num_threads())
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self._start)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
               **kwargs: Any) -> None:
        if logs and "completions/mean_length" in logs:
            self.logs.append(dict(logs))


def verifier_reward(pool: Any) -> Callable[..., list[float]]:
    """A TRL reward function calling our verifier, exactly as ``Trainer._score`` does."""

    def reward(prompts: list[str], completions: list[str], qidx: list[int],
               **_: Any) -> list[float]:
        return [pool.verifier(pool.train[i], c) for i, c in zip(qidx, completions, strict=True)]

    return reward


def make_trl_trainer(bench_env: BenchEnv, size: Size, out_dir: Path, window: StepWindow) -> Any:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from harness.instrument.models import load_policy
    from harness.instrument.tasks import load_pool

    cfg = bench_env.cfg(size)
    pool = load_pool(cfg.task, cfg.pair)
    model, tokenizer = load_policy(bench_env.model_dir)  # same weights as selbench loads
    prompts = [policy.render_prompt(cfg.model, tokenizer, q.text) for q in pool.train]
    # TRL tokenizes plain-text prompts with special tokens on, selbench with them off: the same
    # ids only if the tokenizer adds none (true for selbench's BPE tokenizers); check it.
    assert all(tokenizer(p)["input_ids"] == tokenizer(p, add_special_tokens=False)["input_ids"]
               for p in prompts)
    dataset = Dataset.from_dict({"prompt": prompts, "qidx": list(range(len(prompts)))})
    t = cfg.train
    args = GRPOConfig(
        output_dir=str(out_dir),
        use_cpu=True, bf16=False, fp16=False, use_vllm=False,
        # TRL counts completions per device batch: B*G in one batch, no accumulation, and one
        # generation of B*G completions per optimizer step (steps_per_generation = 1)
        per_device_train_batch_size=size.prompts * size.group,
        gradient_accumulation_steps=1,
        generation_batch_size=size.prompts * size.group,
        num_generations=size.group,
        max_completion_length=size.tokens,
        temperature=t.temperature, top_p=1.0, top_k=0,
        # no KL, hence no reference model; one pass over each generation: no extra old-logp pass
        beta=0.0, num_iterations=1,
        epsilon=t.clip_eps, loss_type="dapo",  # token-mean over the batch, as grpo.policy_loss
        scale_rewards="group",
        learning_rate=t.lr, lr_scheduler_type="constant", warmup_steps=0,
        optim="adamw_torch", weight_decay=t.weight_decay,
        adam_beta1=t.adam_betas[0], adam_beta2=t.adam_betas[1], max_grad_norm=t.grad_clip,
        gradient_checkpointing=False,  # TRL's default is on; selbench never recomputes
        disable_dropout=True,
        max_steps=1, seed=SEED,
        report_to="none", logging_strategy="no", save_strategy="no", eval_strategy="no",
        log_completions=False, disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[verifier_reward(pool)], args=args,
                          train_dataset=dataset, processing_class=tokenizer, callbacks=[window])
    trainer.remove_callback(PrinterCallback)  # it prints the end-of-train log dict to stdout
    assert trainer.ref_model is None and not trainer.args.gradient_checkpointing
    return trainer


def bench_trl_step(benchmark: Any, bench_env: BenchEnv, size: Size) -> None:
    import trl

    window = StepWindow()
    counter = iter(range(10**6))

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        torch.set_num_threads(THREADS)
        out = bench_env.work_dir / f"trl-{size.name}-{next(counter)}"
        return (make_trl_trainer(bench_env, size, out, window),), {}

    def step(trainer: Any) -> None:
        trainer.train()

    benchmark.group = f"grpo-step {size.name}"
    load_before = load_avg()
    benchmark.pedantic(step, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP)
    # one optimizer step per train() call, in TRL's loop, on our thread count
    assert len(window.seconds) == ROUNDS + WARMUP
    assert set(window.threads) == {THREADS}
    train_median = benchmark.stats.stats.median
    step_median = statistics.median(window.seconds[WARMUP:])
    mean_len = statistics.mean(log["completions/mean_length"] for log in window.logs[WARMUP:])
    info: dict[str, Any] = {
        "trl_version": trl.__version__, "threads": THREADS, "mean_completion_tokens": mean_len,
        "step_window_median_s": step_median, "train_call_median_s": train_median,
        "load_avg_before": load_before, "load_avg_after": load_avg(),
    }
    row = RESULTS.setdefault(size.name, {})
    row.update({"trl_step": step_median, "trl_train": train_median, "len_trl": mean_len,
                "load_trl": load_avg()})
    if "selbench" in row:  # absent when only the TRL benchmark was selected
        row["ratio_step"] = step_median / row["selbench"]
        row["ratio_train"] = train_median / row["selbench"]
        info.update({"ratio_trl_step_over_selbench": row["ratio_step"],
                     "ratio_trl_train_over_selbench": row["ratio_train"]})
    benchmark.extra_info.update(info)


# ------------------------------------------------------------------ the benchmarks

SIDES = {"selbench": bench_selbench_step, "trl": bench_trl_step}


# One test, parametrised so that the two sides of a size run back to back (selbench, then TRL):
# on a shared machine, load that comes and goes then hits both sides of a comparison alike.
@pytest.mark.parametrize(
    ("size", "side"), [(size, side) for size in SIZES for side in SIDES],
    ids=[f"{size.name}-{side}" for size in SIZES for side in SIDES])
def test_bench_grpo_step(benchmark: Any, bench_env: BenchEnv, size: Size, side: str) -> None:
    SIDES[side](benchmark, bench_env, size)
