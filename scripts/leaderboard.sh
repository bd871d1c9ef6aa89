#!/usr/bin/env bash
# Run (or resume) the leaderboard sweep: configs/sweeps/leaderboard.yaml into results/leaderboard.
# Fits each suite pair's DOTS predictor first where this machine's cache lacks it (two at a
# time, one thread each: about 5 minutes each on an idle core), then runs the sweep, which skips
# the committed finished runs. Stop it at any time; `selbench pack results/leaderboard`, `selbench
# report results/leaderboard` and `python scripts/readme_tables.py` before
# committing what finished. Usage: bash scripts/leaderboard.sh [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
SB=${SELBENCH:-.venv/bin/selbench}
CACHE=${SELBENCH_CACHE:-$HOME/.cache/selbench}
pairs=$(.venv/bin/python -c "from harness.protocol import sweep; print(' '.join(sweep.load_spec(sweep.find_sweep_file('leaderboard')).pairs))")
todo=()
for p in $pairs; do
  [ -f "$CACHE/predictors/${p}__sentence_transformer/manifest.json" ] || todo+=("$p")
done
mkdir -p results/leaderboard/logs
for ((i = 0; i < ${#todo[@]}; i += 2)); do
  for p in "${todo[@]:i:2}"; do
    echo "fitting the predictor of $p (log: results/leaderboard/logs/fit-$p.log)"
    "$SB" predictor fit --pair "$p" --set train.threads=1 --quiet > "results/leaderboard/logs/fit-$p.log" 2>&1 &
  done
  wait
done
"$SB" sweep leaderboard --results results/leaderboard ${1:+--workers "$1"}
