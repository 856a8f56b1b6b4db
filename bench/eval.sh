#!/usr/bin/env bash
# bench/eval.sh BUILD — forward-only (evaluation) tokens/s of the tiny rope model at T = 1024 and 4096, batch 1:
# `grape bench eval --preset tiny --pe rope --T N --json` interleaved with the PyTorch peer (bench/torch_eval.py,
# torch.inference_mode, eager and torch.compile, a current PyTorch from bench/torch_venv.sh). REPEATS rounds; cells
# are medians over rounds, grape's speedup the median over rounds of grape tokens/s / the better PyTorch's. A build
# without `grape bench eval` gets the PyTorch side only. Holds /tmp/grape-bench.lock.
#   bench/eval.sh build                          # EVAL_T="1024 4096" REPEATS=5 THREADS=2 PRESET=tiny PE=rope
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_lock "$0" "$@"
build=${1:-build}
bench_torch_setup
lengths=${EVAL_T:-1024 4096}
repeats=${REPEATS:-5}
threads=${THREADS:-$(nproc)}
preset=${PRESET:-tiny}
pe=${PE:-rope}
have_grape=1
"$build/grape" bench --help 2>/dev/null | grep -q '^  eval' ||
  { have_grape=0; echo "bench/eval.sh: $build/grape has no 'bench eval': PyTorch side only" >&2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(bench_load)" >&2
for ((r = 1; r <= repeats; r++)); do
  for T in $lengths; do
    if [ $have_grape = 1 ]; then
      OMP_NUM_THREADS=$threads "$build/grape" bench eval --preset "$preset" --pe "$pe" --T "$T" --json |
        bench_record "$out" $r T "$T"
    fi
    for mode in eager compile; do
      bench_torch torch_eval.py --preset "$preset" --pe "$pe" --T "$T" --mode "$mode" --threads "$threads" --json |
        bench_record "$out" $r T "$T"
    done
  done
  echo "round $r/$repeats done, load average $(bench_load)" >&2
done
echo "load average after: $(bench_load)" >&2
/usr/bin/python3 - "$out" "$preset" "$pe" "$threads" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
preset, pe, threads = sys.argv[2:5]
def key(r):
    return f"PyTorch {r['torch']} {r['mode']}" if r.get("impl") == "pytorch" else "grape"
cells = {}
for r in rows:
    cells.setdefault(r["T"], {}).setdefault(key(r), {})[r["round"]] = r["tokens_per_s"]
names = sorted({k for c in cells.values() for k in c}, key=lambda k: (k != "grape", k.endswith("compile")))
n = max(len(v) for c in cells.values() for v in c.values())
print(f"evaluation forward, {preset} {pe}, batch 1, {threads} threads, tokens/s (median over {n} rounds, min–max)")
print()
print("| T | " + " | ".join(names) + " | grape speedup vs better PyTorch (range) |")
print("|---" * (len(names) + 2) + "|")
for T, c in cells.items():
    fmt = lambda v: f"{st.median(v.values()):.0f} ({min(v.values()):.0f}–{max(v.values()):.0f})"  # noqa: E731
    torch_keys = [k for k in c if k != "grape"]
    sp = "–"
    if "grape" in c and torch_keys:
        ratios = [g / max(c[k][r] for k in torch_keys) for r, g in c["grape"].items()
                  if all(r in c[k] for k in torch_keys)]
        sp = f"{st.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
    print(f"| {T} | " + " | ".join(fmt(c[k]) if k in c else "–" for k in names) + f" | {sp} |")
PY
