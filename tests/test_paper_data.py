"""Tables from local JSONL/JSON/parquet files, named eval sets, kind 'hf' models: real files, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import config
from harness.config.base import ConfigError
from harness.instrument import evalsets
from harness.instrument.tasks import Question, TaskConfig, load_pool
from harness.instrument.tasks.config import EvalSetConfig
from harness.instrument.tasks.tables import TaskFileNotFound, is_local, local_path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def train_file(tmp_path: Path) -> Path:
    rows = [{"problem": f"Compute {i} + {i}.", "level": f"Level {1 + i % 5}",
             "solution": f"Adding, we get $\\boxed{{{2 * i}}}$."} for i in range(40)]
    rows.append({"problem": "What is $1+1$?", "level": "Level 3", "solution": "\\boxed{2}"})
    return _jsonl(tmp_path / "math_train.jsonl", rows)


@pytest.fixture()
def eval_files(tmp_path: Path) -> dict[str, Path]:
    gsm = _jsonl(tmp_path / "gsm8k.jsonl", [
        {"question": "Tom has 1,200 apples and buys 300 more. How many?", "answer": "1200+300=1500\n#### 1,500"},
        {"question": "What is $1+1$?", "answer": "#### 2"},  # also in the training file
    ])
    olymp = tmp_path / "olympiad.json"
    olymp.write_text(json.dumps([
        {"question": "Find x if 2x = 1.", "final_answer": ["$\\frac{1}{2}$"]},
        {"question": "Name the roots of x^2 = 9.", "final_answer": ["3", "-3"]},
    ]))
    math500 = tmp_path / "math500.parquet"
    pq.write_table(pa.Table.from_pylist([{"problem": "Evaluate 7 * 6.", "answer": "42"}]), math500)
    return {"gsm8k": gsm, "olympiadbench": olymp, "math500": math500}


def _task(train_file: Path, eval_files: dict[str, Path], **over) -> TaskConfig:
    fields = dict(
        source="parquet", path=str(train_file), question_key="problem", answer_key="solution",
        reference_format="boxed", answer_format="boxed",
        where={"level": ["Level 3", "Level 4", "Level 5"]},
        eval_sets=[
            EvalSetConfig(name="gsm8k", path=str(eval_files["gsm8k"]), question_key="question",
                          reference_format="after_hashes"),
            EvalSetConfig(name="math500", path=str(eval_files["math500"])),
            EvalSetConfig(name="olympiadbench", path=str(eval_files["olympiadbench"]),
                          question_key="question", answer_key="final_answer"),
        ])
    fields.update(over)
    return TaskConfig(**fields)


def test_named_eval_sets_filters_and_reference_formats(train_file: Path, eval_files: dict[str, Path]) -> None:
    pool = load_pool(_task(train_file, eval_files), "p")
    # levels 3-5 of 40 generated rows (i % 5 in 2..4) = 24, plus "1+1" which gsm8k holds out
    assert len(pool.train) == 24
    assert all(q.answer == str(2 * int(q.text.split()[1])) for q in pool.train)
    assert list(pool.eval_sets) == ["gsm8k", "math500", "olympiadbench"]
    answers = {name: [q.answer for q in qs] for name, qs in pool.eval_sets.items()}
    assert answers == {"gsm8k": ["1500", "2"], "math500": ["42"],
                       "olympiadbench": ["\\frac{1}{2}", "3, -3"]}
    assert pool.eval == [q for qs in pool.eval_sets.values() for q in qs]
    assert {q.meta["eval_set"] for q in pool.eval} == set(pool.eval_sets)
    v = pool.verifier
    gsm = pool.eval_sets["gsm8k"][0]
    assert v(gsm, "so \\boxed{1500}") == 1.0 and v(gsm, "\\boxed{1,500}") == 1.0
    assert v(gsm, "\\boxed{1501}") == 0.0
    half = pool.eval_sets["olympiadbench"][0]
    assert v(half, "\\boxed{0.5}") == 1.0 and v(half, "\\boxed{2}") == 0.0


def test_accuracy_is_the_mean_over_sets_not_over_questions() -> None:
    qs = [Question(f"a{i}", "?", "1", {"eval_set": "big"}) for i in range(3)]
    qs.append(Question("b0", "?", "1", {"eval_set": "small"}))
    acc, per_set = evalsets.accuracy(qs, [1.0, 1.0, 1.0, 0.0])
    assert per_set == {"big": 1.0, "small": 0.0} and acc == 0.5  # the pooled mean would be 0.75
    assert evalsets.metric_names(per_set) == {"eval/big": 1.0, "eval/small": 0.0}
    plain = [Question("c", "?", "1", {})] * 4
    assert evalsets.accuracy(plain, [1.0, 0.0, 0.0, 0.0]) == (0.25, {})


def test_missing_eval_file_names_the_field(train_file: Path, eval_files: dict[str, Path], tmp_path: Path) -> None:
    cfg = _task(train_file, eval_files)
    cfg.eval_sets[1].path = str(tmp_path / "nope.parquet")
    with pytest.raises(TaskFileNotFound) as info:
        load_pool(cfg, "p")
    assert info.value.field_name == "task.eval_sets[1].path"


def test_unreachable_hub_dataset_says_which_file_to_provide(train_file: Path,
                                                           eval_files: dict[str, Path]) -> None:
    pytest.importorskip("datasets")
    cfg = _task(train_file, eval_files)
    cfg.eval_sets[0].path = "selbench-test/surely-not-cached"
    with pytest.raises(TaskFileNotFound) as info:
        load_pool(cfg, "p")
    message = str(info.value)
    assert "task.eval_sets[0].path" in message and "parquet or JSONL" in message
    assert "\n" not in message


@pytest.mark.parametrize("override, field", [
    ("task.eval_sets=[{name: a, path: x.jsonl}, {name: a, path: y.jsonl}]", "task.eval_sets[1].name"),
    ("task.eval_sets=[{name: a, path: x.jsonl, reference_format: latex}]",
     "task.eval_sets[0].reference_format"),
    ("task.where={level: Level 3}", "task.where.level"),
    ("task.eval_path=x.parquet", "task.eval_path"),
    ("model.path=''", "model.path"),
])
def test_bad_paper_pair_settings_are_one_line_errors(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.resolve("qwen2.5-math-1.5b-math", "uniform", overrides=[override])
    assert info.value.field_name == field


def test_local_or_hub_and_project_relative_paths() -> None:
    assert is_local("../shared/data/deepscaler_10240.parquet") and is_local("/data/x.jsonl")
    assert is_local("data.parquet") and not is_local("openai/gsm8k") and not is_local("gsm8k")
    resolved = local_path("../shared/data/deepscaler_10240.parquet")
    assert resolved.is_absolute() and resolved.parts[-3:] == ("shared", "data", "deepscaler_10240.parquet")


def test_hf_model_missing_gives_the_folder_to_provide(tmp_path: Path) -> None:
    from harness.instrument import policy

    cfg = config.resolve("qwen2.5-math-1.5b-deepscaler", "uniform",
                         overrides=[f"model.path={tmp_path / 'qwen'}"]).model
    with pytest.raises(policy.ModelNotAvailable, match="config.json"):
        policy.model_dir(cfg)
    named = config.resolve("qwen2.5-math-7b-deepscaler", "uniform",
                           overrides=["model.path=selbench-test/not-a-cached-model"]).model
    with pytest.raises(FileNotFoundError) as info:
        policy.model_dir(named)
    assert "huggingface-cli download selbench-test/not-a-cached-model" in str(info.value)
    assert "--set model.path=DIR" in str(info.value)


def test_hf_model_local_folder_loads(built_test_model: Path) -> None:
    from harness.instrument import policy

    # the tiny test model has no chat template: plain prompts
    cfg = config.resolve("qwen2.5-3b-deepscaler", "uniform",
                         overrides=[f"model.path={built_test_model}", "model.chat=false"]).model
    model, tokenizer, path = policy.load(cfg, progress=False)
    assert path == built_test_model and model.config.model_type == "qwen2"
    text = policy.render_prompt(cfg, tokenizer, "What is 2+2?")
    assert "What is 2+2?" in text
