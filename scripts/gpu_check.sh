#!/usr/bin/env bash
# The prepared GPU check: one command for a GPU machine with torch and transformers but no
# network (see scripts/gpu_check.py for what it checks and writes). Installs only what that
# machine lacks: reasoning-gym and its dependencies, from the wheels scripts/gpu_wheels.sh put
# in .wheels/ (carry that folder); selbench runs from this working tree (PYTHONPATH), which
# needs no build backend there and no install of a package pinned to Python 3.11 on a 3.12.
# Results go to $OUT (default results/gpu-check); it gives up after GPU_CHECK_TIMEOUT seconds
# (default 460, inside an 8-minute budget).
#   scripts/gpu_check.sh          # on the GPU machine
#   scripts/gpu_check.sh --cpu    # the same path on the CPU at tiny sizes (tests/test_gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/results/gpu-check}
mkdir -p "$OUT"
if ! "$PYTHON" -c "import reasoning_gym" 2>/dev/null; then
  if ! ls .wheels/*.whl >/dev/null 2>&1; then
    echo "gpu_check: reasoning-gym is missing and .wheels/ is empty: run scripts/gpu_wheels.sh" \
         "where there is a network and carry .wheels" >&2
    exit 2
  fi
  SITE=${GPU_CHECK_SITE:-/tmp/selbench-site}
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" .wheels/*.whl
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  echo "gpu_check: installed $(ls .wheels/*.whl | wc -l) wheels into $SITE" >&2
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
exec timeout "${GPU_CHECK_TIMEOUT:-460}" "$PYTHON" scripts/gpu_check.py --out "$OUT" "$@"
