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
# marker lines (scripts/effects.py --into), so the page's tables are always those of the published results, and
# each claim section's verdict table between its <!-- claim:TAG --> lines (scripts/effects.py --claim; the rows
# and metrics of every claim are listed at the end of this script).
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
claim() { # compare dir, tag of the page's block, metrics (comma-separated), rows (A:B or A)...
  local src=$1 tag=$2; shift 2
  [ -n "$doc" ] && [ -f "$src/results.csv" ] || return 0
  grep -qxF "<!-- claim:$tag -->" "$doc" || { echo "publish: $doc has no claim:$tag block, skipped" >&2; return 0; }
  /usr/bin/python3 scripts/effects.py --claim "$doc" "$tag" "$src" "$@"
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

# The verdict table of each claim of docs/RESULTS.md ("bpb Nx MODE vs 1x": the change from the training length).
bpb1='bpb 1x full' grow='bpb 4x full vs 1x,bpb 16x full vs 1x'
claim "$kjv" kjv-perplexity "$bpb1" grape-m:rope grape-m-ctx:grape-m grape-m-basis:grape-m grape-m-nc:grape-m \
  grape-a:alibi grape-a-k:alibi grape-a-q:alibi grape-a-qk:alibi grape-ap:alibi grape-m+grape-ap:rope \
  grape-m+grape-ap:alibi
claim "$py" py311-perplexity "$bpb1" grape-m:rope grape-ap:alibi grape-m+grape-ap:rope grape-m+grape-ap:alibi
claim "$kjv" kjv-additive "$grow" nope rope grape-m alibi fox grape-a grape-a-k grape-a-q grape-a-qk grape-ap \
  grape-m+grape-ap rope+fox xpos+alibi rope+grape-a-qk grape-a:alibi grape-ap:alibi fox:alibi grape-m+grape-ap:alibi
claim "$py" py311-additive "$grow" rope grape-m alibi fox grape-ap grape-m+grape-ap grape-ap:alibi fox:alibi \
  grape-m+grape-ap:alibi
claim "$kjv" kjv-effctx 'eff ctx text,eff ctx passkey' alibi:rope grape-a:alibi grape-a-k:alibi grape-ap:alibi \
  grape-m+grape-ap:alibi grape-m+grape-ap:grape-a
claim "$py" py311-effctx 'eff ctx text,eff ctx passkey' alibi:rope grape-ap:alibi grape-m+grape-ap:alibi \
  grape-m+grape-ap:rope
claim "$kjv" kjv-lex-bca 'bpb 2x bca vs 1x,bpb 4x bca vs 1x,bpb 16x bca vs 1x,bpb 4x full vs 1x,bpb 16x full vs 1x' \
  xpos rope xpos:rope
claim "$kjv" kjv-resolution 'R 1x,R 2x' xpos:rope rope:nope alibi:rope
claim "$kjv" kjv-lex-1x "$bpb1" xpos:rope
claim "$kjv" kjv-qk-gain "$bpb1,bpb 4x full,bpb 16x full,passkey acc 1x,eff ctx passkey" rope:qk_gain=pair:rope \
  grape-m:qk_gain=pair:grape-m
claim "$kjv" kjv-fox "$bpb1,bpb 16x full vs 1x,passkey acc 1x,eff ctx passkey" grape-ap:fox fox:alibi grape-ap:alibi
claim "$py" py311-fox "$bpb1,bpb 16x full vs 1x,passkey acc 1x,eff ctx passkey" grape-ap:fox fox:alibi grape-ap:alibi
