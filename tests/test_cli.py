"""Bad input gets a one-line error naming the problem, before any work starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import config
from harness.configbase import ConfigError


def _cli(*args: str, config_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if config_dir is not None:
        env["SELBENCH_CONFIG_DIR"] = str(config_dir)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("selbench: error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_list_pairs_and_strategies() -> None:
    pairs = _cli("list", "pairs")
    assert pairs.returncode == 0
    assert len(pairs.stdout.strip().splitlines()) == len(config.list_names("pairs"))
    names = [line.split()[0] for line in _cli("list", "strategies").stdout.splitlines()]
    assert {"uniform", "oracle"} <= set(names)


def test_unknown_pair(config_dir: Path) -> None:
    _one_line_error(_cli("run", "--pair", "test-pair2", "--strategy", "uniform",
                         config_dir=config_dir), "pair", "did you mean 'test-pair'")


def test_unknown_strategy(config_dir: Path) -> None:
    _one_line_error(_cli("run", "--pair", "test-pair", "--strategy", "unifrm",
                         config_dir=config_dir), "unifrm", "did you mean 'uniform'")


def test_misspelt_key(config_dir: Path) -> None:
    _one_line_error(_cli("run", "--pair", "test-pair", "--strategy", "uniform", "--set",
                         "train.batch_sise=4", config_dir=config_dir),
                    "train.batch_sise", "did you mean 'batch_size'")


def test_negative_batch_size(config_dir: Path) -> None:
    _one_line_error(_cli("run", "--pair", "test-pair", "--strategy", "uniform", "--set",
                         "train.batch_size=-4", config_dir=config_dir),
                    "train.batch_size", "-4", "positive")


def test_parquet_without_answer_column(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "no_answer.parquet"
    pd.DataFrame({"extra_info": [{"question": "1+1?"}, {"question": "2+2?"}]}).to_parquet(path)
    proc = _cli("probe", "--pair", "test-pair", "--set", "task.source=parquet", "--set",
                f"task.path={path}", "--set", "task.answer_format=boxed", config_dir=config_dir)
    _one_line_error(proc, "task.answer_key")


def test_resolve_layers_and_hash(config_dir: Path) -> None:
    a = config.resolve("test-pair", "uniform", seed=0, config_dir=config_dir)
    b = config.resolve("test-pair", "uniform", seed=1, config_dir=config_dir)
    c = config.resolve("test-pair", "uniform", seed=0, overrides=["train.lr=1e-4"],
                       config_dir=config_dir)
    assert a.train.lr == 1e-3 and c.train.lr == 1e-4  # pair < overrides
    assert a.run_id().rsplit("__", 1)[0] == b.run_id().rsplit("__", 1)[0]  # seed not hashed
    assert a.run_id() != c.run_id()
    with pytest.raises(ConfigError, match="eval.samples"):
        config.resolve("test-pair", "uniform", overrides=["eval.samples=4"], config_dir=config_dir)


def test_variant_names_a_setting_without_moving_older_run_ids(config_dir: Path) -> None:
    sets = ["train.threads=1", "train.batch_size=32", "train.mini_batch_size=16",
            "train.steps=150", "replay.capacity=32", "replay.enabled=true"]
    plain = config.resolve("tiny-c-arith", "dots", seed=0, overrides=sets)
    # the id this run had in results/dots-b32 before `variant` existed
    assert plain.run_id() == "tiny-c-arith__dots+rr__87b25045__s0"
    named = config.resolve("tiny-c-arith", "dots", seed=0,
                           overrides=[*sets, "replay.sigma=0.75", "variant=s75"])
    assert named.label() == "dots+rr@s75"
    assert named.run_id().startswith("tiny-c-arith__dots+rr@s75__")
    with pytest.raises(ConfigError, match="variant"):
        config.resolve("tiny-c-arith", "dots", overrides=["variant=a b"])


def test_every_field_is_documented() -> None:
    undocumented = [name for name, help_, _ in config.field_help(config.RunConfig) if not help_]
    assert undocumented == []
