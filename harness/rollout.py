"""Sampling responses from the policy: batched, KV-cached, with behaviour log-probs.

We run our own decode loop rather than ``model.generate`` for three reasons: an explicit
``torch.Generator`` makes sampling reproducible per step (resume = uninterrupted run), the
log-prob of every sampled token under the exact sampling distribution comes for free (replay
needs it later), and there is no logits-processor overhead per token, which dominates for tiny
models. Works for any HF causal LM with a KV cache (Qwen2, Llama/SmolLM2).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel


@dataclass
class Rollouts:
    """A batch of sampled responses. Prompts left-padded, responses right-padded."""

    prompt_ids: torch.Tensor  # [N, P]
    prompt_mask: torch.Tensor  # [N, P] long
    response_ids: torch.Tensor  # [N, R]
    response_mask: torch.Tensor  # [N, R] float: 1 for real tokens up to and including EOS
    behaviour_logp: torch.Tensor  # [N, R] log-prob of each token under the sampling distribution

    @property
    def num_tokens(self) -> int:
        return int(self.response_mask.sum())


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
    return ids, mask


def _cache_kwarg(model: PreTrainedModel) -> str:
    """The forward argument that takes the KV cache: transformers 5.x renamed ``past_key_values``
    to ``cache`` (the old name warns on every call, then goes in 5.40)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, as generation and training must agree on them."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()  # not inference_mode: rollout tensors feed the autograd update later
def sample(
    model: PreTrainedModel,
    prompt_tokens: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float,
    eos_ids: Sequence[int],
    pad_id: int,
    generator: torch.Generator | None = None,
) -> Rollouts:
    """Sample one response per prompt (repeat prompts for G samples). temperature 0 = greedy."""
    prompt_ids, prompt_mask = left_pad(prompt_tokens, pad_id)
    n = prompt_ids.shape[0]
    eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long)
    cache = DynamicCache()
    kv = {_cache_kwarg(model): cache}
    mask = prompt_mask
    pos = positions(mask)
    # only the last position's logits are sampled from: skip the LM head (and a [N, P, vocab]
    # float tensor, gigabytes for 49k-token vocabularies) at every other prompt position
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=pos,
                use_cache=True, logits_to_keep=1, **kv)
    logits = out.logits[:, -1, :].float()
    next_pos = pos[:, -1] + 1
    finished = torch.zeros(n, dtype=torch.bool)
    tokens, logps, alive = [], [], []
    for t in range(max_new_tokens):
        if temperature > 0:
            logp_all = torch.log_softmax(logits / temperature, dim=-1)
            tok = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
        else:
            logp_all = torch.log_softmax(logits, dim=-1)
            tok = logits.argmax(dim=-1)
        tok_logp = logp_all.gather(-1, tok.unsqueeze(-1)).squeeze(-1)
        tok = torch.where(finished, torch.full_like(tok, pad_id), tok)
        alive.append(~finished)
        tokens.append(tok)
        logps.append(torch.where(finished, torch.zeros_like(tok_logp), tok_logp))
        finished = finished | torch.isin(tok, eos)
        if bool(finished.all()) or t == max_new_tokens - 1:
            break
        # the token just sampled is real iff its row was still alive when it was drawn
        mask = torch.cat([mask, alive[-1].long().unsqueeze(-1)], dim=-1)
        out = model(input_ids=tok.unsqueeze(-1), attention_mask=mask,
                    position_ids=next_pos.unsqueeze(-1), use_cache=True, **kv)
        logits = out.logits[:, -1, :].float()
        next_pos = next_pos + 1
    return Rollouts(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        response_ids=torch.stack(tokens, dim=1),
        response_mask=torch.stack(alive, dim=1).float(),
        behaviour_logp=torch.stack(logps, dim=1),
    )


def sample_batched(
    model: PreTrainedModel,
    prompt_tokens: Sequence[Sequence[int]],
    batch_size: int,
    **kwargs,
) -> list[Rollouts]:
    """Split a long prompt list into generation batches (bounded memory for big evals)."""
    return [sample(model, prompt_tokens[i:i + batch_size], **kwargs)
            for i in range(0, len(prompt_tokens), batch_size)]


def sequence_logprobs(
    model: PreTrainedModel, ro: Rollouts, temperature: float, rows: slice | torch.Tensor | None = None
) -> torch.Tensor:
    """Log-probs of the response tokens under ``model`` (with grad if enabled), ``[n, R]``."""
    from harness.grpo import token_logprobs

    sel = slice(None) if rows is None else rows
    p_ids, p_mask = ro.prompt_ids[sel], ro.prompt_mask[sel]
    r_ids, r_mask = ro.response_ids[sel], ro.response_mask[sel]
    ids = torch.cat([p_ids, r_ids], dim=1)
    mask = torch.cat([p_mask, r_mask.long()], dim=1)
    n_resp = r_ids.shape[1]
    # logits at position t predict token t+1: response token j is predicted at P - 1 + j, so
    # only the last R + 1 positions need the LM head (as TRL does); the very last predicts
    # nothing we score. Same values as slicing full logits, without the prompt positions' cost.
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask),
                   logits_to_keep=n_resp + 1).logits
    return token_logprobs(logits[:, :n_resp, :], r_ids, temperature)
