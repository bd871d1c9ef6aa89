"""The candidate order the peer baselines share: a shuffled pass over the pool per epoch.

DAPO, GRESO and MoPPS all take their candidates from a shuffled dataloader (verl's
``RandomSampler``) and differ only in what they do with them; drawing through one stream keeps
that part identical across them and identical to the uniform baseline's order.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np


class EpochStream:
    """Pool indices in a random order without replacement, reshuffled when a pass ends.

    The generator belongs to the strategy (which checkpoints it); the stream keeps its place.
    """

    def __init__(self, pool_size: int, rng: np.random.Generator) -> None:
        self.pool_size = pool_size
        self.rng = rng
        self.order: list[int] = []
        self.cursor = 0
        self.epoch = 0  # passes started so far: 1 during the first pass over the pool

    def draw(self, k: int, exclude: Collection[int] = ()) -> list[int]:
        """The next ``k`` distinct indices not in ``exclude`` (passed-over ones are consumed)."""
        skip = set(exclude)
        if k > self.pool_size - len(skip):
            raise ValueError(f"cannot draw {k} distinct prompts from a pool of {self.pool_size} "
                             f"with {len(skip)} excluded")
        chosen: list[int] = []
        while len(chosen) < k:
            if self.cursor >= len(self.order):
                self.order = self.rng.permutation(self.pool_size).tolist()
                self.cursor = 0
                self.epoch += 1
            i = self.order[self.cursor]
            self.cursor += 1
            # across an epoch boundary an index may come round again within one draw
            if i not in skip:
                chosen.append(i)
                skip.add(i)
        return chosen

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "cursor": self.cursor, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order = [int(i) for i in state["order"]]
        self.cursor = int(state["cursor"])
        self.epoch = int(state["epoch"])
