#!/usr/bin/env bash
# make demo (scripts/demo.sh BUILD): build the corpus, then one `grape compare` on a demo budget: nine encodings
# (nope as the speed baseline, rope, xpos, alibi, fox, grape-m, grape-a-qk, grape-ap and the hybrid
# grape-m+grape-ap), the tiny model trained at T = 128 for 120 steps (validated every 30 for the loss curves),
# each evaluated at 1x..16x the training length with full attention and, for rotary encodings, LEX BCA. Prints the
# table and the plots' paths, then a sample. The budget keeps `make demo` within 10 minutes on a 2-core machine
# including the install of its packages (docs/EVALUATION.md "make demo").
# Resumable: run it again to finish an interrupted demo (finished runs are kept); rm -rf the run directory to
# start over. Overrides: PES=rope,alibi STEPS=400 EVAL_INTERVAL=40 SEEDS=2 OUT=runs/my-compare scripts/demo.sh build
set -euo pipefail
build=${1:-build}
pes=${PES:-nope,rope,xpos,alibi,fox,grape-m,grape-a-qk,grape-ap,grape-m+grape-ap}
steps=${STEPS:-120}
eval_interval=${EVAL_INTERVAL:-$(((steps + 3) / 4))}
seeds=${SEEDS:-1}
out=${OUT:-runs/demo-compare}
grape="$build/grape"
[ -x "$grape" ] || { echo "demo: $grape is not built (make BUILD=$build)" >&2; exit 1; }
scripts/make_data.sh
echo
echo "== grape compare: the tiny model (L=4, C=256, H=4) at T=128, $steps steps of batch 16, seeds $seeds, for"
echo "   $pes"
echo "   then bits per byte at 128..2048 bytes (1x..16x) on the first 2048 bytes of each held-out book"
echo "   (Ctrl-C stops; run make demo again to continue where it stopped)"
"$grape" compare --pes "$pes" --preset tiny --seq 128 --batch 16 --steps "$steps" --lr 2e-3 --seeds "$seeds" \
  --eval-interval "$eval_interval" --effctx-windows 32 --out "$out"
echo
cat "$out/results.md"
echo
echo "== plots: $out/bpb_vs_length.png (BPB vs length), $out/loss_curves.png (validation BPB vs step)"
last=${pes##*,}
echo
echo "== sample from $last (temperature 0.7, top-k 40):"
"$grape" sample --ckpt "$out/runs/$last-s1" --prompt "And God said" --n 300 --temperature 0.7 --top-k 40
echo
echo "== done in ${SECONDS}s; every command behind the table: $out/commands.txt"
