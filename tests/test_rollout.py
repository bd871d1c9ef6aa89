"""The shared-prefix sampler and log-prob pass against plain per-row computations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.core.grpo import token_logprobs
from harness.core.rollout import (
    Rollouts,
    length_buckets,
    positions,
    prompt_groups,
    sample,
    sequence_logprobs,
)
from harness.instrument.models import load_policy


def plain_logprobs(model, ro: Rollouts, temperature: float) -> torch.Tensor:
    """One forward over prompt + response per row: what the shared pass must equal."""
    ids = torch.cat([ro.prompt_ids, ro.response_ids], dim=1)
    mask = torch.cat([ro.prompt_mask, ro.response_mask.long()], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits
    r = ro.response_ids.shape[1]
    return token_logprobs(logits[:, -r - 1:-1, :], ro.response_ids, temperature)


@pytest.fixture(scope="module")
def policy(built_test_model: Path):
    torch.manual_seed(0)
    model, tok = load_policy(built_test_model)
    return model, tok


def _prompts(tok, g: int) -> list[list[int]]:
    texts = ["3 + 4 =\nAnswer:", "12 - 5 + 1 =\nAnswer:", "7 =\nAnswer:"]
    return [tok(t, add_special_tokens=False)["input_ids"] for t in texts for _ in range(g)]


def test_prompt_groups_finds_consecutive_runs() -> None:
    unique, owner = prompt_groups([[1, 2], [1, 2], [3], [1, 2]])
    assert unique == [[1, 2], [3], [1, 2]]
    assert owner.tolist() == [0, 0, 1, 2]


def test_greedy_samples_match_generate(policy) -> None:
    model, tok = policy
    prompts = _prompts(tok, 2)
    ro = sample(model, prompts, max_new_tokens=6, temperature=0.0,
                eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id)
    for row, p in enumerate(prompts):
        ref = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                             max_new_tokens=6, do_sample=False, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)[0, len(p):].tolist()
        n = int(ro.response_mask[row].sum())
        assert ro.response_ids[row, :n].tolist() == ref[:n]
        # a row stops at EOS or at the limit, exactly where generate stops
        assert n == len(ref) or ref[n - 1] == tok.eos_token_id


def test_behaviour_logprobs_agree_with_a_recomputed_pass(policy) -> None:
    model, tok = policy
    gen = torch.Generator().manual_seed(3)
    ro = sample(model, _prompts(tok, 8), max_new_tokens=8, temperature=0.7,
                eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id, generator=gen)
    # rows finish at different lengths: the compacted decode batch is exercised
    lengths = ro.response_mask.sum(1)
    assert lengths.min() < lengths.max()
    with torch.no_grad():
        again = plain_logprobs(model, ro, 0.7)
    m = ro.response_mask.bool()
    assert torch.allclose(ro.behaviour_logp[m], again[m], atol=1e-5)
    assert (ro.behaviour_logp[~m] == 0).all()


def test_sampling_is_reproducible(policy) -> None:
    model, tok = policy
    runs = [sample(model, _prompts(tok, 4), max_new_tokens=8, temperature=1.0,
                   eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                   generator=torch.Generator().manual_seed(11)) for _ in range(2)]
    assert torch.equal(runs[0].response_ids, runs[1].response_ids)
    assert torch.equal(runs[0].behaviour_logp, runs[1].behaviour_logp)


def test_reserved_cache_samples_exactly_what_hfs_growing_cache_does(policy, monkeypatch) -> None:
    """The decode writes tokens into a reserved KV buffer instead of concatenating: same tokens,
    same log-probs, bit for bit, with rows finishing (and leaving the batch) at different steps."""
    from transformers import DynamicCache

    from harness.core import rollout

    model, tok = policy

    def draw():
        return sample(model, _prompts(tok, 8), max_new_tokens=10, temperature=0.9,
                      eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                      generator=torch.Generator().manual_seed(5))

    ours = draw()
    monkeypatch.setattr(rollout, "_reserved_cache", lambda capacity: DynamicCache())
    hfs = draw()
    lengths = ours.response_mask.sum(1)
    assert lengths.min() < lengths.max()
    assert torch.equal(ours.response_ids, hfs.response_ids)
    assert torch.equal(ours.behaviour_logp, hfs.behaviour_logp)
    assert ours.work == hfs.work


def test_shared_prefix_logprobs_and_gradients_match_plain(policy) -> None:
    model, tok = policy
    ro = sample(model, _prompts(tok, 4), max_new_tokens=8, temperature=1.0,
                eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                generator=torch.Generator().manual_seed(5))
    weights = torch.linspace(-1, 1, ro.response_ids.numel()).reshape(ro.response_ids.shape)
    grads = []
    values = []
    for fn in (sequence_logprobs, plain_logprobs):
        model.zero_grad(set_to_none=True)
        logp = fn(model, ro, 0.6)
        ((logp * weights * ro.response_mask).sum()).backward()
        values.append(logp.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    m = ro.response_mask.bool()
    assert torch.allclose(values[0][m], values[1][m], atol=1e-5)
    rel = (grads[0] - grads[1]).norm() / grads[1].norm()
    assert rel < 1e-4, rel
    # a slice of rows (a micro-batch) gives the same values as the whole batch
    part = sequence_logprobs(model, ro, 0.6, slice(4, 12)).detach()
    assert torch.allclose(part[m[4:12]], values[0][4:12][m[4:12]], atol=1e-5)


def test_length_buckets_cover_every_row_once_with_whole_groups() -> None:
    g, n_groups = 4, 6
    lengths = [5, 1, 9, 3, 7, 2]  # longest response per group
    mask = torch.zeros(g * n_groups, 10)
    for k, n in enumerate(lengths):
        mask[k * g:(k + 1) * g, :n] = 1
    ro = Rollouts(torch.zeros(g * n_groups, 2, dtype=torch.long),
                  torch.ones(g * n_groups, 2, dtype=torch.long),
                  torch.zeros(g * n_groups, 10, dtype=torch.long), mask, torch.zeros_like(mask))
    buckets = length_buckets(ro, 0, g * n_groups, g, max_rows=8)
    assert sorted(torch.cat(buckets).tolist()) == list(range(g * n_groups))
    assert all(len(b) == 8 for b in buckets)
    # groups in order of length, each group's rows contiguous
    first_rows = [int(b[i]) for b in buckets for i in range(0, len(b), g)]
    assert [lengths[r // g] for r in first_rows] == sorted(lengths)
    # a mini-batch that starts further in keeps its own rows
    assert sorted(torch.cat(length_buckets(ro, 8, 16, g, 4)).tolist()) == list(range(8, 16))


def test_bucketed_update_matches_one_chunk(config_dir, built_test_model, tmp_path) -> None:
    """Micro-batches of similar-length groups give the mini-batch gradient of one big chunk
    (compared before the optimizer: Adam's sign-like first step would amplify rounding)."""
    from harness import config
    from harness.core import grpo
    from harness.executors.trainer import Trainer

    grads = []
    for micro in (4, 1024):
        cfg = config.resolve("test-pair", "uniform", seed=0, config_dir=config_dir,
                             overrides=[f"train.micro_batch_size={micro}",
                                        "train.mini_batch_size=8"])
        tr = Trainer(cfg, tmp_path / f"m{micro}", progress=False)
        ro, rewards = tr.rollout_and_score(list(range(cfg.train.batch_size)),
                                           cfg.train.group_size, step=1, salt=0)
        adv = grpo.group_norm_advantages(torch.tensor(rewards, dtype=torch.float32)).reshape(-1)
        assert adv.abs().sum() > 0  # some group is informative: there is a gradient
        seen: list[torch.Tensor] = []

        def record(model=tr.model, seen=seen) -> None:
            seen.append(torch.cat([p.grad.flatten() for p in model.parameters()
                                   if p.grad is not None]))

        tr.optimizer.step = record
        tr._update(ro, adv, None, None, step=1)
        grads.append(seen[0])
    rel = (grads[0] - grads[1]).norm() / grads[1].norm()
    assert rel < 1e-5, rel


def test_work_counts_real_and_padded_positions(policy) -> None:
    model, tok = policy
    g = 3
    prompts = _prompts(tok, g)
    ro = sample(model, prompts, max_new_tokens=6, temperature=1.0, eos_ids=[tok.eos_token_id],
                pad_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
    lengths = ro.response_mask.sum(1).long()
    distinct_prompt_tokens = sum(len(p) for p in prompts[::g])
    # each distinct prompt once, each response token that a later one follows
    useful = distinct_prompt_tokens + int((lengths - 1).sum())
    assert ro.work["real"] == useful
    assert ro.work["padded"] >= useful
    work: dict[str, int] = {}
    sequence_logprobs(model, ro, 1.0, work=work)
    assert work["real"] == useful
    # one prompt pass over the distinct prompts (trimmed to their longest), then every row
    # runs to the longest response
    width = max(len(p) for p in prompts)
    assert work["padded"] == len(prompts) // g * width + len(prompts) * (int(lengths.max()) - 1)
