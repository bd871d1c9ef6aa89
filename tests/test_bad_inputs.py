"""Bad inputs a careless user hits: each stops with one line naming the file, the rows and the fix.

Data rows (missing, NaN, None or empty answers and questions, conflicting duplicates, empty
files, filters that keep nothing, pools too small for a batch or without a held-out set) and
verifier deadlines that must hold off the main thread, where OpenRLHF calls the reward.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.config.base import ConfigError
from harness.instrument.tasks import (
    Pool,
    Question,
    TaskConfig,
    TaskDataError,
    Verifier,
    check_pool_size,
    load_pool,
)
from harness.instrument.tasks.gym import GymVerifier
from harness.instrument.tasks.parquet import MathVerifier


def verl_rows(answers: list, questions: list | None = None) -> list[dict]:
    questions = questions or [f"What is {i} + 1?" for i in range(len(answers))]
    return [
        {"prompt": [{"role": "user", "content": str(q)}],
         "reward_model": {"ground_truth": a, "style": "rule"},
         "extra_info": {"question": q, "index": 100 + i}}
        for i, (q, a) in enumerate(zip(questions, answers, strict=True))
    ]


def write(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def parquet_cfg(path: Path, **over) -> TaskConfig:
    return TaskConfig(source="parquet", path=str(path), answer_format="boxed", **over)


def data_error(cfg: TaskConfig) -> str:
    """The one-line message of the TaskDataError that loading ``cfg`` raises."""
    with pytest.raises(TaskDataError) as info:
        load_pool(cfg, "bad")
    message = str(info.value)
    assert isinstance(info.value, ConfigError)  # the CLI prints it as one line and exits 2
    assert "\n" not in message
    assert cfg.path in message  # the file is named
    return message


# --- data rows ------------------------------------------------------------------------------


def test_a_few_rows_without_an_answer_are_dropped_and_counted(tmp_path: Path, capsys) -> None:
    answers = [str(i + 1) for i in range(20)]
    answers[3] = None
    answers[11] = None
    path = write(tmp_path / "some_missing.parquet", verl_rows(answers))
    pool = load_pool(parquet_cfg(path), "t")
    assert len(pool.train) + len(pool.eval) == 18
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err
    assert "dropped 2 of its 20 rows with no answer in 'reward_model.ground_truth'" in err
    assert "rows 3, 11" in err and "task.drop_bad_rows: false" in err
    # the switch makes it an error
    message = data_error(parquet_cfg(path, drop_bad_rows=False))
    assert "2 of its 20 rows have no answer in 'reward_model.ground_truth'" in message
    assert "rows 3, 11" in message and "set task.drop_bad_rows: true to drop them" in message


def test_nan_none_empty_and_nan_text_answers_are_missing_not_the_string_nan(
        tmp_path: Path, capsys) -> None:
    # a float answer column: NaN stays NaN in the parquet (no pandas null conversion)
    floats = [float(i + 1) for i in range(10)]
    floats[2] = math.nan
    floats[5] = math.inf
    path = write(tmp_path / "float_answers.parquet", verl_rows(floats))
    pool = load_pool(parquet_cfg(path), "t")
    every = pool.train + pool.eval
    assert len(every) == 8 and all(q.answer not in ("nan", "inf") for q in every)
    assert "dropped 2 of its 10 rows" in capsys.readouterr().err
    # None, NaN, "", "  ", "nan", "None", "null" written by pandas from a careless frame
    answers = ["4", None, math.nan, "", "  ", "nan", "None", "null", "$$"] + [str(i) for i in range(30)]
    frame = pd.DataFrame({"question": [f"Question {i}?" for i in range(len(answers))],
                          "answer": answers})
    frame_path = tmp_path / "pandas_answers.parquet"
    frame.to_parquet(frame_path)
    cfg = parquet_cfg(frame_path, question_key="question", answer_key="answer")
    pool = load_pool(cfg, "p")
    assert len(pool.train) + len(pool.eval) == len(answers) - 8
    assert "dropped 8 of its 39 rows with no answer in 'answer'" in capsys.readouterr().err
    # and no gold can be a missing-value text: a completion "nan" never scores
    verifier = pool.verifier
    for gold in ("nan", "NaN", "None", "null"):
        assert verifier(Question(qid=gold, text="?", answer=gold), f"\\boxed{{{gold}}}") == 0.0
    message = data_error(TaskConfig(source="parquet", path=str(frame_path), question_key="question",
                                    answer_key="answer", drop_bad_rows=False))
    assert "8 of its 39 rows have no answer in 'answer' (null, NaN or empty)" in message
    assert "rows 1, 2, 3, ..." in message


def test_all_answers_missing_is_one_line_not_a_numpy_error(tmp_path: Path) -> None:
    schema = pa.schema([
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
        ("extra_info", pa.struct([("question", pa.string()), ("index", pa.int64())])),
    ])
    path = write(tmp_path / "no_answers.parquet", verl_rows([None] * 12), schema)
    message = data_error(parquet_cfg(path))
    assert "all of its 12 rows have no answer in 'reward_model.ground_truth'" in message
    assert "point task.answer_key at the column that holds the answers" in message
    # a MATH-style solution column read with reference_format boxed but never boxed
    solutions = write(tmp_path / "unboxed.parquet", verl_rows([f"It is {i}." for i in range(6)]))
    message = data_error(parquet_cfg(solutions, reference_format="boxed"))
    assert "all of its 6 rows have no answer" in message and "no \\boxed{...}" in message
    assert "or change task.reference_format" in message


def test_too_many_rows_without_an_answer_are_an_error_even_when_dropping(tmp_path: Path) -> None:
    answers = [None] * 7 + ["1", "2", "3"]
    path = write(tmp_path / "mostly_missing.parquet", verl_rows(answers))
    message = data_error(parquet_cfg(path))
    assert "7 of its 10 rows have no answer" in message and "too many to drop" in message
    assert "point task.answer_key" in message


def test_rows_without_a_question_are_counted_too(tmp_path: Path, capsys) -> None:
    questions = [f"Q{i}?" for i in range(10)]
    questions[4] = ""
    questions[7] = None
    path = write(tmp_path / "no_question.parquet", verl_rows([str(i) for i in range(10)], questions))
    pool = load_pool(parquet_cfg(path), "t")
    assert len(pool.train) + len(pool.eval) == 8
    assert "dropped 2 of its 10 rows with no question text in 'extra_info.question'" in (
        capsys.readouterr().err)
    message = data_error(parquet_cfg(path, drop_bad_rows=False))
    assert "2 of its 10 rows have no question text" in message and "rows 4, 7" in message


def test_repeated_questions_with_conflicting_answers(tmp_path: Path, capsys) -> None:
    answers = [str(i + 1) for i in range(12)] + ["99", "\\frac{1}{2}", "5"]
    questions = [f"What is {i} + 1?" for i in range(12)]
    # row 12 repeats row 3 with another answer; row 13 repeats row 4 with an equivalent one
    # after a "1/2" gold; row 14 repeats row 4 with the same answer
    answers[4] = "1/2"
    questions += [questions[3], questions[4], questions[4]]
    answers[14] = "1/2"
    path = write(tmp_path / "conflicts.parquet", verl_rows(answers, questions))
    message = data_error(parquet_cfg(path, drop_bad_rows=False))
    assert "1 question text of its 15 rows repeats with a different answer (1 later row;" in message
    assert "row 12 'What is 3 + 1?' answers '99' but row 3 answers '4'" in message
    assert "remove the wrong copies, or set task.drop_bad_rows: true" in message
    pool = load_pool(parquet_cfg(path), "t")
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and "kept the first answer of each" in err
    every = {q.text: q.answer for q in pool.train + pool.eval}
    assert len(every) == 12 and every["What is 3 + 1?"] == "4"


def test_empty_file_and_a_filter_that_keeps_nothing(tmp_path: Path) -> None:
    schema = pa.schema([("problem", pa.string()), ("answer", pa.string()),
                        ("level", pa.string())])
    empty = write(tmp_path / "empty.parquet", [], schema)
    message = data_error(parquet_cfg(empty, question_key="problem", answer_key="answer"))
    assert "task.path" in message and "the table is empty (0 rows)" in message
    assert "verl/OpenRLHF-layout parquet" in message
    jsonl = tmp_path / "empty.jsonl"
    jsonl.write_text("")
    with pytest.raises(ConfigError) as info:  # pyarrow cannot even read it: also one line
        load_pool(parquet_cfg(jsonl), "t")
    assert str(jsonl) in str(info.value) and "\n" not in str(info.value)
    rows = [{"problem": f"P{i}", "answer": str(i), "level": "Level 1"} for i in range(5)]
    some = write(tmp_path / "levels.parquet", rows)
    with pytest.raises(TaskDataError) as info:
        load_pool(parquet_cfg(some, question_key="problem", answer_key="answer",
                              where={"level": ["Level 5"]}), "t")
    message = str(info.value)
    assert "task.where" in message and str(some) in message and "0 of 5 rows" in message


def test_eval_file_problems_name_the_eval_field(tmp_path: Path) -> None:
    train = write(tmp_path / "train.parquet", verl_rows([str(i + 1) for i in range(10)]))
    schema = pa.schema([("problem", pa.string()), ("answer", pa.string())])
    empty = write(tmp_path / "eval_empty.parquet", [], schema)
    message = str(pytest.raises(TaskDataError, load_pool,
                                parquet_cfg(train, eval_path=str(empty)), "t").value)
    assert "task.eval_path" in message and str(empty) in message and "empty" in message
    # an eval file equal to the training file leaves nothing to train on
    message = data_error(parquet_cfg(train, eval_path=str(train)))
    assert "all 10 of its distinct questions are also in task.eval_path" in message
    # one question cannot be split into train and held-out
    single = write(tmp_path / "single.parquet", verl_rows(["1"]))
    message = data_error(parquet_cfg(single))
    assert "only 1 distinct question" in message and "task.eval_path" in message


def test_drop_bad_rows_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="task.drop_bad_rows"):
        parquet_cfg(tmp_path / "x.parquet", drop_bad_rows="no").validate()


# --- pool size -------------------------------------------------------------------------------


def test_pool_too_small_for_the_batch_or_without_held_out_questions(tmp_path: Path) -> None:
    path = write(tmp_path / "small.parquet", verl_rows([str(i + 1) for i in range(6)]))
    pool = load_pool(parquet_cfg(path), "small")
    assert len(pool.train) == 5
    check_pool_size(pool, 5, "train.batch_size")
    with pytest.raises(TaskDataError) as info:
        check_pool_size(pool, 8, "train.batch_size")
    message = str(info.value)
    assert "\n" not in message and "train.batch_size" in message and str(path) in message
    assert "has only 5 training questions" in message and "draws 8 distinct ones" in message
    assert "lower train.batch_size to 5 or less" in message
    no_eval = Pool(name="noeval", train=pool.train, eval=[], verifier=pool.verifier,
                   origin=str(path))
    with pytest.raises(TaskDataError) as info:
        check_pool_size(no_eval, 4, "train.batch_size")
    message = str(info.value)
    assert "held-out set is empty" in message and str(path) in message
    assert "task.eval_fraction" in message and "\n" not in message
    empty_set = Pool(name="sets", train=pool.train, eval=pool.eval, verifier=pool.verifier,
                     eval_sets={"gsm8k": []})
    with pytest.raises(TaskDataError, match="eval set 'gsm8k' is empty"):
        check_pool_size(empty_set, 4, "train.batch_size")


# --- verifier deadlines in any thread -------------------------------------------------------


class StubbornVerifier(Verifier):
    """A check that swallows the deadline interrupt and sleeps on: only a kill stops it."""

    def check(self, question: Question, completion: str) -> bool:
        if completion == "fast":
            return True
        while True:
            with contextlib.suppress(BaseException):  # the point: it ignores interrupts
                time.sleep(0.05)


class NanVerifier(Verifier):
    def check(self, question: Question, completion: str) -> float:  # type: ignore[override]
        return math.nan


def in_thread(fn):
    """``fn()`` run in a worker thread (as OpenRLHF calls rewards), with its wall time."""
    out: list = []

    def work() -> None:
        start = time.perf_counter()
        value = fn()
        out.append((value, time.perf_counter() - start))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=120)
    assert out, "the worker thread did not finish"
    return out[0]


def test_pathological_answers_time_out_in_a_worker_thread() -> None:
    deadline = 0.5
    verifier = MathVerifier("boxed", timeout=deadline)
    q = Question(qid="five", text="?", answer="5")
    try:
        # the first call starts the helper process (not counted against the deadline)
        assert in_thread(lambda: verifier(q, "\\boxed{5}"))[0] == 1.0
        nested = "\\frac{1}{" * 30 + "2" + "}" * 30
        for slow in ("\\boxed{9^{9^{9^{9}}}}", f"\\boxed{{{nested}}}", "\\boxed{9**9**9**9}"):
            reward, seconds = in_thread(lambda s=slow: verifier(q, s))
            assert reward == 0.0 and seconds < 3 * deadline, (slow, seconds)
        assert verifier.timeouts >= 1 and verifier.failures == verifier.timeouts
        # the helper still answers right afterwards
        assert in_thread(lambda: verifier(q, "\\boxed{\\frac{10}{2}}"))[0] == 1.0
    finally:
        verifier.close()


def test_a_check_that_ignores_its_deadline_is_killed_and_replaced() -> None:
    deadline = 0.4
    verifier = StubbornVerifier(timeout=deadline)
    q = Question(qid="q", text="?", answer="1")
    try:
        for _ in range(2):
            # (a fast call first: it waits for the helper to start, which is not check time)
            assert in_thread(lambda: verifier(q, "fast"))[0] == 1.0
            reward, seconds = in_thread(lambda: verifier(q, "slow"))
            assert reward == 0.0 and seconds < 3 * deadline
        assert verifier.timeouts == 2 and verifier.failures == 2
        assert in_thread(lambda: verifier(q, "fast"))[0] == 1.0  # a fresh helper again
    finally:
        verifier.close()


def test_scores_that_are_not_finite_count_as_zero_and_are_logged(caplog) -> None:
    q = Question(qid="q", text="?", answer="1", meta={"tier": "t", "dataset": "fake",
                                                      "entry": {}})
    gym = GymVerifier("first_line", {"t": lambda answer, entry: math.inf}, timeout=1.0)
    with caplog.at_level("WARNING", logger="harness.instrument.tasks"):
        assert gym(q, "1") == 0.0  # inf >= 1.0 would have scored it correct
        assert gym(q, "1") == 0.0
    assert gym.nonfinite == 2 and gym.failures == 2 and gym.timeouts == 0
    assert "not finite" in caplog.text and "fake scored inf" in caplog.text
    nan = NanVerifier(timeout=1.0)
    try:
        assert in_thread(lambda: nan(q, "1"))[0] == 0.0
        assert nan(q, "1") == 0.0
        assert nan.nonfinite == 2 and nan.failures == 2
    finally:
        nan.close()


def test_a_pool_loads_in_a_worker_thread(tmp_path: Path) -> None:
    # OpenRLHF's reward function builds the pool in a worker thread; the duplicate check runs
    # math-verify there under the same deadline
    answers = [str(i + 1) for i in range(10)] + ["\\dfrac{2}{4}"]
    answers[2] = "\\frac{1}{2}"
    questions = [f"What is {i} + 1?" for i in range(10)] + ["What is 2 + 1?"]
    path = write(tmp_path / "threaded.parquet", verl_rows(answers, questions))
    pool, _ = in_thread(lambda: load_pool(parquet_cfg(path, drop_bad_rows=False), "t"))
    assert len(pool.train) + len(pool.eval) == 10


class UnpicklableVerifier(Verifier):
    def __init__(self) -> None:
        super().__init__(timeout=1.0)
        self.rule = lambda completion: completion == "yes"  # a lambda cannot be pickled

    def check(self, question: Question, completion: str) -> bool:
        return self.rule(completion)


def test_a_verifier_that_cannot_be_pickled_still_scores_off_the_main_thread(caplog) -> None:
    verifier = UnpicklableVerifier()
    q = Question(qid="q", text="?", answer="yes")
    with caplog.at_level("WARNING", logger="harness.instrument.tasks"):
        assert in_thread(lambda: verifier(q, "yes"))[0] == 1.0
        assert in_thread(lambda: verifier(q, "no"))[0] == 0.0
    assert "cannot be pickled" in caplog.text and "without a deadline" in caplog.text
    assert caplog.text.count("cannot be pickled") == 1 and verifier.failures == 0


def test_eval_set_and_jsonl_rows_without_answers_name_their_file(tmp_path: Path, capsys) -> None:
    from harness.instrument.tasks.config import EvalSetConfig

    train = tmp_path / "train.jsonl"
    lines = [f'{{"problem": "P{i}?", "answer": "{i}"}}' for i in range(8)]
    train.write_text("\n".join([*lines, '{"problem": "P8?"}']) + "\n")  # a row without the key
    evals = write(tmp_path / "eval_set.parquet",
                  [{"problem": f"E{i}?", "answer": None if i == 1 else str(i)} for i in range(4)])
    cfg = TaskConfig(source="parquet", path=str(train), question_key="problem",
                     answer_key="answer", answer_format="boxed", drop_bad_rows=False,
                     eval_sets=[EvalSetConfig(name="e", path=str(evals))])
    message = data_error(cfg)
    assert "'task.path'" in message and "1 of its 9 rows have no answer in 'answer'" in message
    train.write_text("\n".join(lines) + "\n")  # the training file fixed: now the eval set
    with pytest.raises(TaskDataError) as info:
        load_pool(cfg, "t")
    message = str(info.value)
    assert "'task.eval_sets[0].path'" in message and str(evals) in message
    assert "1 of its 4 rows have no answer in 'answer'" in message and "\n" not in message
    cfg.drop_bad_rows = True
    pool = load_pool(cfg, "t")
    assert len(pool.eval_sets["e"]) == 3 and len(pool.train) == 8
    assert "task.eval_sets[0].path" in capsys.readouterr().err


# --- strategy parameters ----------------------------------------------------------------------


def strategy_error(config_dir: Path, *overrides: str, strategy: str = "dots") -> str:
    """The one-line message resolving the test pair with ``overrides`` stops with."""
    from harness import config

    with pytest.raises(ConfigError) as info:
        config.resolve("test-pair", strategy, overrides=list(overrides), config_dir=config_dir)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_strategy_params_are_type_checked_like_other_fields(config_dir: Path) -> None:
    assert "'strategy.mu' = 1.5 is invalid: expected an integer" in strategy_error(
        config_dir, "strategy.mu=1.5")
    assert "'strategy.mu' = True is invalid: expected an integer" in strategy_error(
        config_dir, "strategy.mu=true")
    assert "'strategy.alpha' = 'high' is invalid: expected a number" in strategy_error(
        config_dir, "strategy.alpha=high")
    assert "'strategy.label_memory' = 1 is invalid: expected true or false" in strategy_error(
        config_dir, "strategy.label_memory=1")
    # Optional[int]: null and an integer pass, a string does not
    assert "'strategy.references' = '64' is invalid: expected an integer" in strategy_error(
        config_dir, "strategy.references='64'")
    from harness import config

    cfg = config.resolve("test-pair", "dots", overrides=["strategy.references=null",
                                                         "strategy.alpha=1"],
                         config_dir=config_dir)
    assert cfg.strategy["alpha"] == 1  # the recorded config (and so the run id) is untouched
    # ranges are still the params' own validate()
    assert "'strategy.mu' = 0 is invalid" in strategy_error(config_dir, "strategy.mu=0")


def test_unknown_strategy_params_get_a_did_you_mean(config_dir: Path) -> None:
    message = strategy_error(config_dir, "strategy.muu=3")
    assert "'strategy.muu' = 3 is invalid: unknown key for 'dots'; did you mean 'mu'?" in message
    message = strategy_error(config_dir, "strategy.zzz=3", strategy="uniform")
    assert "unknown key for 'uniform'; it takes no keys" in message
    message = strategy_error(config_dir, "strategy.zzz=3", strategy="oracle")
    assert "allowed keys: candidates, samples, alpha, tau, mu" in message


# --- folders that cannot be written, disks that fill -----------------------------------------


def cli_error(capsys, *argv: str) -> str:
    """The one line `selbench ARGV` prints on stderr as it exits 2."""
    from harness import cli

    capsys.readouterr()
    assert cli.main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("selbench: error: ") and "\n" not in err, err
    return err


def pair_file(tmp_path: Path) -> Path:
    """The test pair as a user's own pair file, its model inlined (no configs/ tree needed)."""
    import yaml
    from conftest import TEST_MODEL, TEST_PAIR

    path = tmp_path / "my-pair.yaml"
    path.write_text(yaml.safe_dump({**TEST_PAIR, "model": {"name": "test-tiny", **TEST_MODEL}}))
    return path


