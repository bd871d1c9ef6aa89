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
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer


@dataclass
class Rollouts:
    """A batch of sampled responses. Prompts left-padded, responses right-padded."""

    prompt_ids: torch.Tensor  # [N, P]
    prompt_mask: torch.Tensor  # [N, P] long
    response_ids: torch.Tensor  # [N, R]
    response_mask: torch.Tensor  # [N, R] float: 1 for real tokens up to and including EOS
    behaviour_logp: torch.Tensor  # [N, R] log-prob of each token under the sampling distribution
    # positions the sampler ran the model on: "real" (prompt and response tokens) and "padded"
    # (real plus padding and finished rows); empty where the engine does not count (vLLM, collate)
    work: dict[str, int] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(self.response_mask.sum())

    def to(self, device: torch.device | str) -> Rollouts:
        return Rollouts(self.prompt_ids.to(device), self.prompt_mask.to(device),
                        self.response_ids.to(device), self.response_mask.to(device),
                        self.behaviour_logp.to(device), work=self.work)


def take_rows(ro: Rollouts, rows: Sequence[int]) -> Rollouts:
    """The rollouts at ``rows``, in that order (the responses PODS keeps for training)."""
    idx = torch.as_tensor(list(rows), dtype=torch.long)
    return Rollouts(ro.prompt_ids[idx], ro.prompt_mask[idx], ro.response_ids[idx],
                    ro.response_mask[idx], ro.behaviour_logp[idx])


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


