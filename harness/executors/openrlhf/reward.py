"""Our verifier as OpenRLHF's reward function: ``reward_func(queries, prompts, labels)``.

OpenRLHF loads a ``.py`` file given as ``--reward.remote_url`` inside every vLLM engine actor and
calls its ``reward_func`` once per sample, with the decoded prompt + response (special tokens
kept), the prompt text and the label. selbench writes a two-line file per run that builds the
function below from the run's resolved config, so the engines score with exactly the verifier of
the in-process executor: same pool, same answer extraction, same timeouts.

Labels are selbench's: JSON ``{"i": pool index}`` for training questions and ``{"e": k}`` for the
k-th evaluation question, so the reward never depends on text matching.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REWARD_FILE = '''"""selbench's verifier for OpenRLHF (--reward.remote_url); generated, do not edit."""
from harness.executors.openrlhf.reward import make_reward_func

reward_func = make_reward_func({config!r}, {model!r})
'''


def train_label(index: int) -> str:
    return json.dumps({"i": int(index)})


def eval_label(position: int) -> str:
    return json.dumps({"e": int(position)})


def parse_label(label: str) -> tuple[str, int]:
    """("train", pool index) or ("eval", eval position) from a selbench label."""
    data = json.loads(label)
    if "i" in data:
        return "train", int(data["i"])
    return "eval", int(data["e"])


def write_reward_file(path: Path, config_path: Path, model_path: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REWARD_FILE.format(config=str(config_path), model=model_path), encoding="utf-8")
    return path


def response_text(query: str, prompt: str, special_tokens: Sequence[str]) -> str:
    """The response as the in-process executor sees it: after the prompt, special tokens removed.

    OpenRLHF decodes prompt + response with ``skip_special_tokens=False``; the in-process
    executor decodes the response alone with ``skip_special_tokens=True``.
    """
    text = query[len(prompt):] if query.startswith(prompt) else query
    for token in sorted(special_tokens, key=len, reverse=True):
        if token:
            text = text.replace(token, "")
    return text


def make_reward_func(config_path: str, model_path: str) -> Callable[..., dict[str, Any]]:
    """Build ``reward_func`` for a run; the pool and tokenizer load on first call (per engine)."""
    state: dict[str, Any] = {}
    lock = threading.Lock()

    def setup() -> None:
        # OpenRLHF calls reward_func from many threads at once (asyncio.to_thread): one loads
        # the pool, the others wait (concurrent first imports see half-initialised modules)
        with lock:
            if state:
                return
            from harness.config import load_resolved
            from harness.instrument.tasks import load_pool

            cfg = load_resolved(Path(config_path))
            pool = load_pool(cfg.task, cfg.pair)
            eval_qs = pool.eval[: cfg.eval.max_questions] if cfg.eval.max_questions else pool.eval
            state.update(pool=pool, eval=eval_qs, special=_special_tokens(model_path))

    def reward_func(queries: Sequence[str], prompts: Sequence[str],
                    labels: Sequence[str]) -> dict[str, Any]:
        import torch

        if not state:
            setup()
        pool = state["pool"]
        rewards = []
        for query, prompt, label in zip(queries, prompts, labels, strict=True):
            kind, k = parse_label(label)
            question = pool.train[k] if kind == "train" else state["eval"][k]
            rewards.append(pool.verifier(question, response_text(query, prompt, state["special"])))
        values = torch.tensor(rewards, dtype=torch.float32)
        # no extra_logs: every sample's info must carry the same keys as a replayed one
        return {"rewards": values, "scores": values, "extra_logs": {}}

    return reward_func


def _special_tokens(model_path: str) -> list[str]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    return list(tokenizer.all_special_tokens)
