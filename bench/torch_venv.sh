#!/usr/bin/env bash
# bench/torch_venv.sh — the PyTorch speed peer: a current PyTorch from PyPI in a virtual environment outside the
# repository, created on first use and reused afterwards. Prints the venv's python path on stdout (for the bench
# scripts: `py=$(bench/torch_venv.sh)`) and "torch VERSION (VENV)" on stderr.
#   bench/torch_venv.sh                        # create or reuse ~/.cache/grape/torch-venv, torch 2.15.0
#   GRAPE_TORCH_VENV=DIR GRAPE_TORCH_VERSION=V bench/torch_venv.sh
#
# Debian's python3-torch (1.13, used by the correctness tests) is far slower than a current PyTorch on this CPU, so
# it is not the speed peer. PyPI's Linux torch wheel is the CUDA build: its shared libraries link the CUDA runtime
# libraries, so `import torch` needs them even on a CPU-only machine. The lean install is torch with --no-deps, then
# its declared dependencies minus what a CPU run never loads: triton (GPU kernels for torch.compile; on CPU inductor
# emits C++), cuda-bindings, and the cuSOLVER / NVTX libraries (loaded lazily, only by CUDA linear algebra and
# profiling). torch.compile on CPU compiles C++ with g++ against Python.h (Debian python3-dev, scripts/deps.sh).
# torch 2.15.0: 2.5 GB download instead of 2.8 GB, 4.1 GB on disk, 1–2 minutes (docs/BENCHMARKS.md "PyTorch peer").
set -euo pipefail
venv=${GRAPE_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/grape/torch-venv}
version=${GRAPE_TORCH_VERSION:-2.15.0}
py="$venv/bin/python"
stamp="$venv/.grape-torch-$version"

check() { # import torch and numpy, run the fused attention; prints the version
  "$py" - <<'PY'
import numpy, torch, torch.nn.functional as F
q = torch.randn(1, 2, 8, 16)
F.scaled_dot_product_attention(q, q, q, is_causal=True)
print(torch.__version__)
PY
}

if [ -f "$stamp" ] && v=$(check 2>/dev/null); then
  echo "torch $v ($venv)" >&2
  echo "$py"
  exit 0
fi

echo "bench/torch_venv.sh: installing torch $version from PyPI into $venv (once; ~2.5 GB download)" >&2
command -v /usr/bin/python3 >/dev/null || { echo "bench/torch_venv.sh: /usr/bin/python3 missing (make deps)" >&2; exit 1; }
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv" ||
  { echo "bench/torch_venv.sh: python3 -m venv failed (Debian package python3-venv: make deps)" >&2; exit 1; }
pip=("$py" -m pip install --quiet --disable-pip-version-check --no-input)
"${pip[@]}" --upgrade pip >&2
"${pip[@]}" --no-deps "torch==$version" >&2
# torch's own Requires-Dist, evaluated for this machine, without the GPU-only parts
mapfile -t reqs < <("$py" - <<'PY'
import importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement
GPU_ONLY = {"triton", "cuda-bindings"}            # GPU kernels / CUDA Python bindings: never loaded on CPU
LAZY_EXTRAS = {"cusolver", "nvtx", "nvjitlink"}   # dlopened by CUDA linear algebra / profiling only
for line in md.requires("torch") or []:
    r = Requirement(line)
    if r.marker and not r.marker.evaluate({"extra": ""}):
        continue
    if r.name.lower() in GPU_ONLY:
        continue
    extras = sorted(r.extras - LAZY_EXTRAS)
    print(r.name + (f"[{','.join(extras)}]" if extras else "") + str(r.specifier))
PY
)
# numpy: the corpus windows of bench/torch_train.py. pip warns that the dropped GPU-only packages are missing.
"${pip[@]}" "${reqs[@]}" numpy 2>&1 | grep -v -e "dependency resolver does not" -e "which is not installed" >&2 || true
v=$(check) || { echo "bench/torch_venv.sh: torch $version does not import or run in $venv" >&2; exit 1; }
touch "$stamp"
echo "torch $v ($venv, $(du -sh "$venv" | cut -f1))" >&2
echo "$py"
