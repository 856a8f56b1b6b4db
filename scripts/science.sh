#!/usr/bin/env bash
# scripts/science.sh [BUILD]: the full comparison behind docs/RESULTS.md (issue "which encoding extrapolates?").
# Every encoding of `grape encodings`, the hybrids and the pair-tied QK gain, tiny preset, one budget, 3 seeds, on
# the KJV Bible (runs/science-kjv) and six encodings on Python 3.11's standard library (runs/science-py311).
# Seeds go breadth first (seed 1 of both corpora, then seed 2, then 3) so a partial run already covers every
# encoding on both. Resumable: run it again after an interruption; finished runs are kept, a half-trained one resumes
# bit-exactly; runs finished on another machine and published (scripts/publish_results.sh, committed under
# docs/results/CORPUS/state) are taken back first, so a fresh clone continues the comparison. Takes about 11
# minutes per run on a 2-core machine (78 runs): spread it over several sessions.
# Overrides: STEPS, SEEDS, THREADS, OUT_KJV, OUT_PY, PY_PES (the second corpus's encodings).
set -euo pipefail
build=${1:-build}
grape="$build/grape"
[ -x "$grape" ] || { echo "science: $grape is not built (make BUILD=$build)" >&2; exit 1; }
steps=${STEPS:-1000}
seeds=${SEEDS:-3}
threads=${THREADS:-2}
mix='passkey:0.5,pairs=4,same=1'
kjv_pes=nope,rope,xpos,grape-m,grape-m-ctx,grape-m-basis,grape-m-nc,alibi,fox,grape-a,grape-a-k,grape-a-q,grape-a-qk
kjv_pes+=,grape-ap,grape-m+grape-ap,rope+fox,xpos+alibi,rope+grape-a-qk,rope:qk_gain=pair,grape-m:qk_gain=pair
py_pes=${PY_PES:-rope,alibi,fox,grape-m,grape-ap,grape-m+grape-ap}
budget=(--preset tiny --steps "$steps" --lr 2e-3 --task-mix "$mix" --threads "$threads")
scripts/make_data.sh
[ -d data/py311 ] || scripts/make_code_corpus.sh
scripts/publish_results.sh --restore
# Which machine and commit each stretch of the comparison ran on (sessions may land on different CPUs); published
# with the runs (docs/results/CORPUS/state/machines.txt).
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
for out in "${OUT_KJV:-runs/science-kjv}" "${OUT_PY:-runs/science-py311}"; do
  mkdir -p "$out"
  echo "$(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo ?) cpu '$cpu' $(nproc) cores" >>"$out/machines.txt"
done
for s in $(seq 1 "$seeds"); do
  "$grape" compare --pes "$kjv_pes" "${budget[@]}" --seeds "$s" --out "${OUT_KJV:-runs/science-kjv}"
  "$grape" compare --pes "$py_pes" "${budget[@]}" --seeds "$s" --data data/py311 --out "${OUT_PY:-runs/science-py311}"
done
