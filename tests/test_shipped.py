"""Shipped weights (checksums, fallback to a build) and the exact evaluation metric."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from harness import config
from harness.executors.trainer import Trainer, exact_pass_rates
from harness.instrument import policy


def _model_cfg(config_dir: Path, **changes) -> config.ModelConfig:
    cfg = config.from_dict(config.ModelConfig, config.model_dict("test-tiny", config_dir))
    return dataclasses.replace(cfg, **changes)


def test_ship_then_load_by_checksum(config_dir, built_test_model, tmp_path) -> None:
    cfg = _model_cfg(config_dir)
    lines = policy.ship(cfg, tmp_path / "weights", progress=False)
    assert len(lines["weights_sha256"]) == 64
    shipped = dataclasses.replace(cfg, weights=str(tmp_path / "weights"),
                                  weights_sha256=lines["weights_sha256"])
    shipped.validate()
    assert policy.model_dir(shipped) == tmp_path / "weights"
    assert policy.is_built(shipped)
    # the key ignores where the weights live: runs of a shipped model and of its build agree
    assert policy.model_key(shipped) == policy.model_key(cfg)


def test_changed_bytes_stop_the_run(config_dir, built_test_model, tmp_path) -> None:
    cfg = _model_cfg(config_dir)
    lines = policy.ship(cfg, tmp_path / "w", progress=False)
    blob = tmp_path / "w" / "model.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    shipped = dataclasses.replace(cfg, weights=str(tmp_path / "w"), **{
        "weights_sha256": lines["weights_sha256"]})
    with pytest.raises(policy.ShippedWeightsError, match="model.weights_sha256"):
        policy.model_dir(shipped)


def test_an_edited_config_builds_its_own_model(config_dir, built_test_model, tmp_path) -> None:
    cfg = _model_cfg(config_dir)
    lines = policy.ship(cfg, tmp_path / "w", progress=False)
    edited = dataclasses.replace(cfg, tiny=dataclasses.replace(cfg.tiny, seed=99),
                                 weights=str(tmp_path / "w"), weights_sha256=lines["weights_sha256"])
    assert policy.shipped_dir(edited) is None
    assert policy.model_dir(edited) != tmp_path / "w"


def test_missing_shipped_folder_names_the_fix(config_dir, tmp_path) -> None:
    cfg = _model_cfg(config_dir, weights=str(tmp_path / "nowhere"), weights_sha256="0" * 64)
    with pytest.raises(policy.ShippedWeightsError, match="selbench models ship"):
        policy.model_dir(cfg)


def test_bad_checksum_field_is_a_config_error(config_dir) -> None:
    cfg = _model_cfg(config_dir, weights="x", weights_sha256="abc")
    with pytest.raises(config.ConfigError, match="weights_sha256"):
        cfg.validate()


def test_exact_metric_is_the_probability_of_the_reference(config_dir, built_test_model,
                                                         tmp_path) -> None:
    cfg = config.resolve("test-pair", "uniform", seed=0, config_dir=config_dir,
                         overrides=["eval.metric=exact", "eval.temperature=0.6"])
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    acc, by_tier = tr.evaluate()
    assert 0.0 < acc < 1.0
    assert set(by_tier) == {"cs2", "cs3"}
    # by hand for one question: the product of the reference tokens' probabilities at T = 0.6
    q = tr.sampler.eval_questions[0]
    prompt = tr.sampler.eval_tokens[0]
    ref = tr.sampler.eval_references[0]
    assert ref[-1] == tr.tokenizer.eos_token_id
    assert tr.tokenizer.decode(ref[:-1]) == cfg.model.answer_template.replace("{answer}", q.answer)
    with torch.no_grad():
        ids = torch.tensor([prompt + ref])
        logits = tr.model(input_ids=ids).logits[0, len(prompt) - 1:-1].float() / 0.6
        logp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ref).unsqueeze(-1)).sum()
    single = exact_pass_rates(tr.model, [prompt], [ref], 0.6, tr.sampler.pad_id, 8)[0]
    assert math.isclose(single, float(logp.exp()), rel_tol=1e-4)
    # batching and padding change nothing
    batch = exact_pass_rates(tr.model, tr.sampler.eval_tokens, tr.sampler.eval_references, 0.6, tr.sampler.pad_id, 5)
    assert math.isclose(batch[0], single, rel_tol=1e-4)
    assert abs(float(batch.mean()) - acc) < 1e-6


def test_pair_includes_and_pair_files(config_dir, built_test_model, tmp_path) -> None:
    (config_dir / "tasks").mkdir(exist_ok=True)
    base = yaml.safe_load((config_dir / "pairs" / "test-pair.yaml").read_text())
    (config_dir / "tasks" / "t.yaml").write_text(yaml.safe_dump({"task": base["task"]}))
    layered = {k: v for k, v in base.items() if k != "task"} | {"include": ["tasks/t"]}
    (config_dir / "pairs" / "layered.yaml").write_text(yaml.safe_dump(layered))
    a = config.resolve("test-pair", "uniform", config_dir=config_dir)
    b = config.resolve("layered", "uniform", config_dir=config_dir)
    assert a.task == b.task and a.train == b.train
    # a pair given as a file path: named by its stem, same config as by name
    own = tmp_path / "my-pair.yaml"
    own.write_text(yaml.safe_dump(base))
    c = config.resolve(str(own), "uniform", config_dir=config_dir)
    assert c.pair == "my-pair" and c.task == a.task
    with pytest.raises(config.ConfigError, match="no such file"):
        config.resolve(str(tmp_path / "none.yaml"), "uniform", config_dir=config_dir)
    (config_dir / "pairs" / "bad.yaml").write_text(json.dumps({"include": ["tasks/nope"]}))
    with pytest.raises(config.ConfigError, match="include"):
        config.resolve("bad", "uniform", config_dir=config_dir)
