"""The strategy contract, for every registered strategy at its defaults (strategies/README.md):

- ``select(ctx, n)`` returns ``n`` distinct pool indices, and ``n`` may differ on any call (the
  fresh share shrinks once a replay buffer fills, mid-round for DOTS and the oracle);
- ``select`` may be called several times in one step (OpenRLHF's dynamic-filtering refills ask
  for one more prompt per dropped group): no call repeats a prompt chosen earlier that step;
- the state round-trips through JSON at any point, mid-step included, and a restored strategy
  continues exactly.

The context is a simulated environment, not a stand-in for a component: prompt i has a fixed
true pass rate, rollouts are Bernoulli draws from a seeded stream, and the predictor is the true
rate plus noise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from strategies.base import GroupFeedback, StepFeedback
from strategies.registry import available, build_strategy, get_entry

POOL, G, B = 300, 8, 16  # G = 8: SPEED screens 4 of each group


class _Env:
    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(1234)
        self.rates = rng.beta(0.6, 0.6, size=POOL)
        self.rng = np.random.default_rng(seed)
        self.step, self.pool_size, self.group_size, self.batch_size = 1, POOL, G, B

    def rollout(self, indices, n_samples, reuse=False):
        return [(self.rng.random(n_samples) < self.rates[int(i)]).astype(float).tolist()
                for i in indices]

    def predict(self, ref_indices, ref_labels):
        return np.clip(self.rates + self.rng.normal(0, 0.05, POOL), 0, 1)

    def feedback(self, chosen):
        rewards = self.rollout(chosen, G)
        return StepFeedback(self.step, tuple(GroupFeedback(int(i), tuple(r))
                                             for i, r in zip(chosen, rewards, strict=True)))


def _check(chosen, n) -> None:
    assert len(chosen) == n and len(set(chosen)) == n
    assert all(isinstance(i, int) and 0 <= i < POOL for i in chosen)


# a step's calls: the batch, then refills of one or two prompts (OpenRLHF's dynamic filtering);
# batch sizes vary as a replay buffer's share would (B, then B/2 once it fills, with a B/2 + 3
# when a round straddles the switch)
CALLS = [[B], [B, 1, 2], [B // 2], [B // 2 + 3, 1], [B // 2], [B], [B // 2, 2, 1, 1], [B]]


@pytest.mark.parametrize("name", available())
def test_select_takes_any_n_and_refills_within_a_step(name: str) -> None:
    s = build_strategy(name, {}, pool_size=POOL, seed=0)
    env = _Env()
    for step, sizes in enumerate(CALLS, start=1):
        env.step = step
        taken: list[int] = []
        for n in sizes:
            chosen = s.select(env, n)
            _check(chosen, n)
            assert not set(chosen) & set(taken), f"{name} repeated a prompt within step {step}"
            taken += chosen
        s.update(env.feedback(taken))


@pytest.mark.parametrize("name", available())
def test_state_round_trips_mid_step_and_continues_exactly(name: str) -> None:
    a = build_strategy(name, {}, pool_size=POOL, seed=3)
    env_a = _Env(seed=5)
    for step, sizes in enumerate(CALLS[:3], start=1):
        env_a.step = step
        taken = [i for n in sizes for i in a.select(env_a, n)]
        a.update(env_a.feedback(taken))
    env_a.step = 4
    first = a.select(env_a, B)  # mid-step: the batch is chosen, a refill may follow
    state = json.loads(json.dumps(a.state_dict()))
    b = build_strategy(name, {}, pool_size=POOL, seed=99)
    b.load_state_dict(state)
    env_b = _Env(seed=5)
    env_b.rng.bit_generator.state = env_a.rng.bit_generator.state
    env_b.step = 4
    rest_a = [a.select(env_a, 2)]
    rest_b = [b.select(env_b, 2)]
    for step, sizes in enumerate(CALLS[4:], start=5):
        for s, env, rest in ((a, env_a, rest_a), (b, env_b, rest_b)):
            env.step = step
            taken = [i for n in sizes for i in s.select(env, n)]
            s.update(env.feedback(taken))
            rest.append(taken)
    assert rest_a == rest_b, f"{name}: the restored strategy chose differently"
    assert first  # the mid-step batch was real


def test_every_registered_strategy_is_covered() -> None:
    assert {"uniform", "dots", "dots-cooldown", "oracle", "dapo", "greso", "mopps"} <= set(available())
    for name in available():
        assert get_entry(name).description
