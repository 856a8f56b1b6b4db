#!/usr/bin/env bash
# Build the second corpus data/py311/ (docs/RESULTS.md): source code, not English prose. It is the 171 top-level
# modules of the Python 3.11 standard library as Debian 12 ships them (/usr/lib/python3.11/*.py, from the packages
# libpython3.11-minimal and libpython3.11-stdlib, both installed with python3): ~4.7 MB, about the size of the KJV.
# One file = one document (grape's directory rule, docs/TRAINING.md), so the validation split is whole modules.
# The package versions and a sha256 of the files in name order are written to data/py311.txt, so a run on a
# different Python build is recognisable. Idempotent; the directory is built beside the target and renamed into
# place, so an interrupted build leaves nothing half-made.
set -euo pipefail
out=${1:-data/py311}
src=/usr/lib/python3.11
if [ -d "$out" ] && [ -s "$out.txt" ]; then
  echo "grape: $out is ready ($(cat "$out"/*.py | wc -c) bytes, $(ls "$out" | wc -l) files)"
  exit 0
fi
if ! ls "$src"/*.py >/dev/null 2>&1; then
  echo "grape: $src/*.py is missing; install Debian's python3 (libpython3.11-stdlib)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -rf "$tmp" "$out.txt.tmp"' EXIT
mkdir "$tmp"
cp "$src"/*.py "$tmp"/
files=$(ls "$tmp" | wc -l)
bytes=$(cat "$tmp"/*.py | wc -c)
{
  echo "Python 3.11 standard library, top-level modules ($src/*.py): $files files, $bytes bytes"
  dpkg-query -W -f='${Package} ${Version}\n' libpython3.11-minimal libpython3.11-stdlib 2>/dev/null || true
  echo "sha256 of the files concatenated in name order: $(LC_ALL=C ls "$tmp" | sed "s|^|$tmp/|" | xargs cat | sha256sum | cut -d' ' -f1)"
} >"$out.txt.tmp"
rm -rf "$out"
mv "$tmp" "$out"
mv "$out.txt.tmp" "$out.txt"
trap - EXIT
echo "grape: wrote $out ($bytes bytes, $files files)"
