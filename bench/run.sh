#!/usr/bin/env bash
# bench/run.sh BUILD — run every `grape bench <what>` this build has (as listed by `grape bench --help`), one after
# another, then bench/attn.sh, bench/train.sh and bench/eval.sh (the tables of docs/BENCHMARKS.md, each against the
# PyTorch peer of bench/torch_venv.sh, created on first use). Timings on the shared 2-core machine are only
# meaningful one at a time, so the whole run holds /tmp/grape-bench.lock; set GRAPE_BENCH_LOCKED=1 when you already
# hold it (flock is not re-entrant across processes).
set -uo pipefail
build=${1:-build}
if [ -z "${GRAPE_BENCH_LOCKED:-}" ]; then
  GRAPE_BENCH_LOCKED=1 exec flock /tmp/grape-bench.lock "$0" "$@"
fi
grape="$build/grape"
[ -x "$grape" ] || { echo "bench/run.sh: $grape is not built (make BUILD=$build)" >&2; exit 1; }
names=$("$grape" bench --help | awk '/^  [a-z]/ {print $1}')
[ -n "$names" ] || { echo "bench/run.sh: '$grape bench --help' lists no benchmarks" >&2; exit 1; }
status=0
for what in $names; do
  echo "== grape bench $what ($(date -u +%FT%TZ), $(nproc) cores)"
  "$grape" bench "$what" || { echo "FAILED: grape bench $what" >&2; status=1; }
  echo
done
# the recorded tables of docs/BENCHMARKS.md: attention, training and evaluation vs the PyTorch peer
for script in attn.sh train.sh eval.sh; do
  echo "== bench/$script ($(date -u +%FT%TZ))"
  "$(dirname "$0")/$script" "$build" || { echo "FAILED: bench/$script" >&2; status=1; }
  echo
done
exit $status
