#!/usr/bin/env bash
# make demo (scripts/demo.sh BUILD): build the corpus, train the tiny model with a GRAPE encoding for a few
# minutes with the progress bar, then print the validation BPB and a sample, and say where the run is.
# Overrides: PE=grape-m+grape-ap STEPS=400 BATCH=16 scripts/demo.sh build
set -euo pipefail
build=${1:-build}
pe=${PE:-grape-ap}
steps=${STEPS:-400}
batch=${BATCH:-8}
out=${OUT:-runs/demo-tiny-${pe//+/-}}
grape="$build/grape"
[ -x "$grape" ] || { echo "demo: $grape is not built (make BUILD=$build)" >&2; exit 1; }
scripts/make_data.sh
if [ -e "$out/model.safetensors" ]; then
  echo "demo: starting over, removing the previous demo run $out"
  rm -rf "$out"
fi
echo
echo "== training the tiny model (L=4, C=256, H=4, T=256) with $pe for $steps steps of batch $batch"
echo "   (Ctrl-C saves a checkpoint; continue with: $grape train --out $out --resume)"
"$grape" train --preset tiny --pe "$pe" --steps "$steps" --batch "$batch" --lr 2e-3 \
  --eval-interval 100 --eval-batches 8 --log-interval 10 --out "$out"
bpb=$(/usr/bin/python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "val_bpb" in l][-1]["val_bpb"])' \
  "$out/metrics.jsonl")
echo
echo "== validation: $bpb bits per byte (held-out books; a uniform guess is 8, the byte unigram ~4.4)"
echo
echo "== sample (temperature 0.7, top-k 40):"
"$grape" sample --ckpt "$out" --prompt "And God said" --n 300 --temperature 0.7 --top-k 40
echo
echo "== run directory: $out (model.safetensors: weights + AdamW state + config; metrics.jsonl: one line per log)"