def test_a_results_path_that_is_a_file_stops_every_command_before_work(
        tmp_path: Path, capsys) -> None:
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder\n")
    pair = str(pair_file(tmp_path))
    err = cli_error(capsys, "run", "--pair", pair, "--strategy", "uniform", "--results", str(taken))
    assert f"--results {taken}: this is a file, not a folder" in err
    assert "give a folder you can write to (--results DIR)" in err
    below = taken / "sub"
    err = cli_error(capsys, "run", "--pair", pair, "--strategy", "uniform", "--results", str(below))
    assert f"--results {below}: {taken} is a file, so no folder can be made below it" in err
    sweep_file = tmp_path / "one.yaml"
    sweep_file.write_text("pairs: [tiny600k-chainsum]\nstrategies: [uniform]\nseeds: [0]\n")
    err = cli_error(capsys, "sweep", str(sweep_file), "--results", str(taken), "--quiet")
    assert f"--results {taken}: this is a file" in err
    err = cli_error(capsys, "demo", "--results", str(taken))
    assert f"--results {taken}: this is a file" in err
    assert taken.read_text() == "not a folder\n"  # and nothing was written over it


def test_unwritable_results_report_and_sweep_folders(tmp_path: Path, capsys) -> None:
    import os

    from harness.runs.folders import FolderError, ensure_writable

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod does not stop this user from writing")
        with pytest.raises(FolderError) as info:
            ensure_writable(locked / "runs", "--results")
        message = str(info.value)
        assert f"--results {locked / 'runs'}: cannot write there (permission denied)" in message
        assert "give a folder you can write to (--results DIR)" in message
        err = cli_error(capsys, "run", "--pair", str(pair_file(tmp_path)), "--strategy",
                        "uniform", "--results", str(locked))
        assert f"--results {locked}: cannot write there" in err
        err = cli_error(capsys, "report", str(tmp_path), "--out", str(locked / "report"))
        assert "--out" in err and str(locked) in err
    finally:
        locked.chmod(0o700)


