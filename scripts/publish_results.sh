#!/usr/bin/env bash
# scripts/publish_results.sh: copy the comparison behind docs/RESULTS.md next to it. For each corpus, the compare
# directory's results.csv/.json/.md, its plots and gnuplot scripts go to docs/results/CORPUS/, and
# scripts/effects.py writes effects.md there (mean ± std per encoding, the paired differences of the claims).
# Run it after scripts/science.sh (or any part of it); it reads only, it trains nothing.
set -euo pipefail
publish() { # compare dir, destination, pairs...
  local src=$1 dst=$2; shift 2
  [ -f "$src/results.csv" ] || { echo "publish: $src has no results.csv yet, skipped" >&2; return 0; }
  mkdir -p "$dst"
  cp "$src"/results.{csv,json,md} "$src"/*.png "$src"/*.gp "$src"/commands.txt "$dst"/
  /usr/bin/python3 scripts/effects.py --partial "$src" "$@" > "$dst/effects.md.tmp"
  mv "$dst/effects.md.tmp" "$dst/effects.md"
  echo "publish: $src -> $dst ($(ls "$dst" | wc -l) files)"
}
# A:B reads "A - B, paired by seed": negative BPB differences favour A.
publish "${OUT_KJV:-runs/science-kjv}" docs/results/kjv \
  grape-m:rope grape-m-ctx:grape-m grape-m-basis:grape-m grape-m-nc:grape-m xpos:rope rope:nope \
  grape-a:alibi grape-a-qk:alibi grape-ap:alibi fox:alibi grape-ap:fox \
  grape-m+grape-ap:rope grape-m+grape-ap:alibi grape-m+grape-ap:grape-ap rope+fox:fox rope+grape-a-qk:grape-a-qk \
  xpos+alibi:alibi rope:qk_gain=pair:rope grape-m:qk_gain=pair:grape-m
publish "${OUT_PY:-runs/science-py311}" docs/results/py311 \
  grape-m:rope grape-ap:alibi fox:alibi grape-ap:fox grape-m+grape-ap:rope grape-m+grape-ap:alibi
