"""Offline training of the adaptive difficulty predictor, its evaluation and calibration.

Training data: a frozen embedding per question (``[N, D]``) and observed pass rates of those
questions under P different policies (``[P, N]``, NaN where a policy was not rolled out on a
question). Each policy is a "group": a training query and its K references always come from the
same policy, because a reference label only says something about a query under the policy that
produced it.

Evaluation holds out a fraction of questions (never used as queries or references) and one
whole policy (never seen in training): the headline numbers are Pearson/Spearman on held-out
questions under the held-out policy, with references drawn from that policy's training
questions, next to the same numbers for raw embedding similarity without the trained adapter.

A trained predictor is saved and loaded by :mod:`harness.predictor.artifact`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from harness.predictor.artifact import save_artifact
from harness.predictor.model import AdaptiveDifficultyPredictor, PredictorSpec

# calibration: numpy-only, so DOTS (torch-free) calibrates with the very same code
from strategies.difficulty import apply_linear_calibration, linear_calibration  # noqa: F401

# --------------------------------------------------------------------------- metrics & baseline


def _corr(pred: np.ndarray, obs: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman); NaN when either side is constant (scipy would warn and return NaN)."""
    if pred.size < 2 or np.ptp(pred) == 0.0 or np.ptp(obs) == 0.0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.pearsonr(pred, obs)[0]), float(stats.spearmanr(pred, obs)[0])


def no_adapter_predict(
    q: np.ndarray | torch.Tensor,
    refs: np.ndarray | torch.Tensor,
    ref_labels: np.ndarray | torch.Tensor,
    similarity: str = "cosine",
    temperature: float = 0.1,
) -> np.ndarray:
    """Baseline without the trained adapter: softmax attention on raw embedding similarity.

    ``cosine``: softmax(cos(q, r) / temperature); ``dot``: softmax(<q, r> / sqrt(D)), i.e. the
    predictor's own formula with identity projections. No calibration head.
    """
    qt = torch.as_tensor(np.asarray(q, dtype=np.float32))
    rt = torch.as_tensor(np.asarray(refs, dtype=np.float32))
    lt = torch.as_tensor(np.asarray(ref_labels, dtype=np.float32))
    if similarity == "cosine":
        scores = F.normalize(qt, dim=-1) @ F.normalize(rt, dim=-1).T / temperature
    elif similarity == "dot":
        scores = qt @ rt.T / math.sqrt(qt.shape[-1])
    else:
        raise ValueError(f"similarity must be 'cosine' or 'dot', got {similarity!r}")
    return (torch.softmax(scores, dim=-1) @ lt).numpy()


