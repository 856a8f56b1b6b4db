#!/usr/bin/env bash
# scripts/publish_results.sh: copy the comparison behind docs/RESULTS.md next to it. For each corpus, the compare
# directory's results.csv/.json/.md, its plots and gnuplot scripts go to docs/results/CORPUS/, and
# scripts/effects.py writes effects.md there (mean ± std per encoding, the paired differences of the claims).
# Every finished run's raw files (eval.txt, metrics.jsonl) and the directory's state (compare.cfg, pes.txt,
# invocations.txt, machines.txt) go to docs/results/CORPUS/state/: the numbers behind every table, and what scripts/science.sh
# takes back on a fresh clone so a comparison spread over several machines continues where it stopped.
# Run it after scripts/science.sh (or any part of it, even while it runs); it reads only, it trains nothing.
# scripts/publish_results.sh --restore does the way back: each published run missing from its compare directory is
# copied there (with the state files when the directory is new); `grape compare` counts a run with eval.txt as done.
# The per-encoding tables also go into docs/RESULTS.md between its <!-- results:kjv --> / <!-- results:py311 -->
# marker lines (scripts/effects.py --into), so the page's tables are always those of the published results.
# Overrides: OUT_KJV, OUT_PY (compare directories), PUB_KJV, PUB_PY (published directories), RESULTS_DOC (the page;
# empty: no page is written).
set -euo pipefail
# Files written through a temp name and renamed, so a reader never sees half of one.
put() { cp "$1" "$2.tmp.$$" && mv "$2.tmp.$$" "$2"; }
save_state() { # compare dir, destination
  local src=$1 dst=$2/state run name
  [ -f "$src/compare.cfg" ] || return 0
  mkdir -p "$dst/runs"
  for f in compare.cfg pes.txt invocations.txt machines.txt; do [ -f "$src/$f" ] && put "$src/$f" "$dst/$f"; done
  for run in "$src"/runs/*/; do
    name=$(basename "$run")
    [ -f "$run/eval.txt" ] || continue
    mkdir -p "$dst/runs/$name"
    for f in eval.txt metrics.jsonl; do [ -f "$run/$f" ] && put "$run/$f" "$dst/runs/$name/$f"; done
  done
}
restore_state() { # published dir, compare dir
  local src=$1/state dst=$2 run name
  [ -f "$src/compare.cfg" ] || return 0
  mkdir -p "$dst/runs"
  for f in compare.cfg pes.txt invocations.txt machines.txt; do [ -f "$dst/$f" ] || [ ! -f "$src/$f" ] || put "$src/$f" "$dst/$f"; done
  local n=0
  for run in "$src"/runs/*/; do
    name=$(basename "$run")
    [ -f "$run/eval.txt" ] || continue # also the unmatched glob of an empty state/runs
    [ -f "$dst/runs/$name/eval.txt" ] && continue
    mkdir -p "$dst/runs/$name"
    [ -f "$run/metrics.jsonl" ] && put "$run/metrics.jsonl" "$dst/runs/$name/metrics.jsonl"
    put "$run/eval.txt" "$dst/runs/$name/eval.txt" # last: it marks the run done
    n=$((n + 1))
  done
  echo "publish: restored $n finished runs from $1 into $dst"
}
publish() { # compare dir, destination, tag of the page's table, pairs...
  local src=$1 dst=$2 tag=$3; shift 3
  save_state "$src" "$dst"
  [ -f "$src/results.csv" ] || { echo "publish: $src has no results.csv yet, report skipped" >&2; return 0; }
  mkdir -p "$dst"
  cp "$src"/results.{csv,json,md} "$src"/*.png "$src"/*.gp "$src"/commands.txt "$dst"/
  /usr/bin/python3 scripts/effects.py --partial "$src" "$@" > "$dst/effects.md.tmp"
  mv "$dst/effects.md.tmp" "$dst/effects.md"
  [ -z "$doc" ] || /usr/bin/python3 scripts/effects.py --into "$doc" "$tag" "$src"
  echo "publish: $src -> $dst ($(ls "$dst" | wc -l) files)"
}
kjv=${OUT_KJV:-runs/science-kjv} py=${OUT_PY:-runs/science-py311}
pub_kjv=${PUB_KJV:-docs/results/kjv} pub_py=${PUB_PY:-docs/results/py311} doc=${RESULTS_DOC-docs/RESULTS.md}
if [ "${1:-}" = --restore ]; then
  restore_state "$pub_kjv" "$kjv"
  restore_state "$pub_py" "$py"
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: scripts/publish_results.sh [--restore]" >&2; exit 2; }
# A:B reads "A - B, paired by seed": negative BPB differences favour A.
publish "$kjv" "$pub_kjv" kjv \
  grape-m:rope grape-m-ctx:grape-m grape-m-basis:grape-m grape-m-nc:grape-m xpos:rope rope:nope \
  grape-a:alibi grape-a-qk:alibi grape-ap:alibi fox:alibi grape-ap:fox \
  grape-m+grape-ap:rope grape-m+grape-ap:alibi grape-m+grape-ap:grape-ap rope+fox:fox rope+grape-a-qk:grape-a-qk \
  xpos+alibi:alibi rope:qk_gain=pair:rope grape-m:qk_gain=pair:grape-m
publish "$py" "$pub_py" py311 \
  grape-m:rope grape-ap:alibi fox:alibi grape-ap:fox grape-m+grape-ap:rope grape-m+grape-ap:alibi
