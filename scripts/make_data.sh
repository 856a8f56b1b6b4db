#!/usr/bin/env bash
# Build the default corpus data/kjv.txt from Debian's bible-kjv (the King James Bible, 66 books, ~4.3 MB):
# exactly the text `bible Gen1:1-Rev22:21` prints. Books are found again by their "<Book> 1" headings
# (docs/TRAINING.md). Idempotent: an existing, complete file is kept. Written atomically (temp + rename).
set -euo pipefail
out=${1:-data/kjv.txt}
if [ -s "$out" ] && [ "$(grep -c -E '^[^ ].* 1$' "$out")" -eq 66 ]; then
  echo "grape: $out is ready ($(wc -c <"$out") bytes)"
  exit 0
fi
if ! command -v bible >/dev/null 2>&1; then
  echo "grape: the 'bible' program is missing; install Debian's bible-kjv (scripts/deps.sh does)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
bible Gen1:1-Rev22:21 >"$tmp"
books=$(grep -c -E '^[^ ].* 1$' "$tmp")
bytes=$(wc -c <"$tmp")
if [ "$books" -ne 66 ] || [ "$bytes" -lt 4000000 ]; then
  echo "grape: unexpected bible output ($books books, $bytes bytes); expected 66 books, ~4.3 MB" >&2
  exit 1
fi
mv "$tmp" "$out"
trap - EXIT
echo "grape: wrote $out ($bytes bytes, $books books)"