def prompt_groups(prompt_tokens: Sequence[Sequence[int]]) -> tuple[list[Sequence[int]], torch.Tensor]:
    """(distinct consecutive prompts, index of each row's prompt among them).

    GRPO repeats each prompt G times in a row; computing it once per group and expanding the
    KV cache is the same arithmetic done G times less (DESIGN-NOTES: the prompt is most of a
    short response's sequence)."""
    unique: list[Sequence[int]] = []
    owner: list[int] = []
    for toks in prompt_tokens:
        if not unique or list(toks) != list(unique[-1]):
            unique.append(toks)
        owner.append(len(unique) - 1)
    return unique, torch.tensor(owner, dtype=torch.long)


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row. A CPU generator draws on the CPU whatever device the model is on: the
    same (seed, step) stream then gives a GPU run the tokens a CPU run draws, up to rounding."""
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(-1).to(
        probs.device)


class _ReservedLayer(DynamicLayer):
    """A cache layer whose keys and values live in a buffer reserved for the whole decode.

    HF's DynamicLayer concatenates every new token onto the cache, copying the whole cache of
    every layer at every decode step: a third of a tiny model's generation time. Here a token is
    written into its slot and attention reads a view of the filled part, the same values in the
    same order (tokens and log-probs bit-identical: tests/test_rollout.py)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.device, self.is_initialized = key_states.device, True
            shape = (*key_states.shape[:2], self.capacity, key_states.shape[3])
            self._keys, self._values = key_states.new_empty(shape), value_states.new_empty(shape)
        end = self.length + key_states.shape[-2]
        self._keys[:, :, self.length:end] = key_states
        self._values[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
            # index_select, not advanced indexing: the same copy, about twice as fast on CPU
            self._keys = self._keys.index_select(0, indices)
            self._values = self._values.index_select(0, indices)
            self.keys, self.values = self._keys[:, :, :self.length], self._values[:, :, :self.length]


def _reserved_cache(capacity: int) -> DynamicCache:
    cache = DynamicCache()
    cache.layer_class_to_replicate = lambda: _ReservedLayer(capacity)
    return cache


# Drop finished rows from the decode batch once this share of it has finished: each drop copies
# the KV cache, each finished row left in costs a row of every later decode step.
COMPACT_SHARE = 0.25


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
    """Sample one response per prompt (repeat prompts for G samples). temperature 0 = greedy.

    Each distinct run of repeated prompts is prefilled once and its KV cache shared by its
    rows; rows that have finished leave the decode batch. The tokens drawn are a function of
    (model, prompts, generator) alone.
    """
    dev = model.device
    prompt_ids, prompt_mask = (t.to(dev) for t in left_pad(prompt_tokens, pad_id))
    n = prompt_ids.shape[0]
    eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long, device=dev)
    unique, owner = prompt_groups(prompt_tokens)
    owner = owner.to(dev)
    u_ids, u_mask = (t.to(dev) for t in left_pad(unique, pad_id))
    cache = _reserved_cache(u_ids.shape[1] + max_new_tokens)
    kv = {_cache_kwarg(model): cache}
    u_pos = positions(u_mask)
    # only the last position's logits are sampled from: skip the LM head (and a [N, P, vocab]
    # float tensor, gigabytes for 49k-token vocabularies) at every other prompt position
    out = model(input_ids=u_ids, attention_mask=u_mask, position_ids=u_pos,
                use_cache=True, logits_to_keep=1, **kv)
    logits = out.logits[:, -1, :].float()[owner]
    work = {"real": int(u_mask.sum()), "padded": u_ids.numel()}
    if len(unique) != n:
        cache.batch_select_indices(owner)
    mask = prompt_mask
    next_pos = u_pos[owner, -1] + 1
    tokens = torch.full((n, max_new_tokens), pad_id, dtype=torch.long, device=dev)
    logps = torch.zeros((n, max_new_tokens), device=dev)
    alive = torch.zeros((n, max_new_tokens), dtype=torch.bool, device=dev)
    rows = torch.arange(n, device=dev)  # original row of each decode-batch row
    finished = torch.zeros(n, dtype=torch.bool, device=dev)
    width = 0
    for t in range(max_new_tokens):
        if temperature > 0:
            logp_all = torch.log_softmax(logits / temperature, dim=-1)
            tok = _draw(logp_all.exp(), generator)
        else:
            logp_all = torch.log_softmax(logits, dim=-1)
            tok = logits.argmax(dim=-1)
        live = ~finished  # the token just drawn is real iff its row was still going
        tokens[rows[live], t] = tok[live]
        logps[rows[live], t] = logp_all.gather(-1, tok.unsqueeze(-1)).squeeze(-1)[live]
        alive[rows[live], t] = True
        width = t + 1
        finished = finished | torch.isin(tok, eos)
        if bool(finished.all()) or t == max_new_tokens - 1:
            break
        if int(finished.sum()) >= COMPACT_SHARE * len(rows):
            idx = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(idx)
            rows, tok, live, finished = rows[idx], tok[idx], live[idx], finished[idx]
            mask, next_pos = mask[idx], next_pos[idx]
        # a row finished earlier gets a masked-out pad token: it changes nothing
        tok = torch.where(live, tok, torch.full_like(tok, pad_id))
        mask = torch.cat([mask, live.long().unsqueeze(-1)], dim=-1)
        # real: a drawn token that a later one follows (a row's last token predicts nothing)
        work["real"] += int((live & ~finished).sum())
        work["padded"] += len(rows)
        out = model(input_ids=tok.unsqueeze(-1), attention_mask=mask,
                    position_ids=next_pos.unsqueeze(-1), use_cache=True, **kv)
        logits = out.logits[:, -1, :].float()
        next_pos = next_pos + 1
    return Rollouts(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        response_ids=tokens[:, :width],
        response_mask=alive[:, :width].float(),
        behaviour_logp=logps[:, :width],
        work=work,
    )


def sequence_logprobs(
    model: PreTrainedModel, ro: Rollouts, temperature: float, rows: slice | torch.Tensor | None = None,
    work: dict[str, int] | None = None,
) -> torch.Tensor:
    """Log-probs of the response tokens under ``model`` (with grad if enabled), ``[n, R]``.

    Rows that share their prompt with the row before (a GRPO group) share one prompt pass: its
    KV cache is expanded to the group's rows, with gradients flowing back through it, and only
    the response tokens run per row. Same values as one pass over prompt + response per row, up
    to float rounding (tests/test_rollout.py). ``work``, if given, gets the positions the model
    ran on added to its "real" and "padded" counts."""
    sel = slice(None) if rows is None else rows
    p_ids, p_mask = ro.prompt_ids[sel], ro.prompt_mask[sel]
    r_ids, r_mask = ro.response_ids[sel], ro.response_mask[sel]
    full = r_ids.shape[1]
    # padding past the longest response of these rows is never computed (zeros come back there)
    width = max(1, int(r_mask.sum(1).max())) if r_mask.numel() else full
    r_ids, r_mask = r_ids[:, :width], r_mask[:, :width]
    logp = _shared_prefix_logprobs(model, p_ids, p_mask, r_ids, r_mask, temperature, work)
    return torch.nn.functional.pad(logp, (0, full - width)) if width < full else logp


