#!/usr/bin/env bash
# bench/mpi.sh BUILD [PRESET] — data-parallel training on this machine (docs/DISTRIBUTED.md): `grape train` as
# 1 rank x 2 threads and as `mpirun -np 2` x 1 thread, same global batch, REPEATS rounds (the two interleaved in
# each round, so load that drifts between rounds hits both), STEPS steps each. Tokens/s of a run is the median of
# its per-step tokens_per_s (metrics.jsonl) from step 3 on; a cell is the median over rounds. The all-reduce columns
# come from the "mpi:" line rank 0 prints: transfer (what overlapping buckets with the backward could hide at most)
# and waiting for the slower rank (load imbalance, which no overlap hides). Prints a markdown table and the load
# average before and after; holds /tmp/grape-bench.lock throughout.
#   bench/mpi.sh build tiny
#   REPEATS=5 STEPS=20 bench/mpi.sh build small
set -euo pipefail
build=${1:-build}
preset=${2:-tiny}
source "$(dirname "$0")/common.sh"
bench_lock "$0" "$build" "$preset"
steps=${STEPS:-20}
repeats=${REPEATS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -r data/kjv.txt ] || scripts/make_data.sh >/dev/null
args=(--preset "$preset" --steps "$steps" --log-interval 1 --eval-interval 0 --eval-batches 1 --save-interval 0)

# median tokens/s of DIR's steps >= 3
tps() {
  python3 -c 'import json,statistics,sys
v=[json.loads(l)["tokens_per_s"] for l in open(sys.argv[1]) if json.loads(l)["step"]>=3]
print(statistics.median(v))' "$1/metrics.jsonl"
}
echo "load average before: $(bench_load)" >&2
for ((r = 1; r <= repeats; r++)); do
  rm -rf "$tmp/one" "$tmp/two"
  "$build/grape" train "${args[@]}" --threads 2 --out "$tmp/one" --quiet
  echo "one $(tps "$tmp/one")" >>"$tmp/rows"
  mpirun -np 2 --oversubscribe --bind-to none "$build/grape" train "${args[@]}" --threads 1 --out "$tmp/two" \
    </dev/null | grep '^mpi:' >"$tmp/mpi"
  # "mpi: 2 ranks, N gradient all-reduces of X MB: T ms transfer + W ms waiting ..."
  read -r mb tr wt < <(sed -E 's/.* of ([0-9.]+) MB: ([0-9.]+) ms transfer \+ ([0-9.]+) ms waiting.*/\1 \2 \3/' \
    "$tmp/mpi")
  echo "two $(tps "$tmp/two") $mb $tr $wt" >>"$tmp/rows"
  echo "round $r/$repeats done, load average $(bench_load)" >&2
done
echo "load average after: $(bench_load)" >&2
python3 - "$tmp/rows" "$preset" "$steps" "$repeats" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
one = statistics.median(float(r[1]) for r in rows if r[0] == "one")
two = [r for r in rows if r[0] == "two"]
med = lambda i: statistics.median(float(r[i]) for r in two)
print(f"{sys.argv[2]}, {sys.argv[3]} steps, median of {sys.argv[4]} rounds\n")
print("| configuration | tokens/s | vs 1 rank x 2 threads | all-reduce | transfer ms/step | waiting ms/step |")
print("|---|---:|---:|---:|---:|---:|")
print(f"| 1 rank x 2 threads | {one:.0f} | 1.00x | — | — | — |")
print(f"| 2 ranks x 1 thread | {med(1):.0f} | {med(1) / one:.2f}x | {med(2):.2f} MB | {med(3):.1f} | {med(4):.1f} |")
EOF
