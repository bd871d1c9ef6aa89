#!/usr/bin/env bash
# Paired comparison: for every (pair, seed), run uniform and DOTS + replay side by side so both
# see the same machine load, one torch thread each. Resumable: finished runs are skipped.
# usage: scripts/paired_runs.sh RESULTS_DIR "pair1 pair2 ..." "0 1 2" [extra --set args...]
set -euo pipefail
results=$1; pairs=$2; seeds=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
sel="$here/.venv/bin/selbench"
for seed in $seeds; do
  for pair in $pairs; do
    "$sel" run --pair "$pair" --strategy uniform --seed "$seed" --set train.threads=1 "$@" \
      --results "$results" --quiet &
    a=$!
    "$sel" run --pair "$pair" --strategy dots --seed "$seed" --set train.threads=1 \
      --set replay.enabled=true "$@" --results "$results" --quiet &
    b=$!
    wait $a; wait $b
  done
done
