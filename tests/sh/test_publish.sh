#!/usr/bin/env bash
# scripts/publish_results.sh and its --restore on a micro comparison: publishing copies each finished run's raw
# files under docs/results/CORPUS/state, and restoring them into an empty directory makes `grape compare` count
# those runs as done (it trains nothing: no checkpoint appears) and rebuild the same results.csv.
set -uo pipefail
build=${1:-build}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
[ -s data/kjv.txt ] || scripts/make_data.sh >/dev/null || { echo "FAIL publish: data/kjv.txt (scripts/make_data.sh)"; exit 0; }
budget=(--pes rope,alibi --seeds 1 --preset micro --steps 6 --eval-interval 3 --max-mult 2 --doc-bytes 256 --threads 2 --quiet)
pass() { echo "PASS publish: $1"; }
fail() { echo "FAIL publish: $1"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
env_of() { echo OUT_KJV="$dir/$1" OUT_PY="$dir/none" PUB_KJV="$dir/pub" PUB_PY="$dir/pub-py" RESULTS_DOC="$dir/page.md"; }
printf '# page\n<!-- results:kjv -->\nold table\n<!-- /results:kjv -->\nkept\n<!-- claim:kjv-effctx -->\nold claim\n<!-- /claim:kjv-effctx -->\n' > "$dir/page.md"
"$build/grape" compare "${budget[@]}" --out "$dir/a" >/dev/null 2>"$dir/err" || { fail "micro compare: $(cat "$dir/err")"; exit 0; }
out=$(env $(env_of a) scripts/publish_results.sh 2>&1)
check "publish exits 0" "[ $? -eq 0 ]"
check "each run's eval.txt and metrics.jsonl published" \
  "cmp -s '$dir/a/runs/rope-s1/eval.txt' '$dir/pub/state/runs/rope-s1/eval.txt' &&
   cmp -s '$dir/a/runs/alibi-s1/metrics.jsonl' '$dir/pub/state/runs/alibi-s1/metrics.jsonl'"
check "the directory's budget published" "cmp -s '$dir/a/compare.cfg' '$dir/pub/state/compare.cfg'"
check "report and effects.md published" "[ -s '$dir/pub/results.csv' ] && grep -q 'rope' '$dir/pub/effects.md'"
check "the page's kjv block holds the tables, the rest is kept" \
  "grep -q '^| rope | 1 |' '$dir/page.md' && ! grep -q 'old table' '$dir/page.md' && grep -q '^kept$' '$dir/page.md'"
check "the page's claim block holds its verdict table" \
  "grep -q '^| alibi − rope | eff ctx text | ' '$dir/page.md' && ! grep -q 'old claim' '$dir/page.md' &&
   grep -q '^| grape-a − alibi | | | not in the results yet' '$dir/page.md'"
check "a claim without a block on the page is named and skipped" "grep -q 'no claim:kjv-perplexity block, skipped' <<<\"\$out\""
check "a corpus without results is skipped, not an error" "grep -q 'none has no results.csv yet' <<<\"\$out\""
out=$(env $(env_of b) scripts/publish_results.sh --restore 2>&1)
check "restore takes back both runs" "grep -q 'restored 2 finished runs' <<<\"\$out\""
"$build/grape" compare "${budget[@]}" --out "$dir/b" >/dev/null 2>"$dir/err"
check "compare over the restored directory exits 0" "[ $? -eq 0 ]"
check "it trains nothing (no checkpoint written)" "[ -z \"\$(find '$dir/b/runs' -name '*.bin' -o -name '*.safetensors')\" ]"
check "it rebuilds the same results.csv" "cmp -s '$dir/a/results.csv' '$dir/b/results.csv'"
out=$(env $(env_of b) scripts/publish_results.sh --restore 2>&1)
check "a second restore copies nothing" "grep -q 'restored 0 finished runs' <<<\"\$out\""
check "an unknown argument is refused" "! scripts/publish_results.sh --bogus 2>/dev/null"
mkdir -p "$dir/empty-pub/state/runs" && cp "$dir/a/compare.cfg" "$dir/empty-pub/state/"
out=$(OUT_KJV="$dir/c" OUT_PY="$dir/none" PUB_KJV="$dir/empty-pub" PUB_PY="$dir/pub-py" scripts/publish_results.sh --restore 2>&1)
check "a published state without finished runs restores nothing, without error" "[ $? -eq 0 ] && grep -q 'restored 0 finished runs' <<<\"\$out\""