def test_a_report_folder_that_is_a_file(tmp_path: Path, capsys, config_dir: Path,
                                        built_test_model: Path) -> None:
    from harness import config
    from harness.executors import trainer

    cfg = config.resolve("test-pair", "uniform", overrides=["train.steps=2"],
                         config_dir=config_dir)
    trainer.run(cfg, tmp_path, progress=False)
    taken = tmp_path / "report.png"
    taken.write_bytes(b"")
    err = cli_error(capsys, "report", str(tmp_path), "--out", str(taken), "--reps", "10")
    assert f"--out {taken}: this is a file, not a folder; give a folder you can write to" in err


def _fail_writes_into(monkeypatch, name: str, when: Callable[[bytes], bool]) -> list[int]:
    """Make the low-level write into files named ``name`` run out of disk space once ``when``
    holds for the data: the first call writes 10 bytes (a short write, as a nearly full disk
    gives), the next raises ENOSPC. Returns the list of failures, to count them."""
    import errno
    import os

    real_write = os.write
    failures: list[int] = []

    def write(fd: int, data) -> int:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if Path(target).name == name and (failures or when(bytes(data))):
            if not failures:
                failures.append(0)
                return real_write(fd, bytes(data)[:10])
            failures.append(1)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    return failures


def test_a_disk_that_fills_mid_run_keeps_every_earlier_record(
        tmp_path: Path, config_dir: Path, built_test_model: Path, monkeypatch) -> None:
    from harness import config
    from harness.executors import trainer
    from harness.runs.records import RecordWriteError, RunRecord

    cfg = config.resolve("test-pair", "uniform", config_dir=config_dir)  # 4 steps, ckpt every 2
    run_dir = tmp_path / "runs" / cfg.run_id()
    rec = RunRecord(run_dir)
    # step 3's metrics hit the full disk
    failures = _fail_writes_into(monkeypatch, "metrics.csv", lambda data: data.startswith(b"3,"))
    with pytest.raises(RecordWriteError) as info:
        trainer.run(cfg, tmp_path, progress=False)
    message = str(info.value)
    assert failures and "\n" not in message
    assert f"could not write {rec.metrics_path} (no space left on device)" in message
    assert f"free space on the disk of {run_dir}" in message and "rerun the same command" in message
    text = rec.metrics_path.read_text()
    assert text.endswith("\n")  # the short write was cut back: no torn line for step 3
    assert sorted({s for s, _, _ in rec.read_metrics()}) == [1, 2]
    assert len(text.splitlines()) == 1 + len(rec.read_metrics())
    checkpoint = rec.checkpoint_dir / "state.pt"
    assert torch_step(checkpoint) == 2
    monkeypatch.undo()
    # then the checkpoint of step 4: the one of step 2 stays whole, no temporary file left
    before = checkpoint.read_bytes()
    _fail_writes_into(monkeypatch, "state.pt.tmp", lambda data: True)
    with pytest.raises(RecordWriteError) as info:
        trainer.run(cfg, tmp_path, progress=False)
    assert f"could not write {checkpoint} (no space left on device)" in str(info.value)
    assert checkpoint.read_bytes() == before and not list(rec.checkpoint_dir.glob("*.tmp"))
    monkeypatch.undo()
    # space freed: the same command resumes from step 2 and finishes
    _, summary = trainer.run(cfg, tmp_path, progress=False)
    assert summary["steps"] == 4
    assert [int(r["step"]) for r in rec.read_eval()] == [0, 2, 4]
    steps = [s for s, k, _ in rec.read_metrics() if k == "time/step"]
    assert steps == [1, 2, 3, 4]


