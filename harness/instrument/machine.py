"""How fast this machine is right now, as seen by this process.

Wall-clock comparisons assume every run had the same machine. On shared or virtual CPUs that may
not hold between hours or between machines, and an arm recorded on a faster one wins on the clock
alone. (On the project's 2-core machine a rerun of a deterministic run took 0.91-1.09x as long a
step, with no drift over a night: results/kept/dots-b32-retimed.) The trainer probes the fp32
matmul throughput at every evaluation, off the clock, and the report compares the arms' medians;
it cannot correct times, only say when they are not comparable.
"""

from __future__ import annotations

import statistics
import time

import torch

PROBE_SIZE = 256  # between the tiny models' hidden (128) and MLP (512) widths
PROBE_REPEATS = 3


def matmul_gflops(size: int = PROBE_SIZE, seconds: float = 0.02,
                  repeats: int = PROBE_REPEATS) -> float:
    """fp32 matmul throughput in GFLOP/s with this process's torch threads: the median of
    ``repeats`` timings of at least ``seconds`` each (the median shrugs off one interruption)."""
    if size < 1 or seconds <= 0 or repeats < 1:
        raise ValueError(f"matmul_gflops: size={size}, seconds={seconds}, repeats={repeats} must "
                         "all be positive")
    # fixed values, no RNG draw: probing must not shift the run's random streams
    a = torch.full((size, size), 0.5)
    b = torch.full((size, size), 0.25)
    torch.mm(a, b)  # first call pays for allocation and kernel selection
    rates = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        rates.append(2.0 * size ** 3 * n / elapsed / 1e9)
    return statistics.median(rates)
