#!/usr/bin/env bash
# bench/attn.sh BUILD — the fused-attention sweep of docs/BENCHMARKS.md: `grape bench attn` (B=1, H=4, D=64) for
# T = 256 ... 16384 forward+backward for each encoding, and T = 32768, 65536 forward only; prints markdown tables
# with GFLOP/s, the sgemm of the same run, and each encoding's time relative to nope. Holds /tmp/grape-bench.lock.
#   bench/attn.sh build                       # ENCODINGS="nope alibi fox grape-a-qk grape-ap" by default
set -euo pipefail
build=${1:-build}
if [ -z "${GRAPE_BENCH_LOCKED:-}" ]; then
  GRAPE_BENCH_LOCKED=1 exec flock /tmp/grape-bench.lock "$0" "$@"
fi
read -r -a encodings <<<"${ENCODINGS:-nope alibi fox grape-a-qk grape-ap}"
short=${SHORT_T-256 512 1024 2048 4096 8192 16384}
long=${LONG_T-32768 65536}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for T in $short; do
  for pe in "${encodings[@]}"; do "$build/grape" bench attn --T "$T" --pe "$pe" --backward --json >>"$out"; done
done
for T in $long; do
  for pe in nope grape-ap; do "$build/grape" bench attn --T "$T" --pe "$pe" --json >>"$out"; done
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def total(r):
    return r["fwd_ms"] + r["bwd_ms"]
base = {(r["T"], r["backward"]): total(r) for r in rows if r["pe"] == "nope"}
print("| T | encoding | forward ms | backward ms | GFLOP/s | sgemm same run | % of sgemm | time vs nope | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    bwd = f'{r["bwd_ms"]:.2f}' if r["backward"] else "–"
    rel = total(r) / base[(r["T"], r["backward"])]
    print(f'| {r["T"]} | {r["pe"]} | {r["fwd_ms"]:.2f} | {bwd} | {r["gflops"]:.1f} | {r["sgemm_gflops"]:.1f} | '
          f'{r["pct_sgemm"]:.0f}% | {rel:.2f}× | {r["peak_rss_mib"]:.0f} |')
PY
