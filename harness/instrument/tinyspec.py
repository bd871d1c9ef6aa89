"""The tiny model's architecture and warm-start settings: torch-free, so that config loading and
validation (``harness.config``) import neither torch nor transformers. The model is built from
it in :mod:`harness.instrument.models.tiny`.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.base import check, opt

# vLLM's CPU attention kernels reject smaller heads (DESIGN-NOTES section 5).
MIN_HEAD_DIM = 32
# 256 byte tokens + eos: the byte-level BPE's floor (harness.instrument.models.tokenizer)
MIN_VOCAB_SIZE = 257


@dataclass
class TinyModelSpec:
    """Architecture and warm start of a tiny ``Qwen2ForCausalLM`` policy."""

    hidden_size: int = opt(128, "model width (d_model); hidden_size / num_heads must be >= 32")
    num_layers: int = opt(4, "number of transformer blocks")
    num_heads: int = opt(4, "attention heads; head_dim = hidden_size / num_heads")
    num_kv_heads: int = opt(4, "key/value heads (grouped-query attention); divides num_heads")
    intermediate_size: int = opt(512, "width of the SwiGLU feed-forward layer")
    vocab_size: int = opt(
        512, "target BPE vocabulary size (an upper bound: a small corpus may yield fewer tokens)"
    )
    max_position: int = opt(256, "longest sequence (prompt + completion) the model handles")
    tie_word_embeddings: bool = opt(True, "share the input embedding and output projection")
    rope_theta: float = opt(10000.0, "RoPE base frequency")
    warm_steps: int = opt(300, "supervised warm-start steps (AdamW) on the examples; 0 = none")
    warm_lr: float = opt(1e-3, "peak warm-start learning rate (linear warm-up, cosine decay)")
    warm_batch_size: int = opt(64, "examples per warm-start step")
    warm_weight_decay: float = opt(0.0, "AdamW weight decay during the warm start")
    seed: int = opt(0, "seed for the initial weights and the warm-start batch order")

    def validate(self, prefix: str = "model") -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        p = f"{prefix}."
        for name in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"):
            value = getattr(self, name)
            check(isinstance(value, int) and value >= 1, p + name, value, "an integer >= 1")
        check(
            self.hidden_size % self.num_heads == 0,
            p + "hidden_size",
            self.hidden_size,
            f"a multiple of num_heads ({self.num_heads})",
        )
        head_dim = self.hidden_size // self.num_heads
        check(
            head_dim >= MIN_HEAD_DIM and head_dim % 2 == 0,
            p + "num_heads",
            self.num_heads,
            f"such that hidden_size / num_heads is even and >= {MIN_HEAD_DIM} (vLLM), got {head_dim}",
        )
        check(
            self.num_heads % self.num_kv_heads == 0,
            p + "num_kv_heads",
            self.num_kv_heads,
            f"a divisor of num_heads ({self.num_heads})",
        )
        check(
            isinstance(self.vocab_size, int) and self.vocab_size >= MIN_VOCAB_SIZE,
            p + "vocab_size",
            self.vocab_size,
            f"an integer >= {MIN_VOCAB_SIZE} (256 byte tokens + eos)",
        )
        check(
            isinstance(self.max_position, int) and self.max_position >= 16,
            p + "max_position",
            self.max_position,
            "an integer >= 16",
        )
        check(self.rope_theta > 0, p + "rope_theta", self.rope_theta, "a number > 0")
        check(
            isinstance(self.warm_steps, int) and self.warm_steps >= 0,
            p + "warm_steps",
            self.warm_steps,
            "an integer >= 0",
        )
        check(self.warm_lr > 0, p + "warm_lr", self.warm_lr, "a number > 0")
        check(
            isinstance(self.warm_batch_size, int) and self.warm_batch_size >= 1,
            p + "warm_batch_size",
            self.warm_batch_size,
            "an integer >= 1",
        )
        check(
            self.warm_weight_decay >= 0,
            p + "warm_weight_decay",
            self.warm_weight_decay,
            "a number >= 0",
        )
        check(isinstance(self.seed, int), p + "seed", self.seed, "an integer")
