#!/usr/bin/env bash
# bench/train.sh BUILD [PRESET] [ENCODING...] — `grape bench train` for each encoding and, in the same run, the
# PyTorch peer (bench/torch_train.py, same model, step and threads) for rope; prints a markdown table with each
# encoding's step-time ratio vs nope and grape's speedup over PyTorch. Holds /tmp/grape-bench.lock throughout.
#   bench/train.sh build tiny                    # every encoding of the table, tiny preset
#   bench/train.sh build small nope rope grape-ap
set -euo pipefail
build=${1:-build}
preset=${2:-tiny}
shift $(( $# > 2 ? 2 : $# ))
encodings=("$@")
[ ${#encodings[@]} -gt 0 ] || encodings=(nope rope xpos grape-m grape-m-ctx grape-m-basis grape-m-nc alibi fox
                                        grape-a-k grape-a-q grape-a-qk grape-ap grape-m+grape-ap)
if [ -z "${GRAPE_BENCH_LOCKED:-}" ]; then
  GRAPE_BENCH_LOCKED=1 exec flock /tmp/grape-bench.lock "$0" "$build" "$preset" "${encodings[@]}"
fi
threads=${THREADS:-$(nproc)}
steps=${STEPS:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pe in "${encodings[@]}"; do
  "$build/grape" bench train --preset "$preset" --pe "$pe" --threads "$threads" --steps "$steps" --json >>"$out"
done
OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/torch_train.py --preset "$preset" --pe rope --threads "$threads" \
  --steps "$steps" --json >>"$out"
/usr/bin/python3 - "$out" "$preset" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
grape = [r for r in rows if r.get("impl") != "pytorch"]
torch = [r for r in rows if r.get("impl") == "pytorch"]
base = next((r["step_ms"] for r in grape if r["pe"] == "nope"), None)
r0 = grape[0]
peak = max(r["peak_gflops"] for r in grape)  # each run measures it; contention only lowers it, so take the max
print(f"{sys.argv[2]}: B={r0['batch']} T={r0['seq']}, {r0['threads']} threads, FMA peak {peak:.0f} GFLOP/s")
print()
print("| encoding | step ms | tokens/s | GFLOP/s | % of peak | step time / nope |")
print("|---|---|---|---|---|---|")
for r in grape:
    ratio = f"{r['step_ms'] / base:.3f}" if base else "-"
    print(f"| {r['pe']} | {r['step_ms']:.1f} | {r['tokens_per_s']:.0f} | {r['gflops']:.1f} | "
          f"{100 * r['gflops'] / peak:.0f}% | {ratio} |")
for t in torch:
    g = next((r for r in grape if r["pe"] == t["pe"]), None)
    speed = f", grape {g['tokens_per_s'] / t['tokens_per_s']:.2f}x faster" if g else ""
    print(f"| PyTorch {t['torch']} {t['pe']} | {t['step_ms']:.1f} | {t['tokens_per_s']:.0f} | {t['gflops']:.1f} | "
          f"{100 * t['gflops'] / peak:.0f}% | {speed.lstrip(', ')} |")
PY
