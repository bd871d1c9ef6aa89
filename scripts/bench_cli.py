"""Wall time of the `selbench` commands that should answer at once; writes results/bench/cli.md.

Each command runs as its own process (``python -m harness.cli ...``), once to warm the OS file
cache, the bytecode and the reasoning-gym check cache, then ``--runs`` times; the table gives the
median and the range. A last row times a config error on a cold check cache (a fresh
``SELBENCH_CACHE``: the first resolve on a new machine, which imports reasoning-gym once).
``--root`` times another checkout (e.g. a ``git archive`` of an older commit) for comparison.

    python scripts/bench_cli.py [--runs 5] [--root PATH] [--out results/bench/cli.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PAIR = "tiny1m-chainsum"
TARGET_S = 0.5
COMMANDS: list[tuple[str, list[str]]] = [
    ("help", ["--help"]),
    ("list pairs", ["list", "pairs"]),
    ("list strategies", ["list", "strategies"]),
    ("list models", ["list", "models"]),
    ("typo in a --set key", ["run", "--pair", PAIR, "--strategy", "uniform",
                             "--set", "train.lrr=1e-4"]),
    ("bad --set value", ["run", "--pair", PAIR, "--strategy", "uniform", "--set", "train.lr=-1"]),
    ("unknown strategy", ["run", "--pair", PAIR, "--strategy", "unifrm"]),
    ("unknown pair", ["run", "--pair", "tiny1m-chainsm", "--strategy", "uniform"]),
    ("--dry-run without openrlhf", ["run", "--pair", PAIR, "--strategy", "uniform", "--dry-run"]),
    ("probe, bad --set", ["probe", "--pair", PAIR, "--set", "eval.every=0"]),
    ("predictor fit, typo", ["predictor", "fit", "--pair", PAIR, "--set", "predictor.embeder=x"]),
    ("models build, typo", ["models", "build", "tiny1m-arithh"]),
    ("suite check, unknown pair", ["suite", "check", "--pair", "nope"]),
    ("sweep demo --dry-run (validates 4 runs)", ["sweep", "demo", "--dry-run"]),
]


def _env(root: Path, cache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(root))
    # time what an installed selbench does: bytecode written once, then read
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache is not None:
        env["SELBENCH_CACHE"] = str(cache)
    return env


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode


def _imports_torch(argv: list[str], env: dict[str, str], cwd: Path) -> bool:
    # a separate run: -X importtime slows the import it reports, so it is off the timed runs
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness.cli", *argv],
                          env=env, cwd=cwd, capture_output=True, text=True)
    return any(line.rstrip().endswith(("| torch", "| transformers"))
               for line in proc.stderr.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--root", type=Path, default=PROJECT, help="checkout to time")
    ap.add_argument("--out", type=Path, default=PROJECT / "results" / "bench" / "cli.md")
    args = ap.parse_args()
    root = args.root.resolve()
    env = _env(root)
    rows = []
    for label, argv in COMMANDS:
        _time(argv, env, root)  # warm-up
        times, codes = zip(*(_time(argv, env, root) for _ in range(args.runs)), strict=True)
        rows.append((label, argv, times, codes[0], _imports_torch(argv, env, root)))
        print(f"{label:42s} {statistics.median(times):.3f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as cold:
        argv = COMMANDS[5][1]
        times, codes = zip(*(_time(argv, _env(root, Path(cold) / f"c{i}"), root)
                             for i in range(args.runs)), strict=True)
        heavy = _imports_torch(argv, _env(root, Path(cold) / "check"), root)
        rows.append(("bad --set value, cold check cache", argv, times, codes[0], heavy))
    lines = [
        "# `selbench` response times",
        "",
        f"Median wall time of {args.runs} runs after one warm-up, each command its own process "
        f"(`python -m harness.cli`); target: under {TARGET_S} s. Written by "
        "`scripts/bench_cli.py`.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}; checkout: {root.name}; load average "
        f"{os.getloadavg()[0]:.1f} when done.",
        "",
        "| command | median s | min-max s | exit | imports torch |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, argv, times, code, heavy in rows:
        cmd = "selbench " + " ".join(argv)
        lines.append(f"| {label}: `{cmd}` | {statistics.median(times):.2f} | "
                     f"{min(times):.2f}-{max(times):.2f} | {code} | {'yes' if heavy else 'no'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
