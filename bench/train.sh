#!/usr/bin/env bash
# bench/train.sh BUILD [PRESET] [ENCODING...] — `grape bench train` for each encoding and, interleaved in the same
# run, the PyTorch peer (bench/torch_train.py: same model, step, batch, seq and threads, a current PyTorch from
# bench/torch_venv.sh) for rope, eager and torch.compile. REPEATS rounds, each: grape rope, PyTorch eager, PyTorch
# compiled, then grape's other encodings; every cell is the median over rounds, and grape's speedup is the median
# over rounds of (grape rope tokens/s) / (the better PyTorch of that round), so load that drifts between rounds
# cancels. Prints markdown tables and the load average before and after. Holds /tmp/grape-bench.lock throughout.
#   bench/train.sh build tiny                    # every encoding of the table, tiny preset
#   REPEATS=5 STEPS=5 bench/train.sh build small nope rope grape-ap
#   TORCH=0 bench/train.sh build tiny nope rope alibi   # grape's encodings only, no PyTorch rows
set -euo pipefail
build=${1:-build}
preset=${2:-tiny}
shift $(( $# > 2 ? 2 : $# ))
encodings=("$@")
[ ${#encodings[@]} -gt 0 ] || encodings=(nope rope xpos grape-m grape-m-ctx grape-m-basis grape-m-nc alibi fox
                                        grape-a-k grape-a-q grape-a-qk grape-ap grape-m+grape-ap)
source "$(dirname "$0")/common.sh"
bench_lock "$0" "$build" "$preset" "${encodings[@]}"
torch=${TORCH:-1}
[ "$torch" = 0 ] || bench_torch_setup
threads=${THREADS:-$(nproc)}
steps=${STEPS:-5}
repeats=${REPEATS:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(bench_load)" >&2
for ((r = 1; r <= repeats; r++)); do
  "$build/grape" bench train --preset "$preset" --pe rope --threads "$threads" --steps "$steps" --json |
    bench_record "$out" $r
  for mode in eager compile; do
    [ "$torch" = 0 ] && break
    bench_torch torch_train.py --preset "$preset" --pe rope --mode "$mode" --threads "$threads" --steps "$steps" \
      --json | bench_record "$out" $r
  done
  for pe in "${encodings[@]}"; do
    [ "$pe" = rope ] && continue
    "$build/grape" bench train --preset "$preset" --pe "$pe" --threads "$threads" --steps "$steps" --json |
      bench_record "$out" $r
  done
  echo "round $r/$repeats done, load average $(bench_load)" >&2
done
echo "load average after: $(bench_load)" >&2
/usr/bin/python3 - "$out" "$preset" "${encodings[@]}" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
preset, order = sys.argv[2], sys.argv[3:]
med = lambda xs: st.median(xs)
def key(r):
    return ("PyTorch " + r["mode"]) if r.get("impl") == "pytorch" else r["pe"]
cells = {}
for r in rows:
    cells.setdefault(key(r), []).append(r)
grape = [pe for pe in order if pe in cells]
peak = max(r["peak_gflops"] for r in rows if "peak_gflops" in r)  # contention only lowers it: take the max
r0 = cells[grape[0]][0]
n = len(cells[grape[0]])
print(f"{preset}: B={r0['batch']} T={r0['seq']}, {r0['threads']} threads, FMA peak {peak:.0f} GFLOP/s, "
      f"medians over {n} rounds")
print()
print("| encoding | step ms | tokens/s | tokens/s min–max | GFLOP/s | % of peak | step time / nope |")
print("|---|---|---|---|---|---|---|")
base = med([r["step_ms"] for r in cells["nope"]]) if "nope" in cells else None
def row(name, rs, last):
    ms, tps, gf = (med([r[k] for r in rs]) for k in ("step_ms", "tokens_per_s", "gflops"))
    lo, hi = min(r["tokens_per_s"] for r in rs), max(r["tokens_per_s"] for r in rs)
    print(f"| {name} | {ms:.1f} | {tps:.0f} | {lo:.0f}–{hi:.0f} | {gf:.1f} | {100 * gf / peak:.0f}% | {last} |")
for pe in grape:
    row(pe, cells[pe], f"{med([r['step_ms'] for r in cells[pe]]) / base:.3f}" if base else "–")
torch_modes = [k for k in ("PyTorch eager", "PyTorch compile") if k in cells]
for k in torch_modes:
    t = cells[k][0]
    row(f"{k.replace('PyTorch', 'PyTorch ' + t['torch'])} {t['pe']}", cells[k], "–")
if "rope" in cells and torch_modes:
    by_round = {}
    for r in rows:
        by_round.setdefault(r["round"], {})[key(r)] = r["tokens_per_s"]
    ratios = [d["rope"] / max(d[k] for k in torch_modes) for d in by_round.values()
              if "rope" in d and all(k in d for k in torch_modes)]
    best = max(torch_modes, key=lambda k: med([r["tokens_per_s"] for r in cells[k]]))
    print()
    print(f"grape rope vs the better PyTorch per round: {med(ratios):.2f}x faster (median of {len(ratios)} rounds, "
          f"range {min(ratios):.2f}–{max(ratios):.2f}); better PyTorch by median: {best.split()[1]}")
PY
