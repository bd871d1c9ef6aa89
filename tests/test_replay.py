"""Rollout replay: buffer rules by hand, exact re-collation, the backbone's replay step."""

from __future__ import annotations

import torch

from harness import config
from harness.core import grpo
from harness.core.replay import Group, ReplayBuffer, collate, split_groups
from harness.core.rollout import Rollouts
from harness.executors.trainer import Trainer
from harness.runs.records import RunRecord

TIME_KEYS = ("time/", "train/grad_norm")


def _group(index: int, rewards: tuple[float, ...], step: int = 0) -> Group:
    return Group(index=index, step=step, prompt=torch.tensor([5, 6]),
                 responses=[torch.tensor([7, 1])] * len(rewards),
                 behaviour_logp=[torch.tensor([-0.5, -0.1])] * len(rewards), rewards=rewards)


def test_buffer_evicts_oldest_dedups_and_drops_uninformative() -> None:
    buf = ReplayBuffer(capacity=3)
    buf.add([_group(1, (1.0, 0.0)), _group(2, (0.0, 1.0)), _group(3, (1.0, 0.0))])
    buf.add([_group(4, (1.0, 1.0))])  # all right: zero advantage, never stored
    buf.add([_group(5, (0.0, 0.0))])  # all wrong: same
    assert buf.indices() == [1, 2, 3]
    buf.add([_group(4, (0.0, 1.0))])  # capacity 3: the oldest (1) goes
    assert buf.indices() == [2, 3, 4]
    buf.add([_group(2, (1.0, 0.0), step=9)])  # a newer group of question 2 replaces the old one
    assert buf.indices() == [3, 4, 2] and len(buf) == 3
    gen = torch.Generator().manual_seed(0)
    picked = buf.sample(5, gen, exclude={4})
    assert sorted(g.index for g in picked) == [2, 3]
    assert next(g for g in picked if g.index == 2).step == 9


def test_buffer_state_round_trip() -> None:
    buf = ReplayBuffer(capacity=4)
    buf.add([_group(i, (1.0, 0.0), step=i) for i in range(3)])
    other = ReplayBuffer(capacity=1)
    other.load_state_dict(buf.state_dict())
    assert other.indices() == [0, 1, 2] and other.capacity == 4
    a = buf.sample(2, torch.Generator().manual_seed(1))
    b = other.sample(2, torch.Generator().manual_seed(1))
    assert [g.index for g in a] == [g.index for g in b]


def test_split_then_collate_restores_the_batch() -> None:
    # two prompts (lengths 2 and 3, left-padded) x G=2, responses of lengths 2, 1, 3, 3
    pad = 0
    ro = Rollouts(
        prompt_ids=torch.tensor([[0, 4, 5], [0, 4, 5], [6, 7, 8], [6, 7, 8]]),
        prompt_mask=torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]]),
        response_ids=torch.tensor([[9, 2, 0], [2, 0, 0], [9, 9, 2], [8, 8, 2]]),
        response_mask=torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]]).float(),
        behaviour_logp=torch.tensor([[-1, -2, 0], [-3, 0, 0], [-1, -1, -1], [-2, -2, -2]]).float(),
    )
    groups = split_groups(ro, [10, 11], [[1.0, 0.0], [0.0, 0.0]], step=4)
    assert [g.index for g in groups] == [10, 11] and groups[0].rewards == (1.0, 0.0)
    assert groups[0].prompt.tolist() == [4, 5] and groups[0].responses[1].tolist() == [2]
    back = collate(groups, pad)
    for name in ("prompt_ids", "prompt_mask", "response_ids", "response_mask", "behaviour_logp"):
        assert torch.equal(getattr(back, name), getattr(ro, name)), name


def test_replay_loss_is_ppo_clip_when_nothing_is_off_policy() -> None:
    # the backbone gives fresh rows pi_old as their behaviour log-probs: r_old = 1 exactly
    g = torch.Generator().manual_seed(0)
    logp, old = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    adv, mask = torch.randn(4, generator=g), (torch.rand(4, 5, generator=g) > 0.3).float()
    plain, _ = grpo.policy_loss(logp, old, adv, mask, 0.2)
    replay_rows = torch.tensor([False, False, False, False])
    behaviour = torch.where(replay_rows.unsqueeze(-1), torch.zeros_like(old), old)
    corrected, _ = grpo.policy_loss(logp, old, adv, mask, 0.2, behaviour_logp=behaviour)
    assert torch.equal(plain, corrected)


def _cfg(config_dir, overrides=()):
    return config.resolve("test-pair", "uniform", seed=1, config_dir=config_dir, overrides=[
        "replay.enabled=true", "replay.sigma=0.5", "replay.capacity=16",
        "train.group_size=8", *overrides])


def test_backbone_replays_half_the_batch_and_resumes_exactly(config_dir, built_test_model,
                                                             tmp_path) -> None:
    cfg = _cfg(config_dir)
    assert cfg.label() == "uniform+rr" and "uniform+rr" in cfg.run_id()
    a = Trainer(cfg, tmp_path / "a", progress=False)
    rows_a = [a.train_step(s) for s in range(1, 5)]
    # step 1 fills the buffer with B fresh prompts; later steps roll out sigma * B fresh ones
    assert rows_a[0]["replay/share"] == 0.0 and rows_a[0]["cost/prompts"] == 8
    later = [r for r in rows_a[1:] if r["replay/share"] > 0]
    assert later, f"the buffer never filled: {[(r['replay/buffer_size'], r['train/effective_frac']) for r in rows_a]}"
    for r in later:
        assert r["replay/share"] == 0.5 and r["cost/prompts"] == 4
        assert r["train/batch_effective_frac"] >= 0.5  # replayed groups are all informative
        assert r["replay/age_mean"] >= 1
        # the replayed tokens' importance weights pi_old / mu_old: logged, positive, ordered,
        # and not all 1 (their policy has moved since they were sampled)
        lo, mean, hi = (r[f"train/replay_weight_{k}"] for k in ("min", "mean", "max"))
        assert 0 < lo <= mean <= hi and lo < hi
        # tier shares of the replayed groups, and of the whole trained batch, are shares
        replayed = {k: v for k, v in r.items() if k.startswith("replay/tier_share/")}
        trained = {k: v for k, v in r.items() if k.startswith("train/tier_share/")}
        assert replayed and abs(sum(replayed.values()) - 1.0) < 1e-9
        assert trained and abs(sum(trained.values()) - 1.0) < 1e-9
    assert all(r["replay/buffer_size"] <= 16 for r in rows_a)
    assert "train/replay_weight_mean" not in rows_a[0]  # nothing replayed at step 1

    # interrupted after step 2: the buffer is part of the checkpoint, the rest matches exactly
    b = Trainer(cfg, tmp_path / "b", progress=False)
    for s in (1, 2):
        b.train_step(s)
    b.step = 2
    b.save_checkpoint()
    c = Trainer(cfg, tmp_path / "b", progress=False)
    assert c.try_resume() and len(c.replay) == len(b.replay)
    rows_c = [c.train_step(s) for s in (3, 4)]

    def untimed(r):
        return {k: v for k, v in r.items() if not k.startswith(TIME_KEYS)}

    assert [untimed(r) for r in rows_c] == [untimed(r) for r in rows_a[2:]]
    RunRecord(tmp_path / "b")  # the folder stays a readable run record
