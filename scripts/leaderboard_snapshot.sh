#!/usr/bin/env bash
# Make results/leaderboard ready to commit while (or after) its sweep runs: pack the finished
# runs (gzip metrics.csv, drop checkpoints), regenerate results/leaderboard/report (and report-rise90, the
# sensitivity check) from the finished runs alone (`selbench report --finished-only`: the runs still going are not
# committed, so the published report must not count them; tests/test_report.py regenerates it
# the same way) and the README's generated tables. Then: git add results/leaderboard README.md, leaving the unfinished run folders out
# (`git status` lists them; .gitignore does not know them). Usage: bash scripts/leaderboard_snapshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SB=${SELBENCH:-.venv/bin/selbench}
PY=${PYTHON:-.venv/bin/python}
lb=$PWD/results/leaderboard
"$SB" pack "$lb"
"$SB" report "$lb" --finished-only
# the sensitivity check: the same records against a target uniform's seeds all reach (90% of its
# median rise), whose intervals are bounded above (README: the leaderboard)
"$SB" report "$lb" --finished-only --target-rise 0.9 --out "$lb/report-rise90"
"$PY" scripts/readme_tables.py
unfinished=()
for run in "$lb"/runs/*/; do [ -f "$run/summary.json" ] || unfinished+=("$(basename "$run")"); done
echo "snapshot ready; not to commit (unfinished): ${unfinished[*]:-none}"
