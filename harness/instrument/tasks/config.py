"""The ``task`` config section: where questions come from and how answers are checked."""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any

from harness.config.base import ConfigError, check, opt
from harness.instrument.tasks import gymcache

SOURCES = ("reasoning_gym", "parquet")
ANSWER_FORMATS = ("first_line", "boxed", "last_number", "answer_line")
# How the reference answer is read out of its column: as is, the last \boxed{} of a worked
# solution (MATH), or the text after the last '####' (GSM8K).
REFERENCE_FORMATS = ("plain", "boxed", "after_hashes")
TABLE_HELP = (
    "a local .parquet/.jsonl/.json file (relative paths are taken from the project folder) or a "
    "Hugging Face dataset name such as 'openai/gsm8k'"
)
TIER_KEYS = ("name", "dataset", "weight", "params")
# Set by the pool loader (from task.seed and the pool size), never by tier params.
RESERVED_PARAMS = ("seed", "size")
_TIER_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def _default_tiers() -> list[dict[str, Any]]:
    # One-line chain sums at three difficulties: short numeric answers, big enough spaces
    # (thousands of distinct questions per tier) for the default pool size.
    return [
        {
            "name": "easy",
            "dataset": "chain_sum",
            "weight": 1.0,
            "params": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2},
        },
        {
            "name": "medium",
            "dataset": "chain_sum",
            "weight": 1.0,
            "params": {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 2},
        },
        {
            "name": "hard",
            "dataset": "chain_sum",
            "weight": 1.0,
            "params": {"min_terms": 4, "max_terms": 5, "min_digits": 2, "max_digits": 2},
        },
    ]


@dataclass
class EvalSetConfig:
    """One named held-out set (e.g. MATH500); a run's accuracy is the mean over its sets."""

    name: str = opt("", help="short name; per-set accuracies are logged as eval/<name>")
    path: str = opt("", help=f"where the set is: {TABLE_HELP}")
    split: str = opt("test", help="dataset split (Hugging Face names only)")
    subset: str | None = opt(None, help="dataset config name, e.g. 'main' for openai/gsm8k")
    question_key: str = opt("problem", help="dotted path to the question text")
    answer_key: str = opt("answer", help="dotted path to the reference answer (a list is joined)")
    reference_format: str = opt("plain", help=f"how the reference is read: one of {REFERENCE_FORMATS}")
    where: dict[str, Any] = opt(help="keep rows whose column (dotted path) has one of the listed "
                                "values, e.g. {level: ['Level 3', 'Level 4']}", factory=dict)
    max_rows: int | None = opt(None, help="keep the first N distinct questions (null: all)")

    def validate(self, prefix: str) -> None:
        check(isinstance(self.name, str) and bool(_TIER_NAME.match(self.name)), f"{prefix}.name",
              self.name, "a non-empty name of letters, digits, '_' or '.'")
        validate_table_fields(self, prefix)


