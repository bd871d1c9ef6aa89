"""The GRPO math, in one place: advantages, token log-probs, the clipped policy loss, KL.

Everything the two executors need to agree on lives here, so a parity test can hold one
implementation against OpenRLHF's on the same tensors. Shapes: ``[batch, response_len]`` for
per-token tensors, with a 0/1 ``mask`` marking real response tokens (up to and including EOS).
"""

from __future__ import annotations

import torch

# OpenRLHF's group_norm adds this to the (unbiased) group std; matching it keeps parity exact.
GROUP_NORM_EPS = 1e-9


def group_norm_advantages(rewards: torch.Tensor, eps: float = GROUP_NORM_EPS) -> torch.Tensor:
    """Per-sample advantage ``(r - mean_g) / (std_g + eps)`` for rewards shaped ``[prompts, G]``.

    ``std`` is torch's default unbiased estimate, as in OpenRLHF's ``group_norm`` estimator. A
    group whose rewards are all equal gets advantage exactly 0: it teaches nothing.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [prompts, G], got shape {tuple(rewards.shape)}")
    mean = rewards.mean(dim=-1, keepdim=True)
    std = rewards.std(dim=-1, keepdim=True) if rewards.shape[-1] > 1 else torch.zeros_like(mean)
    return (rewards - mean) / (std + eps)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of each chosen token under ``softmax(logits / temperature)``.

    Dividing by the sampling temperature makes these the log-probs of the distribution the
    tokens were actually drawn from, so ratios against behaviour log-probs start at exactly 1.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean over every real token of the batch (GRPO's token-level aggregation)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    behaviour_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip loss with token-mean aggregation, optionally corrected for off-policy replay.

    ``advantages`` is per sequence ``[batch]`` or per token ``[batch, T]``. Without
    ``behaviour_logp`` this is plain PPO-clip: ``-min(r A, clip(r, 1-eps, 1+eps) A)`` with
    ``r = pi / pi_old``. With it (rollout replay), the ratio is taken against the behaviour policy
    ``mu`` that generated the sample, ``r = pi / mu``, and the clip range is centred on
    ``r_old = pi_old / mu``: ``clip(r, r_old (1-eps), r_old (1+eps))``. For a fresh sample
    ``mu == pi_old`` so ``r_old = 1`` and the two coincide.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    if behaviour_logp is None:
        ratio = torch.exp((logp - old_logp).clamp(-20.0, 20.0))
        low, high = 1.0 - clip_eps, 1.0 + clip_eps
        clipped = ratio.clamp(low, high)
    else:
        ratio = torch.exp((logp - behaviour_logp).clamp(-20.0, 20.0))
        r_old = torch.exp((old_logp - behaviour_logp).clamp(-20.0, 20.0))
        clipped = torch.minimum(torch.maximum(ratio, r_old * (1.0 - clip_eps)), r_old * (1.0 + clip_eps))
    surrogate = torch.minimum(ratio * advantages, clipped * advantages)
    loss = masked_mean(-surrogate, mask)
    with torch.no_grad():
        # the clipped branch is active where it is strictly smaller than the unclipped one
        was_clipped = (clipped * advantages < ratio * advantages - 1e-12).float()
        stats = {"clip_frac": float(masked_mean(was_clipped, mask)),
                 "ratio_mean": float(masked_mean(ratio, mask))}
    return loss, stats


# OpenRLHF caps each token's k3 value (and the log-ratio inside the exponential) at this;
# matching it keeps the KL term identical and stops one wild token from dominating the loss.
K3_CAP = 10.0


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1`` (>= 0),
    capped at :data:`K3_CAP` per token (zero gradient beyond), as OpenRLHF does."""
    log_ratio = (ref_logp - logp).clamp(max=K3_CAP)
    return (torch.exp(log_ratio) - log_ratio - 1.0).clamp(max=K3_CAP)
