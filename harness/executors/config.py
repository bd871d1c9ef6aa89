"""The ``executor`` config section: which backbone runs the GRPO loop, and its settings.

``inprocess`` is :mod:`harness.executors.trainer` (torch + transformers in one process, CPU or one GPU);
``openrlhf`` launches OpenRLHF's GRPO on a Ray cluster with selbench in charge of the data
(:mod:`harness.executors.openrlhf`). The OpenRLHF settings describe the cluster and its engines;
the GRPO math (batch, G, lr, clip, lengths, temperature) comes from ``train`` as for every run.
Torch-free, so that config validation stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.base import check, opt

EXECUTORS = ("inprocess", "openrlhf")


@dataclass
class OpenRLHFConfig:
    """Cluster layout and engine settings for ``executor.name: openrlhf``."""

    nodes: int = opt(1, "nodes for the DeepSpeed actor group")
    gpus_per_node: int = opt(8, "GPUs per node for the actor group (the paper: 8)")
    vllm_engines: int = opt(8, "vLLM rollout engines")
    vllm_tensor_parallel: int = opt(1, "tensor-parallel GPUs per vLLM engine")
    vllm_gpu_memory_utilization: float = opt(0.6, "share of GPU memory vLLM may take")
    colocate_all: bool = opt(True, "actor and vLLM engines share the GPUs (sleep mode between phases)")
    zero_stage: int = opt(2, "DeepSpeed ZeRO stage")
    param_dtype: str = opt("bf16", "training dtype: 'bf16' or 'fp16'")
    gradient_checkpointing: bool = opt(True, "recompute activations in the backward pass")
    attn_implementation: str = opt("flash_attention_2", "attention kernel of the actor")
    packing_samples: bool = opt(True, "pack sequences without padding (needs flash attention)")
    micro_train_batch_size: int = opt(4, "sequences per GPU per training forward (memory only)")
    micro_rollout_batch_size: int = opt(8, "sequences per GPU per log-prob forward (memory only)")
    max_tokens_per_gpu: int | None = opt(None, "token budget per GPU micro-batch; set it to batch "
                                         "by tokens (the paper's code: 8192 + response length)")
    max_prompt_len: int = opt(1024, "prompt token budget; OpenRLHF's max_len = this + response")
    adam_offload: bool = opt(False, "keep Adam states on the CPU")
    dynamic_filtering: bool = opt(False, "OpenRLHF's dynamic filtering: groups whose mean reward "
                                  "is outside the range are dropped and refilled (refills come "
                                  "from the selbench strategy)")
    dynamic_filtering_range: list[float] = opt(help="(low, high) exclusive bounds on a group's "
                                               "mean reward", factory=lambda: [0.0, 1.0])
    ray_address: str | None = opt(None, "Ray cluster to join (None: the one in RAY_ADDRESS, or a "
                                  "new local one)")
    ckpt_path: str | None = opt(None, "OpenRLHF checkpoint folder (None: <run folder>/openrlhf/ckpt)")

    def validate(self, prefix: str = "executor.openrlhf") -> None:
        for name in ("nodes", "gpus_per_node", "vllm_engines", "vllm_tensor_parallel",
                     "micro_train_batch_size", "micro_rollout_batch_size", "max_prompt_len"):
            value = getattr(self, name)
            check(isinstance(value, int) and value > 0, f"{prefix}.{name}", value,
                  "a positive integer")
        check(0 < self.vllm_gpu_memory_utilization <= 1, f"{prefix}.vllm_gpu_memory_utilization",
              self.vllm_gpu_memory_utilization, "must be in (0, 1]")
        check(self.zero_stage in (0, 1, 2, 3), f"{prefix}.zero_stage", self.zero_stage,
              "one of 0, 1, 2, 3")
        check(self.param_dtype in ("bf16", "fp16"), f"{prefix}.param_dtype", self.param_dtype,
              "'bf16' or 'fp16'")
        check(self.max_tokens_per_gpu is None or self.max_tokens_per_gpu > 0,
              f"{prefix}.max_tokens_per_gpu", self.max_tokens_per_gpu, "null or a positive integer")
        low_high = self.dynamic_filtering_range
        check(len(low_high) == 2 and low_high[0] < low_high[1], f"{prefix}.dynamic_filtering_range",
              low_high, "two numbers low < high, e.g. [0.0, 1.0]")


@dataclass
class ExecutorConfig:
    """Which backbone runs the loop (part of the run id: records of the two never mix)."""

    name: str = opt("inprocess", f"one of {EXECUTORS}; `selbench run --executor NAME` sets it")
    openrlhf: OpenRLHFConfig = opt(help="OpenRLHF cluster settings", factory=OpenRLHFConfig)

    def validate(self, prefix: str = "executor") -> None:
        check(self.name in EXECUTORS, f"{prefix}.name", self.name, f"one of {EXECUTORS}")
        self.openrlhf.validate(f"{prefix}.openrlhf")
