"""Where a run's predictor comes from: the pair's embedder, its cached pool embeddings, and the
artifact `selbench predictor fit` wrote for the pair. Shared by the fit command and the backbone
so that both embed the same texts with the same model and agree on where the artifact lives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.predictor.embed import Embedder, embed_texts, make_embedder
from harness.runs.paths import cache_dir

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.predictor.scorer import PoolScorer


def embedder_for(cfg: RunConfig, model_path: Path) -> Embedder:
    """``lm_mean_pool`` reads the pair's *base* model (``model_path``, frozen, as in the paper,
    never the policy being trained); ``sentence_transformer`` the packaged all-MiniLM-L6-v2."""
    kind = cfg.predictor.embedder
    return make_embedder(kind, model_path if kind == "lm_mean_pool" else None)


def pool_embeddings(cfg: RunConfig, texts: list[str], model_path: Path) -> tuple[np.ndarray, str]:
    """Embeddings of the pool's question texts (cached per embedder and pool) and the embedder key."""
    emb = embedder_for(cfg, model_path)
    return embed_texts(texts, emb.kind, embedder=emb), emb.key


def artifact_dir(cfg: RunConfig) -> Path:
    """``predictor.artifact`` when set, else ``<cache>/predictors/<pair>__<embedder>``, with a
    ``__fit-<hash>`` suffix when ``predictor.fit`` differs from its defaults (a cheaper fit, as
    the demo's, never stands in for the full one, nor the other way round)."""
    if cfg.predictor.artifact:
        return Path(cfg.predictor.artifact).expanduser()
    name = f"{cfg.pair}__{cfg.predictor.embedder}"
    fit = dataclasses.asdict(cfg.predictor.fit)
    default = dataclasses.asdict(type(cfg.predictor.fit)())
    if fit != default:
        digest = hashlib.sha256(json.dumps(fit, sort_keys=True).encode()).hexdigest()[:8]
        name += f"__fit-{digest}"
    return cache_dir() / "predictors" / name


def predictor_dir(cfg: RunConfig) -> Path | None:
    """The artifact folder a run of ``cfg`` scores with, or None when its strategy uses no
    predictor (what the run's data fingerprint records)."""
    from strategies.registry import get_entry

    return artifact_dir(cfg) if get_entry(cfg.strategy_name).uses_predictor else None


def load_scorer(cfg: RunConfig, texts: list[str], model_path: Path) -> PoolScorer:
    """The frozen predictor over this pool, ready to score a round. Fails with the command to run
    when no artifact exists, and refuses one fitted on other embeddings (vectors would not match)."""
    from harness.predictor.artifact import load_artifact
    from harness.predictor.scorer import PoolScorer

    where = artifact_dir(cfg)
    if not (where / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no difficulty predictor for pair '{cfg.pair}' at {where}: run `selbench predictor "
            f"fit --pair {cfg.pair}` first (or set predictor.artifact to a fitted artifact folder)")
    art = load_artifact(where)
    embeddings, key = pool_embeddings(cfg, texts, model_path)
    fitted_key = art.meta.get("embedder_key")
    if fitted_key is not None and fitted_key != key:
        raise ValueError(
            f"predictor at {where} was fitted on embeddings '{fitted_key}' but this run embeds with "
            f"'{key}': refit with `selbench predictor fit --pair {cfg.pair}`")
    return PoolScorer(art.model, embeddings, num_threads=cfg.predictor.threads)
