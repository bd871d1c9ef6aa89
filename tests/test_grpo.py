"""The GRPO math against hand-computed values."""

import math

import torch

from harness.core import grpo


def test_group_norm_hand_computed() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    adv = grpo.group_norm_advantages(rewards)
    # group 0: mean 0.5, unbiased std sqrt(1/3) -> +-0.5 / 0.57735 = +-0.866025
    s = 0.5 / math.sqrt(1.0 / 3.0)
    assert torch.allclose(adv[0], torch.tensor([s, -s, -s, s]), atol=1e-6)
    # an all-equal group teaches nothing
    assert torch.equal(adv[1], torch.zeros(4))
    # group 2: mean 0.25, unbiased std 0.5 -> 1.5, -0.5
    assert torch.allclose(adv[2], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-6)


def test_token_logprobs_uses_temperature() -> None:
    logits = torch.tensor([[[2.0, 0.0]]])
    tokens = torch.tensor([[0]])
    lp1 = grpo.token_logprobs(logits, tokens, 1.0)
    lp_half = grpo.token_logprobs(logits, tokens, 0.5)
    assert math.isclose(float(lp1), -math.log1p(math.exp(-2.0)), abs_tol=1e-6)
    assert math.isclose(float(lp_half), -math.log1p(math.exp(-4.0)), abs_tol=1e-6)


def test_ppo_clip_hand_computed() -> None:
    # two tokens of one sequence, advantage +1: ratio e^0.5=1.6487 is clipped to 1.2,
    # ratio e^-0.5=0.6065 is not (min picks the unclipped for A>0 below 1-eps).
    logp = torch.tensor([[0.5, -0.5]])
    old = torch.zeros(1, 2)
    mask = torch.ones(1, 2)
    loss, stats = grpo.policy_loss(logp, old, torch.tensor([1.0]), mask, clip_eps=0.2)
    expected = -(1.2 + math.exp(-0.5)) / 2
    assert math.isclose(float(loss), expected, abs_tol=1e-6)
    assert stats["clip_frac"] == 0.5
    # negative advantage: -min(r*A, clip(r)*A) = max(r, clip(r)) per token
    loss_neg, _ = grpo.policy_loss(logp, old, torch.tensor([-1.0]), mask, clip_eps=0.2)
    assert math.isclose(float(loss_neg), (math.exp(0.5) + 0.8) / 2, abs_tol=1e-6)


def test_token_mean_ignores_padding() -> None:
    logp = torch.tensor([[0.1, 0.2, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, _ = grpo.policy_loss(logp, logp.detach(), torch.tensor([2.0]), mask)
    assert math.isclose(float(loss), -2.0, abs_tol=1e-6)


def test_replay_correction_equals_ppo_when_on_policy() -> None:
    gen = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 6, generator=gen) * 0.3
    old = torch.randn(4, 6, generator=gen) * 0.3
    adv = torch.randn(4, generator=gen)
    mask = (torch.rand(4, 6, generator=gen) > 0.2).float()
    plain, _ = grpo.policy_loss(logp, old, adv, mask)
    # fresh samples: behaviour policy == pre-update policy, r_old = 1 -> identical loss
    corrected, _ = grpo.policy_loss(logp, old, adv, mask, behaviour_logp=old.clone())
    assert torch.equal(plain, corrected)


def test_replay_correction_recentres_clip_range() -> None:
    # behaviour mu: logp -1; pre-update pi_old: logp 0 -> r_old = e; current pi: logp 0.1
    logp = torch.tensor([[0.1]])
    old = torch.tensor([[0.0]])
    mu = torch.tensor([[-1.0]])
    loss, _ = grpo.policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), 0.2, mu)
    r = math.exp(1.1)  # pi/mu, inside [e*0.8, e*1.2] so unclipped
    assert math.isclose(float(loss), -r, abs_tol=1e-6)


def test_k3_kl_is_zero_at_equality_and_positive_otherwise() -> None:
    a = torch.tensor([0.0, -1.0, -2.0])
    assert torch.allclose(grpo.k3_kl(a, a), torch.zeros(3))
    b = torch.tensor([-0.5, -0.5, -0.5])
    kl = grpo.k3_kl(a, b)
    assert (kl > 0).all()
    assert math.isclose(float(kl[0]), math.exp(-0.5) + 0.5 - 1, abs_tol=1e-6)
