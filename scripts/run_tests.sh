#!/usr/bin/env bash
# Run every C test binary in BUILD/tests, every tests/sh script and every PyTorch reference test in tests/torch, then print
# one line "N passed, N failed". A binary that crashes without reporting a FAIL counts as one failure.
set -uo pipefail
build=${1:?usage: run_tests.sh BUILD_DIR [--no-torch]}
torch=1; [ "${2:-}" = "--no-torch" ] && torch=0
pass=0; fail=0
run_one() { # name, command...
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  local p f
  p=$(grep -c '^PASS' <<<"$out"); f=$(grep -c '^FAIL' <<<"$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$out" | tail -20; echo "FAIL $name exited with status $rc"; fi
  grep '^FAIL' <<<"$out"
  printf '%-32s %4d passed, %d failed\n' "$name" "$p" "$f"
  pass=$((pass + p)); fail=$((fail + f))
}
for t in "$build"/tests/test_*; do
  [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
for t in tests/sh/test_*.sh; do # the Makefile and the installed library from a user's side
  [ -f "$t" ] && run_one "$(basename "$t")" bash "$t" "$build"
done
if [ "$torch" -eq 1 ]; then
  for t in tests/torch/test_*.py; do
    [ -f "$t" ] && run_one "$(basename "$t")" /usr/bin/python3 "$t" "$build/libgrape.so"
  done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