@dataclass
class TaskConfig:
    """Question pool and verifier settings."""

    source: str = opt(
        "reasoning_gym",
        help="where questions come from: 'reasoning_gym' (generated offline from tiers) or "
        "'parquet' (a verl/OpenRLHF-layout file such as the DeepScaleR subset)",
    )
    # --- reasoning_gym ---
    tiers: list[dict[str, Any]] = opt(
        help="reasoning_gym only: difficulty tiers mixed by weight, each "
        "{name, dataset, weight > 0, params}; params go to reasoning_gym.create_dataset "
        "(e.g. min_terms/max_terms/min_digits/max_digits for chain_sum)",
        factory=_default_tiers,
    )
    n_train: int = opt(2048, help="reasoning_gym only: number of distinct training questions")
    n_eval: int = opt(512, help="reasoning_gym only: number of held-out questions (disjoint)")
    seed: int = opt(
        0,
        help="generation seed (reasoning_gym) or subsample/hold-out seed (parquet); same seed "
        "gives the same questions and ids",
    )
    # --- parquet ---
    path: str = opt("", help="parquet only: the training file (verl/OpenRLHF layout)")
    eval_path: str | None = opt(
        None,
        help="parquet only: a separate eval file; if null, hold out eval_fraction of `path`",
    )
    eval_fraction: float = opt(
        0.1, help="parquet only: share of rows held out for eval when eval_path is null"
    )
    question_key: str = opt(
        "extra_info.question",
        help="parquet only: dotted path to the plain question text (column.field...)",
    )
    answer_key: str = opt(
        "reward_model.ground_truth", help="parquet only: dotted path to the reference answer"
    )
    max_rows: int | None = opt(
        None,
        help="parquet only: keep at most this many distinct questions of `path` (seeded "
        "subsample, before the eval hold-out); null keeps all",
    )
    split: str = opt("train", help="parquet only: dataset split of `path` (Hugging Face names only)")
    subset: str | None = opt(None, help="parquet only: dataset config name of `path` (Hugging Face)")
    reference_format: str = opt(
        "plain", help=f"parquet only: how the reference is read from answer_key: {REFERENCE_FORMATS}"
    )
    where: dict[str, Any] = opt(
        help="parquet only: keep rows whose column (dotted path) has one of the listed values, "
        "e.g. {level: ['Level 3', 'Level 4', 'Level 5']}",
        factory=dict,
    )
    drop_bad_rows: bool = opt(
        True,
        help="drop rows without a question or answer (null, NaN, empty; at most half of a "
        "file) and later copies of a repeated question whose answer differs (parquet), and "
        "questions whose prompt plus train.max_new_tokens exceeds the model's positions (any "
        "source; at most half of the pool), with a count on stderr; false makes any such row "
        "an error",
    )
    eval_sets: list[EvalSetConfig] = opt(
        help="parquet only: named held-out sets (accuracy = mean over the sets); replaces the "
        "hold-out of `path` and eval_path; training questions found in a set are dropped",
        factory=list,
    )
    # --- checking ---
    answer_format: str = opt(
        "first_line",
        help="how the answer is read from a completion: 'first_line' (text up to the first "
        "newline), 'boxed' (last \\boxed{...}), 'last_number' or 'answer_line' (after the last "
        "'Answer:', as worked solutions end)",
    )
    verifier_timeout: float = opt(
        2.0, help="seconds one answer check may take before it scores 0.0 (counted as timeout)"
    )

    def validate(self, prefix: str = "task") -> None:
        """Raise :class:`ConfigError` naming the first bad field."""
        check(self.source in SOURCES, f"{prefix}.source", self.source, f"one of {SOURCES}")
        check(
            self.answer_format in ANSWER_FORMATS,
            f"{prefix}.answer_format",
            self.answer_format,
            f"one of {ANSWER_FORMATS}",
        )
        check(
            _is_number(self.verifier_timeout) and self.verifier_timeout > 0,
            f"{prefix}.verifier_timeout",
            self.verifier_timeout,
            "a number of seconds > 0",
        )
        check(_is_int(self.seed), f"{prefix}.seed", self.seed, "an integer")
        for key in ("n_train", "n_eval"):
            value = getattr(self, key)
            check(_is_int(value) and value > 0, f"{prefix}.{key}", value, "an integer > 0")
        if self.source == "reasoning_gym":
            validate_tiers(self.tiers, f"{prefix}.tiers")
            check(not self.eval_sets, f"{prefix}.eval_sets", self.eval_sets,
                  "named eval sets need source 'parquet'")
        else:
            self._validate_parquet(prefix)

    def _validate_parquet(self, prefix: str) -> None:
        check(
            isinstance(self.path, str) and self.path != "",
            f"{prefix}.path",
            self.path,
            f"{TABLE_HELP} (required when source is 'parquet')",
        )
        validate_table_fields(self, prefix)
        check(isinstance(self.drop_bad_rows, bool), f"{prefix}.drop_bad_rows",
              self.drop_bad_rows, "true or false")
        for i, es in enumerate(self.eval_sets):
            es.validate(f"{prefix}.eval_sets[{i}]")
            earlier = [e.name for e in self.eval_sets[:i]]
            check(es.name not in earlier, f"{prefix}.eval_sets[{i}].name", es.name,
                  "eval set names must be unique")
        check(not (self.eval_sets and self.eval_path is not None), f"{prefix}.eval_path",
              self.eval_path, "null when eval_sets are given (use one or the other)")
        check(
            self.eval_path is None or (isinstance(self.eval_path, str) and self.eval_path != ""),
            f"{prefix}.eval_path",
            self.eval_path,
            "null or the path of a parquet file",
        )
        check(
            _is_number(self.eval_fraction) and 0 < self.eval_fraction < 1,
            f"{prefix}.eval_fraction",
            self.eval_fraction,
            "a fraction strictly between 0 and 1",
        )


