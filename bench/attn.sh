#!/usr/bin/env bash
# bench/attn.sh BUILD — the fused-attention sweep of docs/BENCHMARKS.md: `grape bench attn` (B=1, H=4, D=64) for
# T = 256 ... 16384 forward+backward for each encoding, and T = 32768, 65536 forward only; interleaved with the
# PyTorch peer (bench/torch_attn.py, F.scaled_dot_product_attention from bench/torch_venv.sh): is_causal=True right
# after grape's nope, and ALiBi as a float mask right after grape's alibi (T <= ALIBI_MAX_T). REPEATS rounds; each
# cell is the median over rounds, and grape's speedup the median over rounds of PyTorch time / grape time (forward +
# backward) of the same round. Prints markdown tables and the load average. Holds /tmp/grape-bench.lock.
#   bench/attn.sh build       # ENCODINGS="nope alibi fox grape-a-qk grape-ap" SHORT_T=".." LONG_T=".." REPEATS=5
#   ENCODINGS="nope alibi" SHORT_T="256 1024 4096 16384" LONG_T= bench/attn.sh build     # the peer table only
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_lock "$0" "$@"
build=${1:-build}
bench_torch_setup
read -r -a encodings <<<"${ENCODINGS:-nope alibi fox grape-a-qk grape-ap}"
short=${SHORT_T-256 512 1024 2048 4096 8192 16384}
long=${LONG_T-32768 65536}
repeats=${REPEATS:-5}
alibi_max_t=${ALIBI_MAX_T:-8192}  # the float mask is O(H·T²): 6.3 GB peak RSS at T=16384
threads=${THREADS:-$(nproc)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(bench_load)" >&2
for ((r = 1; r <= repeats; r++)); do
  for T in $short; do
    for pe in "${encodings[@]}"; do
      OMP_NUM_THREADS=$threads "$build/grape" bench attn --T "$T" --pe "$pe" --backward --json |
        bench_record "$out" $r
      if [ "$pe" = nope ] || { [ "$pe" = alibi ] && [ "$T" -le "$alibi_max_t" ]; }; then
        bench_torch torch_attn.py --T "$T" --bias "$pe" --threads "$threads" --json | bench_record "$out" $r
      fi
    done
  done
  for T in $long; do
    for pe in nope grape-ap; do
      OMP_NUM_THREADS=$threads "$build/grape" bench attn --T "$T" --pe "$pe" --json | bench_record "$out" $r
    done
  done
  echo "round $r/$repeats done, load average $(bench_load)" >&2
done
echo "load average after: $(bench_load)" >&2
/usr/bin/python3 - "$out" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = st.median
def total(r):
    return r["fwd_ms"] + r["bwd_ms"]
cells = {}
for r in rows:
    cells.setdefault((r.get("impl", "grape"), r["T"], r["backward"], r["pe"]), []).append(r)
def m(rs, k):
    return med([r[k] for r in rs])
n = max(len(v) for v in cells.values())
print(f"grape bench attn, B=1 H=4 D=64, medians over {n} rounds")
print()
print("| T | encoding | forward ms | backward ms | GFLOP/s | sgemm same run | % of sgemm | time vs nope | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for (impl, T, bwd, pe), rs in cells.items():
    if impl != "grape":
        continue
    nope = cells.get(("grape", T, bwd, "nope"))
    rel = f'{med([total(r) for r in rs]) / med([total(r) for r in nope]):.2f}×' if nope else "–"
    b = f'{m(rs, "bwd_ms"):.2f}' if bwd else "–"
    print(f'| {T} | {pe} | {m(rs, "fwd_ms"):.2f} | {b} | {m(rs, "gflops"):.1f} | {m(rs, "sgemm_gflops"):.1f} | '
          f'{m(rs, "pct_sgemm"):.0f}% | {rel} | {m(rs, "peak_rss_mib"):.0f} |')
peer = [(k, rs) for k, rs in cells.items() if k[0] == "pytorch"]
if peer:
    ver = peer[0][1][0]["torch"]
    print()
    print(f"grape vs PyTorch {ver} F.scaled_dot_product_attention, forward + backward, medians over rounds; "
          "speedup = median over rounds of PyTorch time / grape time")
    print()
    print("| T | bias | grape fwd ms | grape bwd ms | grape GFLOP/s | PyTorch fwd ms | PyTorch bwd ms | PyTorch GFLOP/s "
          "| grape speedup (range) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (_, T, bwd, pe), ts in sorted(peer, key=lambda kv: (kv[0][3] != "nope", kv[0][1])):
        gs = cells[("grape", T, bwd, pe)]
        gt = {r["round"]: total(r) for r in gs}
        ratios = [total(t) / gt[t["round"]] for t in ts if t["round"] in gt]
        name = "causal (is_causal)" if pe == "nope" else f"{pe} (float mask)"
        print(f'| {T} | {name} | {m(gs, "fwd_ms"):.2f} | {m(gs, "bwd_ms"):.2f} | {m(gs, "gflops"):.1f} | '
              f'{m(ts, "fwd_ms"):.2f} | {m(ts, "bwd_ms"):.2f} | {m(ts, "gflops"):.1f} | '
              f'{med(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |')
PY