@torch.inference_mode()
def evaluate_policy(
    model: AdaptiveDifficultyPredictor,
    embeddings: np.ndarray,
    policy_labels: np.ndarray,
    query_idx: np.ndarray,
    ref_pool_idx: np.ndarray,
    K: int,
    draws: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Correlations of predictions with observed pass rates for one policy, mean over draws.

    Every draw samples K references from ``ref_pool_idx`` (questions whose labels under this
    policy are known and which are not queries) and scores all ``query_idx``; the trained model
    and both no-adapter baselines see the same references.
    """
    model.eval()
    q_idx = query_idx[np.isfinite(policy_labels[query_idx])]
    r_pool = ref_pool_idx[np.isfinite(policy_labels[ref_pool_idx])]
    k = min(K, r_pool.size)
    if q_idx.size < 2 or k < 2:
        raise ValueError(f"too few labelled questions to evaluate: {q_idx.size} queries, {k} refs")
    rng = np.random.default_rng(seed)
    obs = policy_labels[q_idx].astype(np.float64)
    q = torch.from_numpy(np.ascontiguousarray(embeddings[q_idx], dtype=np.float32))
    q_proj = model.project_queries(q)
    rows: dict[str, list[float]] = {}
    for _ in range(draws):
        r_idx = rng.choice(r_pool, size=k, replace=False)
        r = np.ascontiguousarray(embeddings[r_idx], dtype=np.float32)
        lab = policy_labels[r_idx].astype(np.float32)
        lab_t = torch.from_numpy(lab)
        pred = model.predict_from_projected(q_proj, model.project_refs(torch.from_numpy(r)), lab_t)
        results = {
            "": pred.numpy(),
            "baseline_cosine_": no_adapter_predict(q, r, lab, "cosine"),
            "baseline_dot_": no_adapter_predict(q, r, lab, "dot"),
        }
        for prefix, p in results.items():
            pe, sp = _corr(np.asarray(p, dtype=np.float64), obs)
            rows.setdefault(prefix + "pearson", []).append(pe)
            rows.setdefault(prefix + "spearman", []).append(sp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN columns stay NaN without a RuntimeWarning
        return {name: float(np.nanmean(v)) for name, v in rows.items()}


# --------------------------------------------------------------------------- training


@dataclass
class FitResult:
    """A trained predictor plus how it was split and how well it did."""

    model: AdaptiveDifficultyPredictor
    spec: PredictorSpec
    metrics: dict[str, float]
    history: list[float] = field(default_factory=list)  # mean training BCE per epoch
    train_questions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    heldout_questions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    holdout_policy: int | None = None

    def save_artifact(self, directory: str | Path, meta: dict[str, Any] | None = None) -> Path:
        info = {"holdout_policy": self.holdout_policy, "history": self.history, **(meta or {})}
        return save_artifact(directory, self.model, metrics=self.metrics, meta=info)


def _group_batches(
    rng: np.random.Generator, per_policy: dict[int, np.ndarray], batch: int
) -> list[tuple[int, np.ndarray]]:
    """One epoch of (policy, query batch) pairs, shuffled across policies."""
    out: list[tuple[int, np.ndarray]] = []
    for p, idx in per_policy.items():
        perm = rng.permutation(idx)
        out.extend((p, perm[s : s + batch]) for s in range(0, perm.size, batch))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def fit_predictor(
    embeddings: np.ndarray,
    labels: np.ndarray,
    spec: PredictorSpec | None = None,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    batch: int = 256,
    K: int | None = None,
    holdout_policy: int | None = -1,
    holdout_frac: float = 0.2,
    seed: int = 0,
    weight_decay: float = 0.01,
    eval_draws: int = 5,
    num_threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Train on (embeddings ``[N, D]``, pass rates ``[P, N]`` with NaN = unknown), then evaluate.

    ``holdout_policy`` (index into P, negative counts from the end; None = hold out none) is
    excluded from training; ``holdout_frac`` of the questions are never queries or references
    during training. K defaults to ``spec.K``. Loss: BCE of the calibrated output against the
    pass rate (a soft target). AdamW with 5% linear warm-up then linear decay.

    ``num_threads`` sets torch's intra-op threads for this call only (None: leave as is). Small
    specs train several times faster with 1 thread, and do not collapse when another process
    shares the cores.
    """
    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _fit(
            embeddings,
            labels,
            spec,
            epochs,
            lr,
            batch,
            K,
            holdout_policy,
            holdout_frac,
            seed,
            weight_decay,
            eval_draws,
            log,
        )
    finally:
        torch.set_num_threads(prev_threads)


def _fit(
    embeddings: np.ndarray,
    labels: np.ndarray,
    spec: PredictorSpec | None,
    epochs: int,
    lr: float,
    batch: int,
    K: int | None,
    holdout_policy: int | None,
    holdout_frac: float,
    seed: int,
    weight_decay: float,
    eval_draws: int,
    log: Callable[[str], None] | None,
) -> FitResult:
    emb = np.asarray(embeddings)
    lab = np.asarray(labels, dtype=np.float32)
    if emb.ndim != 2 or lab.ndim != 2 or lab.shape[1] != emb.shape[0]:
        raise ValueError(f"need embeddings [N, D] and labels [P, N]: {emb.shape}, {lab.shape}")
    finite = lab[np.isfinite(lab)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError("labels are pass rates: known values must lie in [0, 1]")
    n_q, dim = emb.shape
    n_pol = lab.shape[0]
    spec = spec or PredictorSpec(embed_dim=dim, seed=seed)
    if spec.embed_dim != dim:
        raise ValueError(f"spec.embed_dim={spec.embed_dim} but embeddings are {dim}-d")
    k_ref = int(K if K is not None else spec.K)
    if not 0.0 <= holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in [0, 1), got {holdout_frac}")
    hp: int | None = None
    if holdout_policy is not None:
        if not -n_pol <= holdout_policy < n_pol or n_pol < 2:
            raise ValueError(f"holdout_policy {holdout_policy} invalid for {n_pol} policies")
        hp = holdout_policy % n_pol

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_q)
    n_hold = int(round(holdout_frac * n_q))
    heldout_q, train_q = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
    known = np.isfinite(lab)
    per_policy = {
        p: train_q[known[p, train_q]]
        for p in range(n_pol)
        if p != hp and known[p, train_q].sum() >= 3
    }
    if not per_policy:
        raise ValueError("no training policy has at least 3 labelled training questions")

    emb_t = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
    lab_t = torch.from_numpy(np.nan_to_num(lab, nan=0.0))
    model = AdaptiveDifficultyPredictor(spec)
    history: list[float] = []
    # fork_rng: dropout draws from the global torch RNG; seed it without disturbing the caller's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = len(_group_batches(np.random.default_rng(0), per_policy, batch))
        total = max(1, epochs * steps_per_epoch)
        warm = max(1, int(0.05 * total))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
        )
        t0 = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            losses: list[float] = []
            for p, q_idx in _group_batches(rng, per_policy, batch):
                # References come from the same policy's training questions but never from the
                # batch itself: a query seeing its own label would learn "find yourself".
                cands = np.setdiff1d(per_policy[p], q_idx, assume_unique=True)
                k = min(k_ref, cands.size)
                if k < 2:
                    continue
                r_idx = rng.choice(cands, size=k, replace=False)
                qi, ri = torch.from_numpy(q_idx), torch.from_numpy(r_idx)
                z = model.logits_from_projected(
                    model.project_queries(emb_t[qi]),
                    model.project_refs(emb_t[ri]),
                    lab_t[p, ri],
                )
                loss = F.binary_cross_entropy_with_logits(z, lab_t[p, qi])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
            history.append(float(np.mean(losses)) if losses else math.nan)
            if log is not None:
                log(
                    f"epoch {epoch + 1}/{epochs} bce {history[-1]:.4f} "
                    f"({time.perf_counter() - t0:.1f}s)"
                )
    model.eval()

    metrics: dict[str, float] = {
        "final_train_bce": history[-1] if history else math.nan,
        "n_train_questions": float(train_q.size),
        "n_heldout_questions": float(heldout_q.size),
        "K": float(k_ref),
    }
    # holdout_frac = 0 leaves no unseen questions: fall back to training questions (then the
    # numbers are optimistic, since queries may also be drawn as references).
    eval_q = heldout_q if heldout_q.size >= 2 else train_q
    eval_policies = [hp] if hp is not None else sorted(per_policy)
    for name, pols in (("heldout_", eval_policies), ("seen_policy_", sorted(per_policy))):
        agg: dict[str, list[float]] = {}
        for p in pols:
            ref_pool = train_q[known[p, train_q]]
            res = evaluate_policy(model, emb, lab[p], eval_q, ref_pool, k_ref, eval_draws, seed)
            for key, v in res.items():
                agg.setdefault(key, []).append(v)
        for key, vals in agg.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                val = float(np.nanmean(vals))
            # Baselines are reported once, for the held-out policy (the headline comparison).
            if key.startswith("baseline_"):
                if name == "heldout_":
                    metrics[key] = val
            else:
                metrics[name + key] = val
    return FitResult(model, spec, metrics, history, train_q, heldout_q, hp)
