#!/usr/bin/env bash
# test_install.sh BUILD — the Makefile from a user's side: a machine without a dependency stops before compiling
# with one line naming `make deps`; `make install DESTDIR=...` lays out grape, libgrape.a, libgrape.so (soname
# libgrape.so.0), grape.h and grape.pc; the examples build with `pkg-config --cflags --libs grape` against that
# copy and pass their own checks (a fused-attention row vs a naive loop; decoder vs forward bits per byte on a
# checkpoint trained by the installed grape); `make uninstall` removes every file. Env: CC, LINK_FLAGS (sanitizers).
set -uo pipefail
build=${1:?usage: test_install.sh BUILD}
cc=${CC:-gcc}
tmp=$(mktemp -d /tmp/grape-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset MAKEFLAGS MAKELEVEL MFLAGS
check() { # name, condition exit status
  if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fi
}

# 1. A fresh machine: simulated by a header that does not exist.
out=$(make --no-print-directory DEPS_PROBE=grape-missing-dependency.h BUILD="$tmp/fresh" CC="$cc" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q 'run `make deps`' <<<"$out" && [ ! -d "$tmp/fresh/obj" ]
check "make on a machine without a dependency: one line saying to run make deps, nothing compiled" $?
echo "# $out"

# 2. make install into a staging root.
root=$tmp/root prefix=/usr/local
make --no-print-directory -s install DESTDIR="$root" PREFIX="$prefix" BUILD="$build" CC="$cc" >/dev/null
lib=$root$prefix/lib
[ -x "$root$prefix/bin/grape" ] && [ -f "$lib/libgrape.a" ] && [ -f "$root$prefix/include/grape.h" ] &&
  [ -f "$lib/pkgconfig/grape.pc" ] && [ "$(readlink "$lib/libgrape.so")" = libgrape.so.0 ] &&
  [ -f "$lib/libgrape.so.0" ] && grep -q 'SONAME.*\[libgrape.so.0\]' <<<"$(readelf -d "$lib/libgrape.so.0")"
check "make install: grape, libgrape.a, libgrape.so -> libgrape.so.0 (its soname), grape.h, grape.pc" $?

# 3. The examples, built as a user would.
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs grape)
echo "# pkg-config --cflags --libs grape: $flags"
for ex in attention score train; do
  # shellcheck disable=SC2086
  $cc -std=c11 -Wall -Wextra -Werror examples/$ex.c $flags ${LINK_FLAGS:-} -o "$tmp/$ex"
  check "examples/$ex.c builds with pkg-config against the installed copy" $?
done
export LD_LIBRARY_PATH=$lib
out=$("$tmp/attention" 2>&1); rc=$?
echo "# $out"
grep -q "$lib/libgrape.so.0" <<<"$(ldd "$tmp/attention")" # (not a pipe: grep -q closing it early fails pipefail)
check "attention runs on the installed libgrape.so.0" $?
check "attention: fused attention row = naive loop (max abs error < 1e-5)" $rc

yes 'In the beginning God created the heaven and the earth. And the earth was without form, and void.' |
  head -c 3000 >"$tmp/text.txt"
"$root$prefix/bin/grape" train --pe 'rope:rope_base=500000' --n-layer 1 --n-embd 32 --n-head 2 --batch 2 --seq 32 \
  --steps 3 --eval-interval 0 --eval-batches 1 --data "$tmp/text.txt" --out "$tmp/run" --quiet
check "the installed grape trains a checkpoint" $?
out=$(OMP_NUM_THREADS=1 "$tmp/score" "$tmp/run" "$tmp/text.txt" 2>&1); rc=$?
echo "# $out"
grep -q '^rope:rope_base=500000 (L=1 C=32 H=2): [0-9.]* bits/byte' <<<"$out"
check "score prints the canonical name and the bits per byte" $?
check "score: decoder bits/byte = forward bits/byte over the first window (rel 1e-4)" $rc
out=$(OMP_NUM_THREADS=1 "$tmp/train" "$tmp/text.txt" "$tmp/embedded" rope+alibi 2>&1); rc=$?
echo "# $(tail -1 <<<"$out")"
grep -q '^rope+alibi: 40 steps, 5120 tokens, validation [0-9.]* bits/byte' <<<"$out" &&
  "$root$prefix/bin/grape" train --out "$tmp/embedded" --resume --steps 41 --quiet
check "train: the embedded trainer runs 15 steps, saves, resumes to 40; grape train --resume continues it" $?

# 4. make uninstall leaves no file behind.
make --no-print-directory -s uninstall DESTDIR="$root" PREFIX="$prefix" BUILD="$build" >/dev/null
[ -z "$(find "$root" -type f -o -type l)" ]
check "make uninstall removes every installed file" $?
