"""The DOTS attention-based adaptive difficulty predictor (DESIGN-NOTES section 1).

A query question's pass rate under the current policy is predicted as an attention-weighted mean
of the observed pass rates of K reference questions rolled out with that same policy. Only two
small projections (query side and reference side) and a tiny calibration head are trained; the
question embeddings come from a frozen LLM and are computed once.

Layout follows the paper's public code (``build_projection`` / ``group_logit_temp``): each
projection is ``LayerNorm(D) -> [Linear -> GELU -> Dropout] * (layers - 1) -> Linear ->
LayerNorm(H)``; scores are ``<q, r> / sqrt(H)``; the calibration head is a 2 -> h -> 2 MLP on
(mean, std) of the reference labels giving ``temp = clamp(softplus(.), 1e-2, 10)`` and
``bias = tanh(.)``; ``out = sigmoid(logit(clamp(base, eps, 1 - eps)) / temp + bias)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.config.base import check, opt

# softplus(_SOFTPLUS_ONE) == 1: the calibration head starts as the identity map (temp 1, bias 0),
# so training begins from the plain attention-weighted mean instead of a random rescaling.
_SOFTPLUS_ONE = math.log(math.e - 1.0)


@dataclass
class PredictorSpec:
    """Architecture of the adaptive difficulty predictor. Defaults are the paper's."""

    embed_dim: int = opt(1536, "Width of the frozen question embeddings (1536 for Qwen2.5-1.5B).")
    hidden: int = opt(896, "Width of the query/reference projections (the paper uses 896).")
    layers: int = opt(3, "Linear layers per projection (GELU + dropout between them).")
    dropout: float = opt(0.1, "Dropout between projection layers, active only in training.")
    attn_temperature: float = opt(
        1.0, "Softmax temperature over the K reference scores (< 1 sharpens attention)."
    )
    K: int = opt(256, "Reference questions per round (rolled out to get the reference labels).")
    calib_hidden: int = opt(
        10, "Hidden width of the calibration MLP reading (mean, std) of labels."
    )
    label_eps: float = opt(
        1e-4,
        "The base prediction is clamped to [eps, 1 - eps] before the logit so it stays finite.",
    )
    seed: int = opt(0, "Seed for weight initialisation (and the training run that uses this spec).")

    def validate(self) -> None:
        check(self.embed_dim >= 1, "predictor.embed_dim", self.embed_dim, "an integer >= 1")
        check(self.hidden >= 1, "predictor.hidden", self.hidden, "an integer >= 1")
        check(self.layers >= 1, "predictor.layers", self.layers, "an integer >= 1")
        check(0.0 <= self.dropout < 1.0, "predictor.dropout", self.dropout, "a float in [0, 1)")
        check(
            self.attn_temperature > 0.0,
            "predictor.attn_temperature",
            self.attn_temperature,
            "a float > 0",
        )
        check(self.K >= 2, "predictor.K", self.K, "an integer >= 2 (std of labels needs two)")
        check(self.calib_hidden >= 1, "predictor.calib_hidden", self.calib_hidden, "an int >= 1")
        check(0.0 < self.label_eps < 0.5, "predictor.label_eps", self.label_eps, "in (0, 0.5)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PredictorSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _projection(spec: PredictorSpec) -> nn.Sequential:
    """LayerNorm on the raw embedding, ``layers`` Linear layers with GELU+Dropout between, LayerNorm.

    The input LayerNorm matters: raw mean-pooled LLM states have a few huge-magnitude channels
    that would otherwise dominate every dot product.
    """
    mods: list[nn.Module] = [nn.LayerNorm(spec.embed_dim)]
    width = spec.embed_dim
    for i in range(spec.layers):
        mods.append(nn.Linear(width, spec.hidden))
        width = spec.hidden
        if i < spec.layers - 1:
            mods.append(nn.GELU())
            mods.append(nn.Dropout(spec.dropout))
    mods.append(nn.LayerNorm(spec.hidden))
    return nn.Sequential(*mods)


def label_stats(ref_labels: Tensor) -> Tensor:
    """(mean, std) of reference labels along the last axis, shape ``[..., 2]``.

    Unbiased std as in the paper's code; all-equal labels give std 0 (not NaN) because K >= 2.
    """
    mean = ref_labels.mean(dim=-1, keepdim=True)
    std = ref_labels.std(dim=-1, keepdim=True) if ref_labels.shape[-1] > 1 else mean * 0.0
    return torch.cat([mean, std], dim=-1)


class AdaptiveDifficultyPredictor(nn.Module):
    """Predicts pass rates of query questions from K labelled reference questions.

    Shapes: queries ``[N, D]``, references ``[K, D]`` (shared by all queries, as at RL time where
    one reference set serves the whole pool), reference labels ``[K]`` in [0, 1].
    """

    def __init__(self, spec: PredictorSpec) -> None:
        super().__init__()
        spec.validate()
        self.spec = spec
        # Seeded init so a spec + seed reproduces the same untrained weights on any machine.
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(spec.seed)
        try:
            self.query_proj = _projection(spec)
            self.ref_proj = _projection(spec)
            self.calib = nn.Sequential(
                nn.Linear(2, spec.calib_hidden), nn.ReLU(), nn.Linear(spec.calib_hidden, 2)
            )
        finally:
            torch.random.set_rng_state(gen_state)
        with torch.no_grad():
            last = self.calib[2]
            assert isinstance(last, nn.Linear)
            last.weight.zero_()
            last.bias.copy_(torch.tensor([_SOFTPLUS_ONE, 0.0]))

    # ---- projections (frozen at RL time; queries are projected once per pool) ----

    def project_queries(self, x: Tensor) -> Tensor:
        """``[..., D] -> [..., H]`` query-side projection."""
        return self.query_proj(x)

    def project_refs(self, x: Tensor) -> Tensor:
        """``[..., D] -> [..., H]`` reference-side projection."""
        return self.ref_proj(x)

    # ---- attention + calibration on projected vectors ----

    def attention_weights(self, q_proj: Tensor, r_proj: Tensor) -> Tensor:
        """Softmax over references of ``<q, r> / sqrt(H) / temperature``: ``[N, K]``, rows sum to 1."""
        # The scale is folded into the K reference rows (cheaper than scaling N x K scores);
        # PoolScorer does the same so both paths round alike.
        scale = 1.0 / (math.sqrt(q_proj.shape[-1]) * self.spec.attn_temperature)
        return torch.softmax(q_proj @ (r_proj * scale).transpose(-1, -2), dim=-1)

    def base_from_projected(self, q_proj: Tensor, r_proj: Tensor, ref_labels: Tensor) -> Tensor:
        """Uncalibrated prediction: attention-weighted mean of the reference labels, ``[N]``."""
        w = self.attention_weights(q_proj, r_proj)
        return w @ ref_labels.to(w.dtype)

    def calibration_params(self, ref_labels: Tensor) -> tuple[Tensor, Tensor]:
        """(temperature, bias) from (mean, std) of the reference labels; scalars for ``[K]`` labels.

        The temperature is clamped to [1e-2, 10] (as in the paper) so a wild head output can
        neither blow logits up nor flatten every prediction to 0.5.
        """
        tb = self.calib(label_stats(ref_labels.to(torch.float32)))
        temp = F.softplus(tb[..., 0]).clamp(1e-2, 10.0)
        bias = torch.tanh(tb[..., 1])
        return temp, bias

    def calibrated_logits(self, base: Tensor, ref_labels: Tensor) -> Tensor:
        """``logit(clamp(base)) / temp + bias``: the pre-sigmoid output (BCE-with-logits target)."""
        temp, bias = self.calibration_params(ref_labels)
        eps = self.spec.label_eps
        return torch.logit(base.clamp(eps, 1.0 - eps)) / temp + bias

    def logits_from_projected(self, q_proj: Tensor, r_proj: Tensor, ref_labels: Tensor) -> Tensor:
        return self.calibrated_logits(
            self.base_from_projected(q_proj, r_proj, ref_labels), ref_labels
        )

    def predict_from_projected(self, q_proj: Tensor, r_proj: Tensor, ref_labels: Tensor) -> Tensor:
        """Calibrated pass-rate predictions in (0, 1), ``[N]``."""
        return torch.sigmoid(self.logits_from_projected(q_proj, r_proj, ref_labels))

    def forward(self, q: Tensor, refs: Tensor, ref_labels: Tensor) -> Tensor:
        """Raw embeddings in, calibrated pass rates out: ``q [N, D], refs [K, D], labels [K]``."""
        return self.predict_from_projected(
            self.project_queries(q), self.project_refs(refs), ref_labels
        )
