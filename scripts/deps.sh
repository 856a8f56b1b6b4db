#!/usr/bin/env bash
# Install the Debian packages grape needs, only those missing (dpkg -s), through sudo when not root.
set -euo pipefail
packages=(
  build-essential clang libomp-dev      # gcc and clang with OpenMP
  libclang-rt-14-dev                    # clang's libFuzzer and sanitizer runtimes (make fuzz)
  libdnnl-dev                           # oneDNN: the GEMM behind every linear layer (src/core/gemm.h)
  libjansson-dev                        # jansson: JSON of safetensors headers and metrics.jsonl
  python3-torch python3-numpy           # PyTorch autograd references for the tests (Debian's /usr/bin/python3)
  python3-venv python3-dev              # bench/torch_venv.sh: the PyPI PyTorch speed peer (torch.compile needs Python.h)
  bible-kjv                             # the default corpus
  gnuplot-nox                           # plots of the evaluation
  pkgconf                               # make test builds the examples with `pkg-config --cflags --libs grape`
  libopenmpi-dev openmpi-bin            # OpenMPI: mpirun -np N grape train (src/cli/dist_mpi.c, tests/sh/test_mpi.sh)
  valgrind                              # make check-valgrind: memcheck of train, eval, sample
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "grape: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
