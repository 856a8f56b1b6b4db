#!/usr/bin/env bash
# Build the libFuzzer targets fuzz/fuzz_*.c against BUILD/libgrape.a (clang, fuzzer + ASan + UBSan coverage) and
# run each for SECONDS seconds from its seed corpus fuzz/seeds/TARGET, printing one line per target:
#   fuzz TARGET: N execs, N crashes
# New inputs go to BUILD/fuzz/corpus/TARGET, crashing ones to BUILD/fuzz/crash-TARGET-*. Exit status 1 if any
# target crashed (a crash, a leak, a sanitizer report or a timeout: libFuzzer stops at the first).
set -uo pipefail
build=${1:?usage: fuzz.sh BUILD SECONDS}
seconds=${2:?usage: fuzz.sh BUILD SECONDS}
flags="-std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
flags+=" -Iinclude -Isrc -Ifuzz -D_DEFAULT_SOURCE -Wall -Wextra -Werror"
mkdir -p "$build/fuzz"
failed=0
for src in fuzz/fuzz_*.c; do
  t=$(basename "$src" .c); t=${t#fuzz_}
  bin="$build/fuzz/$t"
  if ! clang $flags "$src" "$build/libgrape.a" -fopenmp -ldnnl -ljansson -lm -o "$bin"; then
    echo "fuzz $t: build failed"; failed=1; continue
  fi
  mkdir -p "$build/fuzz/corpus/$t"
  rm -f "$build/fuzz/crash-$t-"*
  log="$build/fuzz/$t.log"
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/fuzz/crash-$t-" "$build/fuzz/corpus/$t" "fuzz/seeds/$t" >"$log" 2>&1
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(ls "$build/fuzz/crash-$t-"* 2>/dev/null | wc -l)
  echo "fuzz $t: ${execs:-0} execs, $crashes crashes"
  [ "$crashes" -eq 0 ] || { failed=1; grep -m1 -A12 'ERROR\|runtime error\|deadly signal' "$log"; }
done
exit $failed
