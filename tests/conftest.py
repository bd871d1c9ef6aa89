"""Shared fixtures: a really tiny model and pair, built once per test session in a temp cache.

The test model is a real Qwen2 with a real BPE tokenizer, warm-started for a few seconds on
one-digit chain sums, so GRPO tests run the whole backbone on CPU in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

TEST_MODEL = {
    "description": "test-only tiny model",
    "kind": "tiny",
    "prompt_template": "{question}\nAnswer:",
    "answer_template": " {answer}",
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "num_kv_heads": 2,
             "intermediate_size": 128, "vocab_size": 300, "max_position": 128,
             "warm_steps": 120, "warm_lr": 3.0e-3, "warm_batch_size": 32, "seed": 0},
    "warm_start_task": {
        "source": "reasoning_gym", "seed": 5, "n_train": 3000, "n_eval": 1,
        "tiers": [
            {"name": "cs3", "dataset": "chain_sum", "weight": 1,
             "params": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1}},
        ],
    },
}

TEST_PAIR = {
    "description": "test pair: test-tiny on one-digit chain sums",
    "model": "test-tiny",
    "task": {
        "source": "reasoning_gym", "seed": 7, "n_train": 64, "n_eval": 32,
        "answer_format": "first_line",
        "tiers": [
            {"name": "cs2", "dataset": "chain_sum", "weight": 1,
             "params": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}},
            {"name": "cs3", "dataset": "chain_sum", "weight": 1,
             "params": {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1}},
        ],
    },
    "train": {"steps": 4, "batch_size": 8, "group_size": 4, "mini_batch_size": 4,
              "micro_batch_size": 16, "lr": 1.0e-3, "temperature": 1.0, "max_new_tokens": 4,
              "checkpoint_every": 2},
    "eval": {"every": 2},
}


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configs/ tree holding the test model and pair (plus the real strategy configs)."""
    root = tmp_path_factory.mktemp("configs")
    for sub in ("models", "pairs", "strategies"):
        (root / sub).mkdir()
    (root / "models" / "test-tiny.yaml").write_text(yaml.safe_dump(TEST_MODEL))
    (root / "pairs" / "test-pair.yaml").write_text(yaml.safe_dump(TEST_PAIR))
    (root / "base.yaml").write_text("{}\n")
    return root


@pytest.fixture(scope="session")
def test_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    os.environ["SELBENCH_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def built_test_model(config_dir: Path, test_cache: Path) -> Path:
    from harness import config
    from harness.instrument import policy

    cfg = config.from_dict(config.ModelConfig, config.model_dict("test-tiny", config_dir))
    return policy.build(cfg, progress=False)