def torch_step(path: Path) -> int:
    import torch

    return int(torch.load(path, weights_only=False)["step"])


# --- a run on a parquet pool: prompts that do not fit, data that changes under a run ----------


def parquet_pair(tmp_path: Path, data: Path, name: str = "pq-pair", **task) -> Path:
    """A pair file: the tiny test model (inlined, so the session's build is reused) on the
    parquet file ``data`` (columns question, answer)."""
    import yaml
    from conftest import TEST_MODEL, TEST_PAIR

    pair = {**TEST_PAIR, "model": {"name": "test-tiny", **TEST_MODEL},
            "task": {"source": "parquet", "path": str(data), "question_key": "question",
                     "answer_key": "answer", "answer_format": "first_line", "eval_fraction": 0.2,
                     **task}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(pair))
    return path


def sums(n: int, long_rows: tuple[int, ...] = ()) -> pd.DataFrame:
    """``n`` one-digit sums; the rows ``long_rows`` padded far past the test model's 128
    positions (each ' + 0' is several tokens of its arithmetic tokenizer)."""
    questions = [f"{i % 10} + {i // 10}" + (" + 0" * 60 if i in long_rows else "")
                 for i in range(n)]
    return pd.DataFrame({"question": questions, "answer": [str(i % 10 + i // 10) for i in range(n)]})


def test_prompts_longer_than_the_model_are_dropped_or_stop_the_run(
        tmp_path: Path, config_dir: Path, built_test_model: Path, capsys) -> None:
    from harness import config
    from harness.executors import trainer
    from harness.instrument import positions
    from harness.instrument.tasks import load_pool

    data = tmp_path / "some_long.parquet"
    sums(50, long_rows=(3, 17, 41)).to_parquet(data)
    cfg = config.resolve(str(parquet_pair(tmp_path, data)), "uniform")
    pool = load_pool(cfg.task, cfg.pair)
    capsys.readouterr()
    fitted = positions.fit_for_model(pool, cfg, progress=False)
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(data) in err
    assert "3 of its 50 questions are too long for the model" in err
    assert "plus train.max_new_tokens=4 needs up to" in err
    assert f"model 'test-tiny' has 128 positions ({built_test_model}/config.json)" in err
    assert "dropped them (task.drop_bad_rows: false makes this an error)" in err
    assert len(fitted.train) + len(fitted.eval) == 47
    assert all("+ 0 + 0" not in q.text for q in fitted.train + fitted.eval)
    # the trainer trains on exactly that pool
    run = trainer.Trainer(cfg, tmp_path / "probe", progress=False)
    assert [q.qid for q in run.pool.train] == [q.qid for q in fitted.train]
    assert max(len(t) for t in run.train_tokens) + cfg.train.max_new_tokens <= 128
    # the switch makes it an error, raised before the model loads
    strict = config.resolve(str(parquet_pair(tmp_path, data, drop_bad_rows=False)), "uniform")
    with pytest.raises(TaskDataError) as info:
        trainer.Trainer(strict, tmp_path / "strict", progress=False)
    message = str(info.value)
    assert "\n" not in message and str(data) in message
    assert "3 of its 50 questions are too long" in message
    assert "set task.drop_bad_rows: true to drop them, or shorten model.prompt_template" in message
    assert "model.tiny.max_position" in message
    # a completion budget that leaves no room, and a pool mostly too long
    message = str(pytest.raises(TaskDataError, positions.fit_for_model, pool, config.resolve(
        str(parquet_pair(tmp_path, data)), "uniform", overrides=["train.max_new_tokens=200"]),
        progress=False).value)
    assert "'train.max_new_tokens' = 200" in message and "no room for any prompt" in message
    mostly = tmp_path / "mostly_long.parquet"
    sums(20, long_rows=tuple(range(12))).to_parquet(mostly)
    cfg = config.resolve(str(parquet_pair(tmp_path, mostly)), "uniform")
    message = str(pytest.raises(TaskDataError, positions.fit_for_model,
                                load_pool(cfg.task, cfg.pair), cfg, progress=False).value)
    assert "12 of its 20 questions are too long" in message and "too many to drop" in message


def test_a_changed_data_file_refuses_the_resume(
        tmp_path: Path, built_test_model: Path, capsys) -> None:
    import json

    from harness import config
    from harness.executors import trainer
    from harness.runs.fingerprint import DataChangedError
    from harness.runs.records import RunRecord

    data = tmp_path / "pool.parquet"
    sums(60).to_parquet(data)
    original = data.read_bytes()
    pair = parquet_pair(tmp_path, data)
    cfg = config.resolve(str(pair), "uniform")
    results = tmp_path / "results"
    run_dir, summary = trainer.run(cfg, results, progress=False)
    rec = RunRecord(run_dir)
    recorded = json.loads((run_dir / "data.json").read_text())
    assert recorded["files"]["task.path"]["sha256"] == hashlib.sha256(original).hexdigest()
    assert recorded["packages"] == {"math-verify": summary["versions"]["math-verify"]}
    assert summary["data"]["files"] == recorded["files"]
    for name in ("torch", "transformers", "numpy", "pandas", "math-verify", "selbench"):
        assert name in summary["versions"]
    # killed after its last checkpoint, before the summary: a resume would pick it up
    rec.summary_path.unlink()
    frame = sums(60)
    frame.loc[5, "answer"] = "99"  # one answer fixed (or broken) under the same path
    frame.to_parquet(data)
    new_sha = hashlib.sha256(data.read_bytes()).hexdigest()
    with pytest.raises(DataChangedError) as info:
        trainer.run(cfg, results, progress=False)
    message = str(info.value)
    assert "\n" not in message and f"cannot resume {run_dir}" in message
    assert f"task.path {data} changed since this run started" in message
    assert f"sha256 {recorded['files']['task.path']['sha256'][:12]}..." in message
    assert f"{new_sha[:12]}... (" in message
    assert "restore the file, or give a new --results folder" in message
    # the CLI prints the same as one line
    err = cli_error(capsys, "run", "--pair", str(pair), "--strategy", "uniform", "--results",
                    str(results), "--quiet")
    assert f"task.path {data} changed since this run started" in err
    assert not rec.summary_path.exists() and rec.read_eval()  # nothing was lost
    # a new results folder runs on the new file; the old one resumes once the file is back
    fresh_dir, _ = trainer.run(cfg, tmp_path / "new-results", progress=False)
    assert json.loads((fresh_dir / "data.json").read_text())["files"]["task.path"]["sha256"] \
        == new_sha
    data.write_bytes(original)
    _, again = trainer.run(cfg, results, progress=False)
    assert again["steps"] == cfg.train.steps and rec.summary_path.exists()


def test_a_changed_package_or_pool_refuses_the_resume(tmp_path: Path) -> None:
    import json

    from harness.runs.fingerprint import DataChangedError, check, fingerprint, record

    data = write(tmp_path / "pool.parquet", verl_rows([str(i) for i in range(20)]))
    cfg = parquet_cfg(data)
    now = fingerprint(cfg, load_pool(cfg, "p"))
    check(tmp_path, now)  # nothing recorded yet: a new run
    record(tmp_path, now, "abc1234")
    check(tmp_path, now)
    then = json.loads((tmp_path / "data.json").read_text())
    (tmp_path / "data.json").write_text(json.dumps({**then, "packages": {"math-verify": "0.1.0"}}))
    message = str(pytest.raises(DataChangedError, check, tmp_path, now).value)
    assert "built with math-verify 0.1.0" in message and "install math-verify==0.1.0" in message
    (tmp_path / "data.json").write_text(json.dumps({**then, "pool_sha256": "0" * 64}))
    message = str(pytest.raises(DataChangedError, check, tmp_path, now).value)
    assert "the pool built now differs" in message and "(abc1234)" in message
    # the same bytes elsewhere (the project moved) are the same data
    moved = {**then, "files": {"task.path": {**then["files"]["task.path"], "path": "/old/x"}}}
    (tmp_path / "data.json").write_text(json.dumps(moved))
    check(tmp_path, now)
    # reasoning-gym pools record the generator's version
    gym = fingerprint(TaskConfig(n_train=8, n_eval=4), load_pool(TaskConfig(n_train=8, n_eval=4), "g"))
    assert list(gym["packages"]) == ["reasoning-gym"] and gym["files"] == {}


def test_a_changed_predictor_refuses_the_resume(tmp_path: Path, config_dir: Path) -> None:
    """The DOTS predictor lives in a per-machine cache and is refitted on a fresh machine: the
    run records its weights' hash and a resume with other weights stops with one line."""
    import json

    from harness import config
    from harness.predictor.resources import artifact_dir, predictor_dir
    from harness.runs.fingerprint import DataChangedError, check, fingerprint, record

    dots = config.resolve("test-pair", "dots", config_dir=config_dir)
    assert predictor_dir(dots) == artifact_dir(dots)
    assert predictor_dir(config.resolve("test-pair", "uniform", config_dir=config_dir)) is None

    def artifact(name: str, digest: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "manifest.json").write_text(json.dumps({"weights_sha256": digest}))
        return d

    first, other = artifact("first", "a" * 64), artifact("refit", "b" * 64)
    same = artifact("copy", "a" * 64)
    cfg = TaskConfig(n_train=8, n_eval=4)
    pool = load_pool(cfg, "g")
    run = tmp_path / "run"
    run.mkdir()
    now = fingerprint(cfg, pool, first)
    assert now["predictor"] == {"path": str(first), "weights_sha256": "a" * 64}
    record(run, now, "abc1234")
    check(run, fingerprint(cfg, pool, same))  # the same weights elsewhere are the same predictor
    message = str(pytest.raises(DataChangedError, check, run, fingerprint(cfg, pool, other)).value)
    assert "\n" not in message and "the difficulty predictor changed since this run started" in message
    assert f"aaaaaaaaaaaa... then ({first}), bbbbbbbbbbbb... now ({other})" in message
    assert "put that artifact back" in message and "give a new --results folder" in message
    message = str(pytest.raises(DataChangedError, check, run,
                                fingerprint(cfg, pool, tmp_path / "absent")).value)
    assert "none found now" in message
    # a run recorded before predictors were fingerprinted (or one without a predictor) resumes
    old = tmp_path / "old"
    old.mkdir()
    record(old, fingerprint(cfg, pool), "abc1234")
    assert "predictor" not in json.loads((old / "data.json").read_text())
    check(old, fingerprint(cfg, pool, other))


# --- other careless inputs: config files and command-line values ----------------------------


def test_careless_pair_and_strategy_files_are_one_line(tmp_path: Path, capsys) -> None:
    import shutil

    cases = {
        "a_list.yaml": ("- model: tiny600k-arith\n", "a config file must be a mapping"),
        "empty.yaml": ("", "the pair file is empty; a pair names its model and its task"),
        "broken.yaml": ("task: {source: [\n",
                        # the parser's own words after the position vary between PyYAML versions
                        "not valid YAML at line 2, column 1: "),
        "typo.yaml": ("modle: tiny600k-arith\n", "typo.yaml: modle' = 'tiny600k-arith' is "
                      "invalid: unknown key; did you mean 'model'?"),
        "no_model.yaml": ("description: forgot the model\n",
                          "no_model.yaml: model' = None is invalid: a pair names its model"),
        "task_list.yaml": ("model: tiny600k-arith\ntask: [1]\n",
                           "'task' = [1] is invalid: expected a mapping of TaskConfig fields"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        err = cli_error(capsys, "run", "--pair", str(path), "--strategy", "uniform")
        assert expected in err, (name, err)
    # a strategy file with a misspelt section or param names its file or the strategy
    from conftest import TEST_PAIR

    root = tmp_path / "configs"
    shutil.copytree(Path(__file__).resolve().parent.parent / "configs" / "models", root / "models")
    (root / "pairs").mkdir()
    (root / "strategies").mkdir()
    (root / "pairs" / "p.yaml").write_text(f"model: tiny600k-arith\ntask: {TEST_PAIR['task']}\n")
    from harness import config

    (root / "strategies" / "dots.yaml").write_text("replya: {enabled: true}\n")
    with pytest.raises(ConfigError) as info:
        config.resolve("p", "dots", config_dir=root)
    assert f"'{root / 'strategies' / 'dots.yaml'}: replya'" in str(info.value)
    assert "did you mean 'replay'?" in str(info.value)
    (root / "strategies" / "dots.yaml").write_text("strategy: {muu: 2}\n")
    with pytest.raises(ConfigError, match="'strategy.muu' = 2 is invalid: unknown key for 'dots'"):
        config.resolve("p", "dots", config_dir=root)
    (root / "strategies" / "dots.yaml").write_text("strategy: dots\n")
    with pytest.raises(ConfigError, match="dots.yaml: strategy' = 'dots' is invalid: a mapping"):
        config.resolve("p", "dots", config_dir=root)


def test_careless_command_line_values_are_one_line(tmp_path: Path, capsys) -> None:
    from harness import cli

    pair = str(pair_file(tmp_path))

    def usage_error(*argv: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli.main(list(argv))
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "usage:" not in err, err  # one line, not argparse's block
        return err

    err = usage_error("run", "--pair", pair, "--strategy", "uniform", "--seed", "-1")
    assert "argument --seed: expected an integer >= 0, got '-1'" in err
    assert "(see `selbench run --help`)" in err
    assert "--steps: expected an integer >= 1, got '0'" in usage_error(
        "run", "--pair", pair, "--strategy", "uniform", "--steps", "0")
    assert "--steps: expected an integer >= 1, got 'ten'" in usage_error(
        "run", "--pair", pair, "--strategy", "uniform", "--steps", "ten")
    assert "--workers: expected an integer >= 1, got '0'" in usage_error(
        "sweep", "demo", "--workers", "0")
    assert "--seeds: expected an integer >= 0, got '-2'" in usage_error(
        "suite", "check", "--seeds", "0", "-2")
    assert "--questions: expected an integer >= 1" in usage_error(
        "probe", "--pair", pair, "--questions", "0")
    assert "the following arguments are required: --pair" in usage_error("run")
    # the same values reaching the config another way
    assert "'seed' = -1 is invalid: a non-negative integer" in cli_error(
        capsys, "run", "--pair", pair, "--strategy", "uniform", "--set", "seed=-1")
    assert "'train.steps' = 0 is invalid: must be a positive integer" in cli_error(
        capsys, "run", "--pair", pair, "--strategy", "uniform", "--set", "train.steps=0")
    # a suite check of a pair that does not resolve
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n")
    err = cli_error(capsys, "suite", "check", "--pair", str(bad), "--results",
                    str(tmp_path / "sc"))
    assert "a config file must be a mapping" in err
