#!/usr/bin/env bash
# Run (or resume) the leaderboard sweep: configs/sweeps/leaderboard.yaml into results/leaderboard.
# Fits each suite pair's DOTS predictor first where this machine's cache lacks it (two at a
# time, one thread each: about 5 minutes each on an idle core), then runs the sweep, which skips
# the committed finished runs. Stop it at any time (SIGTERM, or Ctrl-C in a terminal: a
# background job ignores SIGINT); `bash scripts/leaderboard_snapshot.sh` before committing what
# finished. Usage: bash scripts/leaderboard.sh [WORKERS] [sweep flags, e.g. --dry-run]
#
# PIN=1 runs the sweep's code from a git worktree of HEAD (.leaderboard-code/, git-ignored), so
# that editing this checkout while a sweep runs for days cannot change what its runs execute;
# records still land in this checkout's results/leaderboard and name the pinned commit.
set -euo pipefail
cd "$(dirname "$0")/.."
SB=${SELBENCH:-.venv/bin/selbench}  # relative to the checkout
PY=${PYTHON:-.venv/bin/python}
CACHE=${SELBENCH_CACHE:-$HOME/.cache/selbench}
if [ "${PIN:-0}" = 1 ]; then
  code=$PWD/.leaderboard-code
  if [ -d "$code" ]; then git -C "$code" checkout -q --detach "$(git rev-parse HEAD)"
  else git worktree add -q --detach "$code" HEAD; fi
  export PYTHONPATH=$code
  echo "code pinned at $(git -C "$code" rev-parse --short HEAD) in $code"
fi
pairs=$("$PY" -c "from harness.protocol import sweep; print(' '.join(sweep.load_spec(sweep.find_sweep_file('leaderboard')).pairs))")
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
# every DOTS run of a pair must score with the same predictor, but the cache is per machine and
# a fresh one refits: the weights' hashes are committed beside the records and a refit that
# differs stops here (the fit is seeded and has reproduced bit for bit so far)
CACHE="$CACHE" "$PY" - "$pairs" <<'PYEOF'
import json, os, sys
from pathlib import Path
book = Path("results/leaderboard/predictors.json")
known = json.loads(book.read_text()) if book.is_file() else {}
for pair in sys.argv[1].split():
    where = Path(os.environ["CACHE"]) / "predictors" / f"{pair}__sentence_transformer"
    digest = json.loads((where / "manifest.json").read_text())["weights_sha256"]
    if known.setdefault(pair, digest) != digest:
        sys.exit(f"the predictor fitted here for {pair} ({where}) has weights {digest[:12]}..., "
                 f"the leaderboard's runs used {known[pair][:12]}... ({book}): copy that artifact "
                 f"into {where}, or find why the fit no longer reproduces")
book.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
PYEOF
workers=()
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then workers=(--workers "$1"); shift; fi
results=$PWD/results/leaderboard
sb=$PWD/$SB
# pinned: run from the worktree, since a sweep's run processes (python -m) import from theirs
[ "${PIN:-0}" = 1 ] && cd "$code"
"$sb" sweep leaderboard --results "$results" "${workers[@]}" "$@"
