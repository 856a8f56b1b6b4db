#!/usr/bin/env bash
# Install the Debian packages grape needs, only those missing (dpkg -s), through sudo when not root.
#   scripts/deps.sh          everything: build, run, and test (clang, PyTorch references, benchmarks, fuzzing)
#   scripts/deps.sh runtime  what `make demo` needs: build grape with gcc, make the corpus, train, evaluate, plot
#                            (a fresh Debian 12 downloads ~81 MB, 96 packages, instead of ~387 MB, 419 packages;
#                            docs/EVALUATION.md "make demo")
set -euo pipefail
runtime=(
  gcc make libc6-dev                    # the build (gcc's libgomp: OpenMP)
  libdnnl-dev                           # oneDNN: the GEMM behind every linear layer (src/core/gemm.h)
  libjansson-dev                        # jansson: JSON of safetensors headers and metrics.jsonl
  bible-kjv                             # the default corpus
  gnuplot-nox                           # plots of the evaluation
)
tests=(
  build-essential clang libomp-dev      # gcc and clang with OpenMP
  libclang-rt-14-dev                    # clang's libFuzzer and sanitizer runtimes (make fuzz)
  python3-torch python3-numpy           # PyTorch autograd references for the tests (Debian's /usr/bin/python3)
  python3-venv python3-dev              # bench/torch_venv.sh: the PyPI PyTorch speed peer (torch.compile needs Python.h)
  pkgconf                               # make test builds the examples with `pkg-config --cflags --libs grape`
  libopenmpi-dev openmpi-bin            # OpenMPI: mpirun -np N grape train (src/cli/dist_mpi.c, tests/sh/test_mpi.sh)
  valgrind                              # make check-valgrind: memcheck of train, eval, sample
)
case "${1:-all}" in
  runtime) packages=("${runtime[@]}") ;;
  all) packages=("${runtime[@]}" "${tests[@]}") ;;
  *) echo "usage: scripts/deps.sh [runtime|all]" >&2; exit 2 ;;
esac
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
