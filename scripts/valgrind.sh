#!/usr/bin/env bash
# make check-valgrind: a short `grape train`, `grape train --resume`, `grape eval` and `grape sample` of a 1-layer
# model under Valgrind's memcheck, each required to report no error (invalid read or write, use of uninitialised
# memory, bad free) and no definitely or indirectly lost byte. BUILD is a build without -march=native (Valgrind 3.19
# has no AVX-512). Two OpenMP threads, so the worker threads and oneDNN's JIT GEMM run under memcheck too. No
# suppression file: with Debian 12's libgomp, oneDNN and jansson these runs report nothing to suppress (the OpenMP
# thread pool's blocks are "still reachable" / "possibly lost", which are not errors here).
# Prints one line per command: "valgrind grape CMD: ok (ERROR SUMMARY: 0 errors)", or FAILED and the report.
set -uo pipefail
build=${1:?usage: valgrind.sh BUILD}
grape="$build/grape"
tmp=$(mktemp -d /tmp/grape-valgrind-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# A 64 KiB text corpus (data_open cuts it into 10 documents).
for i in $(seq 1 2000); do echo "the grape vine $i and the wine of the field $((i * 7 % 13))"; done | head -c 65536 \
  >"$tmp/corpus.txt"
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --num-callers=40)
model=(--data "$tmp/corpus.txt" --out "$tmp/run" --n-layer 1 --n-embd 32 --n-head 2 --batch 2 --seq 32
       --eval-batches 1 --log-interval 1 --threads 2 --quiet)
failed=0
run() { # name, grape arguments...
  local name=$1; shift
  local log="$tmp/$(echo "$name" | tr ' -' '__').log"
  if "${vg[@]}" --log-file="$log" "$grape" "$@" >/dev/null 2>"$log.stderr"; then
    echo "valgrind grape $name: ok ($(grep -o 'ERROR SUMMARY: [0-9]* errors' "$log"))"
  else
    echo "valgrind grape $name: FAILED (exit $?)"; cat "$log.stderr" "$log"; failed=1
  fi
}
run "train" train "${model[@]}" --steps 2
run "train --resume" train "${model[@]}" --steps 3 --resume
run "eval" eval --ckpt "$tmp/run" --lengths 32,64 --doc-bytes 512 --threads 2
run "sample" sample --ckpt "$tmp/run" --n 16 --threads 1
exit $failed
