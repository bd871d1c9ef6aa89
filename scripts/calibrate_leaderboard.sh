#!/usr/bin/env bash
# The leaderboard's cost-clock calibration: the short runs of configs/sweeps/calibration.yaml and
# calibration-pairs.yaml, one at a time (one torch thread each), into
# results/leaderboard-calibration; then `selbench calibrate` fits the per-unit prices on them and
# the result becomes results/leaderboard/calibration.json, which `selbench report` prices every
# leaderboard run with. Run it on a quiet machine: stop the leaderboard sweep first (it resumes
# from its checkpoints). It refuses to start while the 1-minute load average is above
# MAX_LOAD (default 0.5), and the note it stores says what the load was before and after.
# About 15 minutes on 2 idle cores. Usage: bash scripts/calibrate_leaderboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SB=${SELBENCH:-.venv/bin/selbench}
out=results/leaderboard-calibration
load() { cut -d' ' -f1 /proc/loadavg; }
before=$(load)
if awk -v l="$before" -v m="${MAX_LOAD:-0.5}" 'BEGIN {exit !(l > m)}'; then
  echo "calibrate_leaderboard: load average $before > ${MAX_LOAD:-0.5}: the machine is not quiet" \
       "(stop other work, e.g. the leaderboard sweep, and wait a minute; or set MAX_LOAD)" >&2
  exit 1
fi
started=$(date -u +%FT%TZ)
for sweep in calibration calibration-pairs; do
  "$SB" sweep "$sweep" --results "$out" --workers 1
done
note="$(nproc) cores, $(uname -m), runs one at a time with one torch thread, nothing else"
note+=" running; 1-min load average $before at start ($started), $(load) at the end"
"$SB" calibrate "$out" --note "$note"
cp "$out/calibration.json" results/leaderboard/calibration.json
"$SB" pack "$out"
echo "results/leaderboard/calibration.json written; regenerate the report:" \
     "$SB report results/leaderboard"
