"""Task pools and verifiers: real reasoning-gym, real math-verify, the real DeepScaleR parquet."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.config.base import ConfigError
from harness.instrument.tasks import Pool, Question, TaskConfig, extract_answer, load_pool
from harness.instrument.tasks.gym import GymVerifier, apportion
from harness.instrument.tasks.parquet import MathVerifier, TaskFileNotFound

DEEPSCALER = Path(__file__).resolve().parents[1].parent / "shared/data/deepscaler_10240.parquet"


def chain_tiers(easy_weight: float = 1.0, hard_weight: float = 1.0) -> list[dict]:
    return [
        {
            "name": "easy",
            "dataset": "chain_sum",
            "weight": easy_weight,
            "params": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2},
        },
        {
            "name": "hard",
            "dataset": "chain_sum",
            "weight": hard_weight,
            "params": {"min_terms": 4, "max_terms": 5, "min_digits": 2, "max_digits": 2},
        },
    ]


def gym_cfg(**overrides) -> TaskConfig:
    fields = {"tiers": chain_tiers(), "n_train": 300, "n_eval": 100, "seed": 7}
    fields.update(overrides)
    return TaskConfig(**fields)


@pytest.fixture(scope="module")
def gym_pool() -> Pool:
    return load_pool(gym_cfg(), "cs")


@pytest.fixture(scope="module")
def deepscaler_pool() -> Pool:
    if not DEEPSCALER.is_file():
        pytest.skip(f"{DEEPSCALER} not present")
    cfg = TaskConfig(source="parquet", path=str(DEEPSCALER), answer_format="boxed", seed=3)
    return load_pool(cfg, "dsr")


def config_error(cfg: TaskConfig) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    return info.value


# --- reasoning-gym pools -------------------------------------------------------------------


def test_same_seed_gives_same_questions_and_other_seed_differs(gym_pool: Pool) -> None:
    again = load_pool(gym_cfg(), "cs")
    assert [q.qid for q in again.train] == [q.qid for q in gym_pool.train]
    assert [q.text for q in again.eval] == [q.text for q in gym_pool.eval]
    other = load_pool(gym_cfg(seed=8), "cs")
    shared = {q.text for q in other.train} & {q.text for q in gym_pool.train}
    assert len(shared) < len(gym_pool.train) // 4


def test_sizes_disjoint_split_and_unique_ids(gym_pool: Pool) -> None:
    assert len(gym_pool.train) == 300 and len(gym_pool.eval) == 100
    train_texts = {q.text for q in gym_pool.train}
    eval_texts = {q.text for q in gym_pool.eval}
    assert len(train_texts) == 300 and len(eval_texts) == 100
    assert not train_texts & eval_texts
    qids = [q.qid for q in gym_pool.train + gym_pool.eval]
    assert len(set(qids)) == len(qids)
    assert all(q.qid.startswith("cs-") for q in gym_pool.train)


def test_tiers_mixed_by_weight_in_train_and_eval() -> None:
    pool = load_pool(gym_cfg(tiers=chain_tiers(1.0, 3.0), n_train=400, n_eval=100), "mix")
    assert Counter(q.meta["tier"] for q in pool.train) == {"easy": 100, "hard": 300}
    assert Counter(q.meta["tier"] for q in pool.eval) == {"easy": 25, "hard": 75}
    # Tiers are interleaved, not in blocks: the first 40 training questions hold both.
    assert len({q.meta["tier"] for q in pool.train[:40]}) == 2
    assert apportion(10, [1.0, 1.0, 1.0]) == [4, 3, 3]


def test_meta_is_json_and_a_round_tripped_question_still_verifies(gym_pool: Pool) -> None:
    q = gym_pool.train[0]
    restored = Question(**json.loads(json.dumps(q.__dict__)))
    assert restored.meta["entry"]["answer"] == q.answer
    assert gym_pool.verifier(restored, f" {q.answer}\n") == 1.0


def test_gym_verifier_right_wrong_and_garbage(gym_pool: Pool) -> None:
    verifier = gym_pool.verifier
    for q in gym_pool.eval[:30]:
        assert verifier(q, f" {q.answer}\n7 + 1 = 8") == 1.0
        assert verifier(q, f"{q.answer}") == 1.0
        assert verifier(q, f" {int(q.answer) + 1}\n") == 0.0
        assert verifier(q, "banana") == 0.0
        assert verifier(q, "") == 0.0
        assert verifier(q, "\n" + q.answer) == 0.0  # first line empty: no answer
    assert verifier.failures == 0 and verifier.timeouts == 0


def test_partial_credit_counts_as_wrong(gym_pool: Pool) -> None:
    q = gym_pool.train[0]
    completion = f"the answer is {q.answer}"
    scorer = gym_pool.verifier.scorers[q.meta["tier"]]
    raw = scorer(extract_answer(completion, "first_line"), q.meta["entry"])
    assert 0.0 < raw < 1.0  # reasoning-gym itself gives partial credit here
    assert gym_pool.verifier(q, completion) == 0.0


def test_broken_question_scores_zero_and_is_counted(gym_pool: Pool) -> None:
    verifier = GymVerifier("first_line", dict(gym_pool.verifier.scorers), timeout=1.0)
    stray = Question(qid="x", text="1 + 1 =", answer="2", meta={})  # no entry to score
    assert verifier(stray, "2") == 0.0
    assert verifier.failures == 1 and verifier.timeouts == 0


def test_tier_too_small_for_request_is_a_config_error() -> None:
    tiny = [
        {
            "name": "one_digit",
            "dataset": "products",
            "weight": 1.0,
            "params": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
        }
    ]
    with pytest.raises(ConfigError) as info:
        load_pool(gym_cfg(tiers=tiny, n_train=150, n_eval=50), "p")
    assert info.value.field_name == "task.tiers[0]"
    assert "distinct questions" in str(info.value)


def test_five_thousand_questions_generate_in_seconds() -> None:
    start = time.perf_counter()
    pool = load_pool(TaskConfig(n_train=4500, n_eval=500), "big")
    assert len(pool.train) + len(pool.eval) == 5000
    assert time.perf_counter() - start < 10.0
    start = time.perf_counter()
    rewards = [pool.verifier(q, f" {q.answer}") for q in pool.train[:2000]]
    assert sum(rewards) == 2000
    assert (time.perf_counter() - start) / 2000 < 1e-3


# --- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "fmt", "expected"),
    [
        (" 42\n7 + 1", "first_line", "42"),
        (" 42", "first_line", "42"),
        ("-3 \n", "first_line", "-3"),
        ("\n42", "first_line", None),
        ("", "first_line", None),
        ("so \\boxed{\\frac{1}{2}}.", "boxed", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{ 2 }", "boxed", "2"),
        ("\\boxed{3} and a cut-off \\boxed{\\frac{1", "boxed", "3"),
        ("\\boxed {x^{2}}", "boxed", "x^{2}"),
        ("\\boxed{}", "boxed", None),
        ("no box here 5", "boxed", None),
        ("the answer is 1,000.", "last_number", "1000"),
        ("5-3", "last_number", "3"),
        ("so x = -7", "last_number", "-7"),
        ("ratio 3/4", "last_number", "3/4"),
        ("costs 2.50 now", "last_number", "2.50"),
        ("none", "last_number", None),
    ],
)
def test_extract_answer(completion: str, fmt: str, expected: str | None) -> None:
    assert extract_answer(completion, fmt) == expected


def test_extract_unknown_format_raises() -> None:
    with pytest.raises(ValueError, match="xml"):
        extract_answer("42", "xml")


# --- validation ----------------------------------------------------------------------------


def test_default_config_is_valid() -> None:
    TaskConfig().validate()


def test_unknown_tier_key_is_named() -> None:
    tiers = chain_tiers()
    tiers[1]["difficulty"] = 3
    err = config_error(gym_cfg(tiers=tiers))
    assert err.field_name == "task.tiers[1].difficulty"
    assert "allowed" in str(err)


def test_unknown_dataset_suggests_a_close_name() -> None:
    tiers = chain_tiers()
    tiers[0]["dataset"] = "chain_sun"
    err = config_error(gym_cfg(tiers=tiers))
    assert err.field_name == "task.tiers[0].dataset"
    assert "did you mean 'chain_sum'" in str(err)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"n_train": -5}, "task.n_train"),
        ({"n_eval": 0}, "task.n_eval"),
        ({"answer_format": "xml"}, "task.answer_format"),
        ({"source": "csv"}, "task.source"),
        ({"verifier_timeout": 0}, "task.verifier_timeout"),
        ({"tiers": []}, "task.tiers"),
        ({"source": "parquet", "path": "x.parquet", "eval_fraction": 1.5}, "task.eval_fraction"),
        ({"source": "parquet", "path": "x.parquet", "max_rows": 0}, "task.max_rows"),
        ({"source": "parquet"}, "task.path"),
    ],
)
def test_bad_values_name_their_field(overrides: dict, field: str) -> None:
    assert config_error(gym_cfg(**overrides)).field_name == field


def test_bad_tier_params_are_named() -> None:
    tiers = chain_tiers()
    tiers[0]["params"] = {"min_term": 2}
    assert config_error(gym_cfg(tiers=tiers)).field_name == "task.tiers[0].params.min_term"
    tiers[0]["params"] = {"seed": 1}
    assert config_error(gym_cfg(tiers=tiers)).field_name == "task.tiers[0].params.seed"
    tiers[0]["params"] = {"min_terms": 5, "max_terms": 2}
    assert config_error(gym_cfg(tiers=tiers)).field_name == "task.tiers[0].params"
    tiers[0]["params"] = {}
    tiers[0]["weight"] = 0
    assert config_error(gym_cfg(tiers=tiers)).field_name == "task.tiers[0].weight"
    tiers[0]["weight"] = 1
    tiers[1]["name"] = "easy"
    assert config_error(gym_cfg(tiers=tiers)).field_name == "task.tiers[1].name"


def test_pool_refuses_train_eval_overlap() -> None:
    q = Question(qid="a", text="1 + 1 =", answer="2", meta={})
    with pytest.raises(ValueError, match="both train and eval"):
        Pool(name="p", train=[q], eval=[q], verifier=MathVerifier("boxed"))


# --- parquet pools -------------------------------------------------------------------------


def test_deepscaler_split_ids_and_determinism(deepscaler_pool: Pool) -> None:
    train, evals = deepscaler_pool.train, deepscaler_pool.eval
    total = len(train) + len(evals)
    assert 10_000 < total <= 10_240  # repeated question texts are kept once
    assert abs(len(evals) - 0.1 * total) <= 1
    assert not {q.text for q in train} & {q.text for q in evals}
    assert len({q.qid for q in train + evals}) == total
    first = min(train + evals, key=lambda q: q.meta["row"])
    assert first.qid == f"dsr-{first.meta['index']}"
    assert "\\lim" in first.text and first.answer == "-\\frac{\\sqrt{3}}{3}"
    cfg = TaskConfig(source="parquet", path=str(DEEPSCALER), seed=3, max_rows=500)
    small = load_pool(cfg, "dsr")
    assert len(small.train) + len(small.eval) == 500
    assert [q.qid for q in load_pool(cfg, "dsr").eval] == [q.qid for q in small.eval]


def test_deepscaler_verifier_reference_perturbed_and_equivalent(deepscaler_pool: Pool) -> None:
    verifier = deepscaler_pool.verifier
    sample = deepscaler_pool.train[:150]
    for q in sample:
        assert verifier(q, f"Step by step ... so \\boxed{{{q.answer}}}.") == 1.0, q.answer
    integers = [q for q in sample if q.answer.lstrip("-").isdigit()]
    assert len(integers) > 30
    for q in integers:
        assert verifier(q, f"\\boxed{{{int(q.answer) + 1}}}") == 0.0
        assert verifier(q, "I do not know") == 0.0
    half = Question(qid="half", text="?", answer="\\frac{1}{2}", meta={})
    assert verifier(half, "\\boxed{0.5}") == 1.0
    assert verifier(half, "\\boxed{\\dfrac{2}{4}}") == 1.0
    assert verifier(half, "\\boxed{\\frac{1}{3}}") == 0.0
    assert verifier.failures == 0


def test_pathological_answer_times_out_without_raising() -> None:
    verifier = MathVerifier("boxed", timeout=0.2)
    q = Question(qid="five", text="?", answer="5", meta={})
    start = time.perf_counter()
    assert verifier(q, "\\boxed{9^{9^{9^{9}}}}") == 0.0
    assert time.perf_counter() - start < 2.0
    assert verifier.timeouts == 1 and verifier.failures == 1
    # The interrupted parse must not leave math-verify broken for the next answers.
    assert verifier(q, "\\boxed{\\frac{10}{2}}") == 1.0
    assert verifier(q, "\\boxed{" + "(" * 5000 + "}") == 0.0  # too long: rejected unparsed


def test_verifier_works_outside_the_main_thread() -> None:
    verifier = MathVerifier("boxed", timeout=0.5)
    q = Question(qid="half", text="?", answer="\\frac{1}{2}", meta={})
    results: list[float] = []
    worker = threading.Thread(target=lambda: results.append(verifier(q, "\\boxed{1/2}")))
    worker.start()
    worker.join(timeout=30)
    assert results == [1.0] and verifier.failures == 0


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def verl_row(i: int, question: str, answer: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": question}],
        "reward_model": {"ground_truth": answer, "style": "rule"},
        "extra_info": {"question": question, "index": 100 + i},
    }


def test_missing_answer_column_is_a_one_line_config_error(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "extra_info": {"question": f"q{i}", "index": i}} for i in range(5)]
    path = write_parquet(tmp_path / "no_answer.parquet", rows)
    with pytest.raises(ConfigError) as info:
        load_pool(TaskConfig(source="parquet", path=str(path)), "t")
    message = str(info.value)
    assert info.value.field_name == "task.answer_key"
    assert "reward_model.ground_truth" in message and "extra_info.question" in message
    assert "\n" not in message


def test_missing_file_names_the_path_and_what_to_provide(tmp_path: Path) -> None:
    missing = tmp_path / "absent.parquet"
    with pytest.raises(FileNotFoundError) as info:
        load_pool(TaskConfig(source="parquet", path=str(missing)), "t")
    assert isinstance(info.value, TaskFileNotFound) and isinstance(info.value, ConfigError)
    message = str(info.value)
    assert str(missing) in message and "verl/OpenRLHF" in message and "\n" not in message


def test_eval_file_duplicates_and_custom_keys(tmp_path: Path) -> None:
    train_rows = [verl_row(i, f"What is {i} + 1?", str(i + 1)) for i in range(20)]
    train_rows.append(verl_row(20, "What is 3 + 1?", "4"))  # repeated text
    eval_rows = [verl_row(i, f"What is {i} + 1?", str(i + 1)) for i in range(15, 25)]
    train = write_parquet(tmp_path / "train.parquet", train_rows)
    evals = write_parquet(tmp_path / "eval.parquet", eval_rows)
    cfg = TaskConfig(source="parquet", path=str(train), eval_path=str(evals), answer_format="boxed")
    pool = load_pool(cfg, "toy")
    assert len(pool.train) == 15 and len(pool.eval) == 10  # 15..19 are eval-only
    assert pool.train[0].qid == "toy-100" and pool.eval[0].qid == "toy-eval-115"
    assert pool.verifier(pool.eval[0], "\\boxed{16}") == 1.0
    by_key = TaskConfig(source="parquet", path=str(train), answer_key="extra_info.nothing")
    with pytest.raises(ConfigError, match="task.answer_key"):
        load_pool(by_key, "toy")