def validate_table_fields(cfg: Any, prefix: str) -> None:
    """Checks shared by the training table and eval sets (path, keys, split, filters)."""
    check(isinstance(cfg.path, str) and cfg.path != "", f"{prefix}.path", cfg.path, TABLE_HELP)
    check(isinstance(cfg.split, str) and cfg.split != "", f"{prefix}.split", cfg.split,
          "a split name such as 'train' or 'test'")
    check(cfg.subset is None or (isinstance(cfg.subset, str) and cfg.subset != ""),
          f"{prefix}.subset", cfg.subset, "null or a dataset config name")
    check(cfg.reference_format in REFERENCE_FORMATS, f"{prefix}.reference_format",
          cfg.reference_format, f"one of {REFERENCE_FORMATS}")
    for key in ("question_key", "answer_key"):
        value = getattr(cfg, key)
        check(isinstance(value, str) and value.strip(".") != "" and ".." not in value,
              f"{prefix}.{key}", value, "a dotted path such as 'extra_info.question'")
    check(isinstance(cfg.where, dict), f"{prefix}.where", cfg.where,
          "a mapping {column: [allowed values]}")
    for column, allowed in cfg.where.items():
        check(isinstance(allowed, list) and len(allowed) > 0, f"{prefix}.where.{column}", allowed,
              "a non-empty list of allowed values")
    check(cfg.max_rows is None or (_is_int(cfg.max_rows) and cfg.max_rows > 0),
          f"{prefix}.max_rows", cfg.max_rows, "null or an integer > 0")


def validate_tiers(tiers: Any, field_name: str) -> None:
    """Check each tier's keys, dataset name and params (by building one sample question)."""
    check(
        isinstance(tiers, list) and len(tiers) > 0,
        field_name,
        tiers,
        "a non-empty list of {name, dataset, weight, params}",
    )
    names: set[str] = set()
    for i, tier in enumerate(tiers):
        here = f"{field_name}[{i}]"
        check(isinstance(tier, dict), here, tier, "a mapping {name, dataset, weight, params}")
        for key in tier:
            check(
                key in TIER_KEYS,
                f"{here}.{key}",
                tier[key],
                f"unknown tier key; allowed: {TIER_KEYS}",
            )
        name = tier.get("name")
        check(
            isinstance(name, str) and bool(_TIER_NAME.match(name)),
            f"{here}.name",
            name,
            "a non-empty name of letters, digits, '_' or '.' (it becomes part of question ids)",
        )
        check(name not in names, f"{here}.name", name, "tier names must be unique")
        names.add(name)
        weight = tier.get("weight", 1.0)
        check(_is_number(weight) and weight > 0, f"{here}.weight", weight, "a number > 0")
        dataset, params = tier.get("dataset"), tier.get("params", {})
        if isinstance(dataset, str) and isinstance(params, dict) and gymcache.passed(dataset, params):
            continue  # checked before under this reasoning-gym: skip its one-second import
        _validate_dataset(dataset, f"{here}.dataset")
        _validate_params(tier["dataset"], params, f"{here}.params")
        gymcache.remember(dataset, params)


def gym_datasets() -> list[str]:
    """Names of all registered reasoning-gym datasets."""
    from reasoning_gym.factory import DATASETS  # lazy: importing reasoning_gym takes ~1.5 s

    return sorted(DATASETS)


def _validate_dataset(dataset: Any, field_name: str) -> None:
    known = gym_datasets()
    if isinstance(dataset, str) and dataset in known:
        return
    close = difflib.get_close_matches(str(dataset), known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    examples = ", ".join(["chain_sum", "basic_arithmetic", "simple_equations", "gcd", "lcm"])
    raise ConfigError(
        field_name,
        dataset,
        f"unknown reasoning-gym dataset; {hint}e.g. {examples} ({len(known)} datasets in all)",
    )


def _validate_params(dataset: str, params: Any, field_name: str) -> None:
    from reasoning_gym import create_dataset
    from reasoning_gym.factory import DATASETS

    check(isinstance(params, dict), field_name, params, "a mapping of dataset config kwargs")
    allowed = [
        f.name for f in dataclasses.fields(DATASETS[dataset][1]) if f.name not in RESERVED_PARAMS
    ]
    for key in params:
        if key in RESERVED_PARAMS:
            raise ConfigError(
                f"{field_name}.{key}", params[key], "set by the pool loader from task.seed/n_train"
            )
        check(key in allowed, f"{field_name}.{key}", params[key], f"{dataset} params are {allowed}")
    try:
        # Building one item catches bad combinations the dataset's own validate() misses
        # (e.g. simple_equations operators vs operators_weights).
        create_dataset(dataset, size=1, seed=0, **params)[0]
    except Exception as err:  # reasoning-gym validates with assert and raises assorted errors
        reason = str(err) or type(err).__name__
        raise ConfigError(field_name, params, f"rejected by {dataset}: {reason}") from err


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
