"""The useful-work floor of a GRPO step: the FLOPs it cannot avoid, and how fast they could run.

Counted analytically from the model's own shapes (its ``nn.Linear`` modules and attention heads),
not from a trace: the floor computes each distinct prompt once and each response token once,
with no padding, on a causal context (position ``c`` attends to ``c`` keys). Per position that is
2 x (in x out) for every linear layer, 4 x c x heads x head_dim per layer for attention (Q K^T
and A V), and 2 x hidden x vocab for the LM head wherever a logit is needed: at each prompt's
last position and at every response token that a later one follows. Biases, norms, softmax and
the loss are elementwise and left out. A backward pass costs twice its forward (each matmul's
input and weight gradients), so the update's floor is three forward floors.

:func:`matmul_rate` times the model's own linear shapes at a given row count with the threads
this process has, so ``floor seconds = floor FLOPs / rate`` is what the step would take if it did
nothing but its useful matrix products at the speed this core gives them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shapes:
    """What the FLOP count needs to know about a causal LM."""

    layers: int
    attn_width: int  # heads x head_dim
    linear_macs: int  # sum of in x out over the linear layers of all blocks (the LM head apart)
    head_macs: int  # hidden x vocab
    linears: tuple[tuple[int, int], ...]  # (in, out) of every linear layer, the LM head included

    @classmethod
    def of(cls, model: torch.nn.Module) -> Shapes:
        cfg = model.config
        head = model.get_output_embeddings()
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        body = [m for m in linears if m is not head]
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(
            layers=cfg.num_hidden_layers, attn_width=cfg.num_attention_heads * head_dim,
            linear_macs=sum(m.in_features * m.out_features for m in body),
            head_macs=head.in_features * head.out_features,
            linears=tuple((m.in_features, m.out_features) for m in linears))


def forward_flops(shapes: Shapes, prompt_len: int, response_lens: Sequence[int]) -> int:
    """Forward FLOPs of one group: the prompt once, then each response on the prompt's cache."""
    per_token = 2 * shapes.linear_macs
    attn = 4 * shapes.layers * shapes.attn_width  # times the context length
    # prompt positions 1..P attend to 1..P keys; one logit, at the last one
    flops = prompt_len * per_token + attn * prompt_len * (prompt_len + 1) // 2
    flops += 2 * shapes.head_macs
    for n in response_lens:
        fed = max(n - 1, 0)  # the last token predicts nothing scored
        # fed token j sits at position P + j + 1 and attends to that many keys
        contexts = fed * prompt_len + fed * (fed + 1) // 2
        flops += fed * (per_token + 2 * shapes.head_macs) + attn * contexts
    return flops


def rollout_groups(prompt_mask: torch.Tensor, response_mask: torch.Tensor,
                   group: int) -> list[tuple[int, list[int]]]:
    """(real prompt length, response lengths) of each group of ``group`` consecutive rows."""
    p_len = prompt_mask.sum(1).long().tolist()
    r_len = response_mask.sum(1).long().tolist()
    return [(p_len[i], r_len[i:i + group]) for i in range(0, len(p_len), group)]


def step_forward_flops(shapes: Shapes, groups: Sequence[tuple[int, Sequence[int]]]) -> int:
    return sum(forward_flops(shapes, p, rs) for p, rs in groups)


def matmul_rate(shapes: Shapes, rows: int, seconds: float = 0.05) -> float:
    """FLOP/s of ``rows x in @ in x out`` over the model's linear shapes (each distinct shape
    timed for at least ``seconds``, weighted by how often the model has it)."""
    counts: dict[tuple[int, int], int] = {}
    for shape in shapes.linears:
        counts[shape] = counts.get(shape, 0) + 1
    flops = elapsed = 0.0
    for (fan_in, fan_out), count in counts.items():
        # fixed values, no RNG draw: timing must not shift any random stream
        x = torch.full((rows, fan_in), 0.5)
        w = torch.full((fan_out, fan_in), 0.25)
        torch.nn.functional.linear(x, w)  # allocation and kernel choice off the clock
        n, start = 0, time.perf_counter()
        while (spent := time.perf_counter() - start) < seconds or n == 0:
            torch.nn.functional.linear(x, w)
            n += 1
        flops += count * 2.0 * rows * fan_in * fan_out
        elapsed += count * spent / n
    return flops / elapsed
