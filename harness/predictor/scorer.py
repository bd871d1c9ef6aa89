"""Per-round scoring of a whole question pool with a frozen predictor.

At RL time the predictor's weights never change, so every pool question's query projection is
computed once and kept (``N x H`` float32). A selection round then only projects the K reference
questions and does one ``N x K`` matrix product, a softmax over K and a weighted mean, chunked
over N so peak extra memory stays at ``chunk_rows x K`` floats whatever the pool size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from harness.predictor.model import AdaptiveDifficultyPredictor
from harness.predictor.train import apply_linear_calibration, linear_calibration


class PoolScorer:
    """Scores every pool question against a round's reference set.

    ``pool_embeddings`` is kept by reference (no copy when it is already float32, so a
    ``np.memmap`` works) and only read to fetch the K reference rows each round.
    ``num_threads`` (None: torch's setting) applies to projection and scoring only and is
    restored afterwards; on a 2-core machine shared with a rollout process, 1 thread avoids
    OpenMP threads spinning against each other (measured 4x faster under contention).
    """

    def __init__(
        self,
        model: AdaptiveDifficultyPredictor,
        pool_embeddings: np.ndarray,
        *,
        project_chunk: int = 8192,
        score_chunk: int = 8192,
        num_threads: int | None = None,
    ) -> None:
        if pool_embeddings.ndim != 2 or pool_embeddings.shape[1] != model.spec.embed_dim:
            raise ValueError(
                f"pool embeddings must be [N, {model.spec.embed_dim}], got {pool_embeddings.shape}"
            )
        # eval() switches dropout off; the weights are only read under inference_mode, so the
        # caller's model is not otherwise touched.
        self.model = model.eval()
        self.pool_embeddings = pool_embeddings
        self.score_chunk = int(score_chunk)
        self.num_threads = num_threads
        with self._threads():
            self.q_proj = self._project_all(pool_embeddings, int(project_chunk))

    @contextmanager
    def _threads(self) -> Iterator[None]:
        prev = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    @property
    def n(self) -> int:
        return int(self.q_proj.shape[0])

    @torch.inference_mode()
    def _project_all(self, emb: np.ndarray, chunk: int) -> Tensor:
        # Preallocate the result and fill chunk by chunk so the float32 copy of the raw
        # embeddings never exists in full (1e6 x 1536 would be another 6 GB).
        out = torch.empty((emb.shape[0], self.model.spec.hidden), dtype=torch.float32)
        for s in range(0, emb.shape[0], chunk):
            x = torch.from_numpy(np.ascontiguousarray(emb[s : s + chunk], dtype=np.float32))
            out[s : s + chunk] = self.model.project_queries(x)
        return out

    def score(
        self,
        ref_indices: np.ndarray | list[int],
        ref_labels: np.ndarray | list[float],
        ref_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Calibrated predicted pass rate of every pool question, float32 ``[N]``.

        ``ref_indices`` are pool rows of the reference questions (their embeddings are read from
        the pool unless ``ref_embeddings`` [K, D] is given); ``ref_labels`` their observed pass
        rates under the current policy.
        """
        labels = torch.as_tensor(np.asarray(ref_labels, dtype=np.float32))
        if ref_embeddings is None:
            idx = np.asarray(ref_indices, dtype=np.int64)
            ref_embeddings = self.pool_embeddings[idx]
        if labels.ndim != 1 or labels.shape[0] != ref_embeddings.shape[0]:
            raise ValueError(
                f"need one label per reference: {labels.shape} vs {ref_embeddings.shape}"
            )
        if not torch.isfinite(labels).all():
            raise ValueError("reference labels must be finite (drop references without rollouts)")
        with self._threads():
            return self._score(labels, ref_embeddings)

    @torch.inference_mode()
    def _score(self, labels: torch.Tensor, ref_embeddings: np.ndarray) -> np.ndarray:
        model = self.model
        r = model.project_refs(torch.from_numpy(np.ascontiguousarray(ref_embeddings, np.float32)))
        # Fold 1/(sqrt(H) * temperature) into the K reference rows instead of the N x K scores.
        rt = (r * (1.0 / (math.sqrt(r.shape[-1]) * model.spec.attn_temperature))).T.contiguous()
        temp, bias = model.calibration_params(labels)
        eps = model.spec.label_eps
        lab = labels.unsqueeze(1)  # [K, 1] so the weighted sum is one mat-mat product
        out = torch.empty(self.n, dtype=torch.float32)
        for s in range(0, self.n, self.score_chunk):
            sc = self.q_proj[s : s + self.score_chunk] @ rt  # [c, K]
            # Softmax by hand, in place: exp(s - max) then normalise the weighted sum once per
            # row, which saves two [c, K] allocations and one pass over them.
            sc.sub_(sc.amax(dim=1, keepdim=True)).exp_()
            base = (sc @ lab).squeeze(1).div_(sc.sum(dim=1))
            z = torch.logit(base.clamp_(eps, 1.0 - eps)).div_(temp).add_(bias)
            out[s : s + self.score_chunk] = torch.sigmoid(z)
        return out.numpy()

    def score_calibrated(
        self, ref_indices: np.ndarray | list[int], ref_labels: np.ndarray | list[float]
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Steps 2-3 of a DOTS round: score the pool, then the per-round linear calibration.

        The regression maps the predictions of the reference questions (pool rows, scored like
        every other question, as in the paper's code) to their observed pass rates and is then
        applied to all predictions, clipped to [0, 1]. Returns (calibrated, (slope, intercept)).
        """
        idx = np.asarray(ref_indices, dtype=np.int64)
        labels = np.asarray(ref_labels, dtype=np.float32)
        raw = self.score(idx, labels)
        slope, intercept = linear_calibration(raw[idx], labels)
        return apply_linear_calibration(raw, slope, intercept), (slope, intercept)
