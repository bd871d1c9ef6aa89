"""Question pools generated offline with reasoning-gym, mixed from difficulty tiers."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from typing import Any

from harness.config.base import ConfigError
from harness.instrument.tasks.base import Pool, Question
from harness.instrument.tasks.config import TaskConfig
from harness.instrument.tasks.extract import extract_answer
from harness.instrument.tasks.verifier import NonFiniteScore, Verifier

ScoreFn = Callable[[str | None, dict[str, Any]], float]

# Draws allowed per wanted question before a tier counts as exhausted (its space of distinct
# questions is smaller than what the config asks for).
_DRAWS_PER_QUESTION = 20
_EXTRA_DRAWS = 1000


class GymVerifier(Verifier):
    """reasoning-gym's own ``score_answer``, made binary: 1.0 only for a full score.

    reasoning-gym gives partial credit (e.g. the answer is a substring of the completion);
    GRPO here wants a clean 1/0 signal, so anything below 1.0 is wrong.
    """

    def __init__(
        self, answer_format: str, scorers: dict[str, ScoreFn], timeout: float | None = 2.0
    ) -> None:
        super().__init__(timeout)
        self.answer_format = answer_format
        self.scorers = scorers  # tier name -> score_answer of that tier's dataset object
        import reasoning_gym  # noqa: F401 - imported here, outside any check's deadline

    def check(self, question: Question, completion: str) -> bool:
        answer = extract_answer(completion, self.answer_format)
        if answer is None:
            return False
        entry = question.meta["entry"]
        score = float(self._scorer(question)(answer, entry))
        if not math.isfinite(score):  # inf >= 1.0 would pass: 0.0, counted and logged
            raise NonFiniteScore(f"{question.meta.get('dataset', '?')} scored {score}")
        return score >= 1.0

    def _scorer(self, question: Question) -> ScoreFn:
        scorer = self.scorers.get(question.meta.get("tier", ""))
        if scorer is None:
            # A question from elsewhere (another pool, a saved record): score by its dataset.
            # (reasoning_gym is imported already: never import under a deadline.)
            from reasoning_gym import get_score_answer_fn

            dataset = question.meta["entry"]["metadata"]["source_dataset"]
            scorer = self.scorers[f"dataset:{dataset}"] = get_score_answer_fn(dataset)
        return scorer


def load_gym_pool(cfg: TaskConfig, name: str) -> Pool:
    """Generate ``cfg.n_train`` + ``cfg.n_eval`` distinct questions from ``cfg.tiers``.

    Each tier contributes in proportion to its weight, to train and to eval alike (the split is
    stratified by tier after de-duplication). Everything is a function of ``cfg``: the same
    config and seed give the same questions, ids and order.
    """
    cfg.validate()
    from reasoning_gym import create_dataset

    weights = [float(t.get("weight", 1.0)) for t in cfg.tiers]
    train_counts = apportion(cfg.n_train, weights)
    eval_counts = apportion(cfg.n_eval, weights)
    seen: set[str] = set()  # shared by all tiers: a text generated twice is kept once
    train: list[Question] = []
    evals: list[Question] = []
    scorers: dict[str, ScoreFn] = {}
    for i, tier in enumerate(cfg.tiers):
        seed = tier_seed(cfg.seed, tier["name"], tier["dataset"])
        wanted = train_counts[i] + eval_counts[i]
        draws = _DRAWS_PER_QUESTION * wanted + _EXTRA_DRAWS
        dataset = create_dataset(tier["dataset"], size=draws, seed=seed, **tier.get("params", {}))
        scorers[tier["name"]] = dataset.score_answer
        questions = _distinct_questions(dataset, tier, name, wanted, seen, f"task.tiers[{i}]")
        random.Random(seed).shuffle(questions)
        evals += questions[: eval_counts[i]]
        train += questions[eval_counts[i] :]
    # Interleave tiers so any prefix of train/eval has the configured mix.
    random.Random(cfg.seed).shuffle(train)
    random.Random(cfg.seed + 1).shuffle(evals)
    verifier = GymVerifier(cfg.answer_format, scorers, timeout=cfg.verifier_timeout)
    origin = "reasoning-gym tiers " + ", ".join(t["name"] for t in cfg.tiers)
    return Pool(name=name, train=train, eval=evals, verifier=verifier, origin=origin)


def tier_seed(seed: int, tier_name: str, dataset: str) -> int:
    """A per-tier generation seed, far from the others.

    reasoning-gym seeds item ``i`` with ``seed + i``, so tiers seeded ``s`` and ``s + 1`` would
    replay each other's random streams shifted by one; hashing keeps them unrelated.
    """
    digest = hashlib.sha256(f"{seed}/{tier_name}/{dataset}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder)."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _distinct_questions(
    dataset: Any, tier: dict[str, Any], pool: str, wanted: int, seen: set[str], field: str
) -> list[Question]:
    questions: list[Question] = []
    for index in range(len(dataset)):
        if len(questions) == wanted:
            return questions
        entry = dataset[index]
        if entry["question"] in seen:
            continue
        seen.add(entry["question"])
        questions.append(_to_question(entry, tier, pool, index))
    if len(questions) == wanted:
        return questions
    raise ConfigError(
        field,
        tier["name"],
        f"{tier['dataset']} with params {tier.get('params', {})} gave only {len(questions)} "
        f"new distinct questions in {len(dataset)} draws but {wanted} are needed; widen the "
        "params, lower the tier weight or lower task.n_train/task.n_eval",
    )


def _to_question(entry: dict[str, Any], tier: dict[str, Any], pool: str, index: int) -> Question:
    # A JSON round trip makes meta serialisable (tuples become lists) and lets the verifier
    # score exactly what a saved record would hold.
    stored = json.loads(
        json.dumps(
            {
                "question": entry["question"],
                "answer": entry["answer"],
                "metadata": entry["metadata"],
            },
            default=str,
        )
    )
    meta = {
        "tier": tier["name"],
        "dataset": tier["dataset"],
        "params": tier.get("params", {}),
        "index": index,
        "entry": stored,
    }
    return Question(
        qid=f"{pool}-{tier['name']}-{index}",
        text=entry["question"],
        answer=str(entry["answer"]),
        meta=meta,
    )
