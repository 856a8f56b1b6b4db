#!/usr/bin/env bash
# scripts/effects.py, the effect rule of docs/RESULTS.md, on a hand-made results.csv whose verdicts are known:
# mean ± sample std per encoding, paired differences by seed, "effect" only when every seed agrees in sign and
# |mean| > 2 x the larger seed std, "no verdict" with one seed, A:B names that contain colons, tok/s vs nope,
# and the claim tables (--claim): paired rows, one encoding's change from 1x ("bpb 4x full vs 1x"), missing rows.
set -uo pipefail
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
row() { # pe seed bpb tok/s [mult]
  echo "$1,$2,$((256 * ${5:-1})),${5:-1},full,$3,10,2560,1000,$4,0.05,0.03,128,0.9,512"
}
{
  echo "pe,seed,length,mult,mode,bpb,windows,bytes,eval_tokens_per_s,train_tokens_per_s,r_1x,r_2x,eff_ctx_text,passkey_acc,eff_ctx_passkey"
  for s in 1 2 3; do row nope $s 2.6 8000; done
  row rope 1 1.60 7600; row rope 2 1.62 7600; row rope 3 1.61 7600
  row grape-m 1 1.50 7600; row grape-m 2 1.53 7600; row grape-m 3 1.51 7600          # -0.10 -0.09 -0.10: effect
  row rope:qk_gain=pair 1 1.61 7600; row rope:qk_gain=pair 2 1.60 7600; row rope:qk_gain=pair 3 1.63 7600  # mixed signs
  row alibi 1 1.605 7600; row alibi 2 1.625 7600; row alibi 3 1.615 7600              # +0.005 each, std 0.01
  row xpos 1 1.70 7600                                                                 # one seed only
  row rope 1 1.70 7600 4; row rope 2 1.75 7600 4; row rope 3 1.72 7600 4               # +0.10 +0.13 +0.11 from 1x
  row grape-m 1 1.55 7600 4; row grape-m 2 1.58 7600 4; row grape-m 3 1.56 7600 4      # +0.05 each from 1x
} > "$dir/results.csv"
out=$(/usr/bin/python3 scripts/effects.py "$dir" grape-m:rope rope:qk_gain=pair:rope alibi:rope xpos:rope 2>&1)
rc=$?
check() { # name, fixed string expected in the output
  if grep -qF -- "$2" <<<"$out"; then echo "PASS effects: $1"; else echo "FAIL effects: $1 (no line with: $2)"; fi
}
[ $rc -eq 0 ] && echo "PASS effects: exits 0" || { echo "FAIL effects: exit status $rc"; echo "$out"; }
check "mean ± sample std over 3 seeds" "| rope | 3 | 1.6100 ± 0.0100 |"
check "one seed: mean only" "| xpos | 1 | 1.7000 |"
check "same sign, |mean| > 2 std: effect" "| bpb 1x full | -0.0967 | -0.1000, -0.0900, -0.1000 | 0.0153 | effect |"
check "mixed signs: within spread" "| bpb 1x full | +0.0033 | +0.0100, -0.0200, +0.0200 | 0.0153 | within spread |"
check "same sign but |mean| < 2 std: within spread" "| bpb 1x full | +0.0050 | +0.0050, +0.0050, +0.0050 | 0.0100 | within spread |"
check "one paired seed: no verdict" "| bpb 1x full | +0.1000 | +0.1000 | 0.0000 | no verdict (one seed) |"
check "A:B with a colon inside A" "rope:qk_gain=pair − rope"
check "training tokens/s relative to nope" "0.950 ± 0.000"
bad=$(/usr/bin/python3 scripts/effects.py "$dir" rope:nosuch 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -qF "cannot read 'rope:nosuch'" <<<"$bad"; then echo "PASS effects: unknown encoding refused"
else echo "FAIL effects: unknown encoding (status $rc: $bad)"; fi
part=$(/usr/bin/python3 scripts/effects.py --partial "$dir" rope:nosuch grape-m:rope 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -qF "rope:nosuch: not in the results yet" <<<"$part" && grep -qF "grape-m − rope" <<<"$part"
then echo "PASS effects: --partial lists a missing pair and goes on"; else echo "FAIL effects: --partial (status $rc)"; fi
printf 'intro\n<!-- results:t -->\nold\n<!-- /results:t -->\nend\n' > "$dir/page.md"
/usr/bin/python3 scripts/effects.py --into "$dir/page.md" t "$dir" 2>&1
[ "$(head -2 "$dir/page.md" | tail -1)" = "<!-- results:t -->" ] && grep -qF "| rope | 3 | 1.6100 ± 0.0100 |" "$dir/page.md" &&
  ! grep -q '^old$' "$dir/page.md" && [ "$(tail -2 "$dir/page.md")" = "$(printf '<!-- /results:t -->\nend')" ] &&
  echo "PASS effects: --into replaces the marked block and keeps the rest" || echo "FAIL effects: --into"
printf 'no markers\n' > "$dir/bare.md"
/usr/bin/python3 scripts/effects.py --into "$dir/bare.md" t "$dir" >/dev/null 2>&1 && echo "FAIL effects: --into without markers" ||
  { [ "$(cat "$dir/bare.md")" = "no markers" ] && echo "PASS effects: --into refuses a page without markers, untouched" ||
    echo "FAIL effects: --into changed a page without markers"; }
printf '<!-- claim:c -->\nold\n<!-- /claim:c -->\n' > "$dir/claim.md"
/usr/bin/python3 scripts/effects.py --claim "$dir/claim.md" c "$dir" 'bpb 1x full,bpb 4x full vs 1x' grape-m:rope rope \
  rope:nosuch nosuch:qk_gain=pair:rope:qk_gain=pair xpos:qk_gain=pair 2>&1
claim=$(cat "$dir/claim.md")
ccheck() { grep -qF -- "$2" <<<"$claim" && echo "PASS effects: --claim $1" || echo "FAIL effects: --claim $1 (no line: $2)"; }
ccheck "paired row" "| grape-m − rope | bpb 1x full | -0.0967 | -0.1000, -0.0900, -0.1000 | 0.0153 | effect |"
ccheck "paired change from 1x" "| grape-m − rope | bpb 4x full vs 1x | -0.0633 | -0.0500, -0.0800, -0.0600 | 0.0153 | effect |"
ccheck "one encoding's change from 1x" "| rope | bpb 4x full vs 1x | +0.1133 | +0.1000, +0.1300, +0.1100 | 0.0153 | effect |"
ccheck "a pair without runs" "| rope − nosuch | | | not in the results yet | | |"
ccheck "a pair of options without runs" "| nosuch:qk_gain=pair − rope:qk_gain=pair | | | not in the results yet | | |"
ccheck "an encoding without runs" "| xpos:qk_gain=pair | | | not in the results yet | | |"
grep -q '^old$' "$dir/claim.md" && echo "FAIL effects: --claim kept the old block" || echo "PASS effects: --claim replaced the block"
cp "$dir/claim.md" "$dir/claim.before"
/usr/bin/python3 scripts/effects.py --claim "$dir/claim.md" c "$dir" 'bpb 4x ful' rope >/dev/null 2>&1 &&
  echo "FAIL effects: --claim took an unknown metric" ||
  { cmp -s "$dir/claim.md" "$dir/claim.before" && echo "PASS effects: --claim refuses an unknown metric, page untouched" ||
    echo "FAIL effects: --claim changed the page on an unknown metric"; }
