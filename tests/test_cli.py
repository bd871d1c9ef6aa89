"""Bad input gets a one-line error naming the problem, before any work starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import config
from harness.config.base import ConfigError


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


def _sections(stdout: str) -> dict[str, list[str]]:
    """`selbench list pairs` output -> header -> the pair names under it."""
    out = {}
    for block in stdout.strip().split("\n\n"):
        header, *lines = block.splitlines()
        out[header] = [ln.split()[0] for ln in lines if not ln.strip().startswith("(")]
    return out


def test_list_pairs_and_strategies() -> None:
    pairs = _cli("list", "pairs")
    assert pairs.returncode == 0, pairs.stderr
    # every pair of configs/pairs is listed exactly once, under one section
    listed = [n for names in _sections(pairs.stdout).values() for n in names]
    assert sorted(listed) == config.list_names("pairs")
    names = [line.split()[0] for line in _cli("list", "strategies").stdout.splitlines()]
    assert {"uniform", "oracle"} <= set(names)


def test_archived_pair_and_model_resolve_by_name(config_dir: Path) -> None:
    assert "tiny-c-arith" in config.list_archived("pairs")
    assert "tiny-c" in config.list_archived("models")
    assert "tiny-c-arith" not in config.list_names("pairs")  # out of the way ...
    cfg = config.resolve("tiny-c-arith", "uniform", seed=0)  # ... but runnable
    assert cfg.pair == "tiny-c-arith" and cfg.model.name == "tiny-c" and cfg.model.kind == "tiny"
    # from another config tree too (the archive is the project's); a typo gets the archived name
    assert config.resolve("tiny-c-arith", "uniform", config_dir=config_dir).model.name == "tiny-c"
    with pytest.raises(ConfigError, match="did you mean 'tiny-c-arith'"):
        config.resolve("tiny-c-arth", "uniform", config_dir=config_dir)


def test_a_live_config_shadows_the_archived_one(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-c.yaml").write_text("kind: hf\npath: some/model\n")
    cfg = config.resolve("tiny-c-arith", "uniform", config_dir=tmp_path)  # the archived pair ...
    assert cfg.model.kind == "hf" and cfg.model.path == "some/model"  # ... with the live model


def _suite_tree(root: Path, pairs: list[str], real_llm: list[str]) -> Path:
    """A configs/ tree with a tiny, an smollm2 and an hf model, five pairs and a suite file."""
    configs = root / "configs"
    for sub in ("models", "pairs", "suites"):
        (configs / sub).mkdir(parents=True)
    for name, kind in (("m-tiny", "tiny"), ("m-small", "smollm2"), ("m-gpu", "hf")):
        (configs / "models" / f"{name}.yaml").write_text(f"kind: {kind}\ndescription: {name}\n")
    for name, model in (("s-one", "m-tiny"), ("s-two", "m-tiny"), ("llm", "m-small"),
                        ("gpu", "m-gpu"), ("odd", "m-tiny")):
        (configs / "pairs" / f"{name}.yaml").write_text(f"model: {model}\ndescription: {name} pair\n")
    (configs / "suites" / "cpu.yaml").write_text(
        f"name: cpu\ndescription: test suite\npairs: {pairs}\nreal_llm: {real_llm}\n"
        "frozen_commit: null\n")
    return configs


def test_list_pairs_sections_and_archived_flag(tmp_path: Path) -> None:
    configs = _suite_tree(tmp_path, ["s-two", "s-one"], ["llm"])
    plain = _cli("list", "pairs", config_dir=configs)
    assert plain.returncode == 0, plain.stderr
    sections = _sections(plain.stdout)
    assert list(sections) == ["CPU suite (2 pairs): test suite", "Real LLM on CPU (too slow on "
                              "a CPU to sweep)", "The paper's GPU pairs", "Other pairs"]
    assert list(sections.values()) == [["s-two", "s-one"], ["llm"], ["gpu"], ["odd"]]
    assert "s-two                            m-tiny             s-two pair" in plain.stdout
    archived = _cli("list", "pairs", "--archived", config_dir=configs)
    sections = _sections(archived.stdout)
    assert list(sections)[-1] == "Archived (studies/)"
    assert set(config.list_archived("pairs")) == set(sections["Archived (studies/)"])
    assert "tiny-c-arith" in sections["Archived (studies/)"]
    assert "tiny-c-arith" not in plain.stdout
    models = _cli("list", "models", "--archived", config_dir=configs)
    assert models.returncode == 0 and "Archived (studies/)" in models.stdout
    assert "tiny-c " in models.stdout and "tiny-c " not in _cli("list", "models").stdout


def test_list_pairs_unknown_suite_pair_is_one_line(tmp_path: Path) -> None:
    configs = _suite_tree(tmp_path, ["s-one", "nope"], ["llm"])
    _one_line_error(_cli("list", "pairs", config_dir=configs), "configs/suites/cpu.yaml", "nope")
    # an archived pair is not a suite member
    (configs / "suites" / "cpu.yaml").write_text("pairs: [tiny-c-arith]\n")
    _one_line_error(_cli("list", "pairs", config_dir=configs), "configs/suites/cpu.yaml",
                    "tiny-c-arith", "studies/tiny-pairs")


def test_project_suite_file_names_live_pairs() -> None:
    from harness.instrument import suite

    cpu = suite.load_suite("cpu")  # raises on a name missing from configs/pairs
    assert cpu.name == "cpu" and set(cpu.members) <= set(config.list_names("pairs"))


def test_listing_imports_no_torch(tmp_path: Path) -> None:
    configs = _suite_tree(tmp_path, ["s-one"], ["llm"])
    code = ("import sys\nfrom harness import cli\n"
            "for what in ('pairs', 'models'):\n"
            "    assert cli.main(['list', what, '--archived']) == 0\n"
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    for tree in (None, configs):  # the project's configs and a test tree
        env = dict(os.environ)
        if tree is not None:
            env["SELBENCH_CONFIG_DIR"] = str(tree)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr


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


def test_train_device_is_validated_and_keeps_cpu_run_ids() -> None:
    cpu = config.resolve("tiny1m-chainsum", "uniform")
    assert cpu.train.device == "cpu"
    assert config.resolve("tiny1m-chainsum", "uniform",
                          overrides=["train.device=cpu"]).run_id() == cpu.run_id()
    gpu = config.resolve("tiny1m-chainsum", "uniform", overrides=["train.device=cuda:1"])
    assert gpu.run_id() != cpu.run_id()  # GPU rounding differs: its records stay apart
    with pytest.raises(ConfigError, match="train.device"):
        config.resolve("tiny1m-chainsum", "uniform", overrides=["train.device=gpu"])