def length_buckets(ro: Rollouts, lo: int, hi: int, group: int, max_rows: int) -> list[torch.Tensor]:
    """Rows ``lo:hi`` cut into micro-batches of whole groups of similar response length.

    A micro-batch costs its row count times its longest response; sorting groups by length
    before cutting keeps short responses out of long ones' padding. Each micro-batch holds at
    most ``max_rows`` rows (at least one group) and its groups stay contiguous, so prompts are
    still shared. Which rows go together changes float rounding only, never the math: the loss
    is a token-weighted mean over the whole mini-batch."""
    lengths = ro.response_mask[lo:hi].sum(1)
    n_groups = (hi - lo) // group
    if n_groups * group != hi - lo:  # rows are not whole groups: plain contiguous chunks
        return [torch.arange(i, min(i + max_rows, hi)) for i in range(lo, hi, max_rows)]
    longest = lengths.reshape(n_groups, group).max(1).values
    order = sorted(range(n_groups), key=lambda k: (float(longest[k]), k))
    per = max(1, max_rows // group)
    out = []
    for i in range(0, n_groups, per):
        rows = [lo + k * group + j for k in order[i:i + per] for j in range(group)]
        out.append(torch.tensor(rows, dtype=torch.long))
    return out


def _shared_prefix_logprobs(model: PreTrainedModel, p_ids: torch.Tensor, p_mask: torch.Tensor,
                            r_ids: torch.Tensor, r_mask: torch.Tensor,
                            temperature: float, work: dict[str, int] | None) -> torch.Tensor:
    from harness.core.grpo import token_logprobs

    n, n_resp = r_ids.shape
    same = (p_ids[1:] == p_ids[:-1]).all(-1) & (p_mask[1:] == p_mask[:-1]).all(-1)
    first = torch.cat([torch.ones(1, dtype=torch.bool, device=same.device), ~same])
    owner = first.long().cumsum(0) - 1
    u_ids, u_mask = p_ids[first], p_mask[first]
    # trim the left padding every prompt of this slice shares
    lead = int((u_mask.sum(0) == 0).long().cumprod(0).sum())
    u_ids, u_mask, p_mask = u_ids[:, lead:], u_mask[:, lead:], p_mask[:, lead:]
    cache = DynamicCache()
    kv = {_cache_kwarg(model): cache}
    u_pos = positions(u_mask)
    # the prompt's last position predicts response token 0
    out = model(input_ids=u_ids, attention_mask=u_mask, position_ids=u_pos, use_cache=True,
                logits_to_keep=1, **kv)
    first_logits = out.logits[:, -1:, :][owner]
    if work is not None:  # the prompt pass, then the response pass of every row (below)
        # real: each distinct prompt's tokens, and each response token but a row's last, which
        # predicts nothing scored
        useful = int((r_mask.sum(1) - 1).clamp(min=0).sum())
        work["real"] = work.get("real", 0) + int(u_mask.sum()) + useful
        work["padded"] = work.get("padded", 0) + u_ids.numel() + r_ids[:, :-1].numel()
    if n_resp == 1:
        return token_logprobs(first_logits, r_ids, temperature)
    if u_ids.shape[0] != n:
        cache.batch_select_indices(owner)
    # response token j >= 1 is predicted at response position j - 1; the last token predicts
    # nothing we score, so it never enters
    mask = torch.cat([p_mask, r_mask[:, :-1].long()], dim=1)
    pos = positions(mask)[:, p_mask.shape[1]:]
    out = model(input_ids=r_ids[:, :-1], attention_mask=mask, position_ids=pos, use_cache=True,
                **kv)
    logits = torch.cat([first_logits, out.logits], dim=1)
    return token_logprobs(logits, r_ids, temperature)
