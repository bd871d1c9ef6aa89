"""The prompt source OpenRLHF's sample generator pulls from: every prompt is the strategy's choice.

OpenRLHF's ``SamplesGenerator`` draws prompts one dataloader item at a time
(``_collect_prompt_batch``: ``next(iterator)`` giving ``(datasources, prompts, labels, images)``),
first the step's batch, then one more for every group dynamic filtering drops. The selbench
controller hands it a :class:`PromptSource` instead of a dataloader iterator: the first items are
the indices the strategy selected; a refill asks the strategy again (``refill(1)``), so refills
are the strategy's choices too. Every served index is recorded, in order, so the controller can
check that what was rolled out is exactly what was chosen. Pure Python.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from harness.executors.openrlhf.reward import eval_label, train_label

DATASOURCE = "selbench"


class PromptSource:
    """An iterator of OpenRLHF dataloader items over chosen pool indices (batch size 1 each)."""

    def __init__(self, indices: Iterable[int], render: Callable[[int], str],
                 refill: Callable[[int], Sequence[int]] | None = None,
                 label: Callable[[int], str] = train_label) -> None:
        self._queue = deque(int(i) for i in indices)
        self._render = render
        self._refill = refill
        self._label = label
        self.served: list[int] = []  # every index handed to OpenRLHF, in order
        self.refills = 0

    def __iter__(self) -> PromptSource:
        return self

    def __next__(self) -> tuple[list[str], list[str], list[str], list[Any]]:
        if not self._queue and self._refill is not None:
            more = list(self._refill(1))
            self.refills += len(more)
            self._queue.extend(int(i) for i in more)
        if not self._queue:
            raise StopIteration
        index = self._queue.popleft()
        self.served.append(index)
        return [DATASOURCE], [self._render(index)], [self._label(index)], [None]


def eval_source(n_questions: int, render: Callable[[int], str]) -> PromptSource:
    """Every evaluation question once, labelled by position (no refills)."""
    return PromptSource(range(n_questions), render, refill=None, label=eval_label)
