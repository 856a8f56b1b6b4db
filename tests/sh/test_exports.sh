#!/usr/bin/env bash
# test_exports.sh BUILD — libgrape.so exports its API and nothing else (it is built with -fvisibility=hidden and
# GRAPE_API on every declaration of include/grape.h): each function in its dynamic symbol table carries the grape_
# prefix and is declared GRAPE_API in grape.h, each GRAPE_API function is exported, and the test oracles of
# tests/ref/grape_testing.h are exported by libgrape_testing.so only; no internal function of libgrape.a takes the
# public grape_ prefix.
set -uo pipefail
build=${1:?usage: test_exports.sh BUILD}
check() { # name, condition exit status
  if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fi
}
# the names a header declares with marker $2: the identifier before the first "(" after the marker
declared() { grep -o "^$2 [^(]*(" "$1" | sed 's/($//; s/.*[ *]//' | sort -u; }
# the functions a shared library defines in its dynamic table
exported() { nm -D --defined-only "$1" | awk '$2 == "T" || $2 == "W" || $2 == "i" { print $3 }' | sort -u; }

api=$(declared include/grape.h GRAPE_API)
oracles=$(declared tests/ref/grape_testing.h GRAPE_TESTING_API)
lib=$(exported "$build/libgrape.so")
testing=$(exported "$build/libgrape_testing.so")
echo "# libgrape.so exports $(wc -l <<<"$lib") functions; grape.h declares $(wc -l <<<"$api") GRAPE_API functions"

unmarked=$(grep -nE '^[a-z][a-z0-9_ *]*\bgrape_[a-z0-9_]*\(' include/grape.h | grep -v ':typedef ')
[ -z "$unmarked" ]
check "every function grape.h declares is marked GRAPE_API" $?
[ -n "$unmarked" ] && echo "# without GRAPE_API (not exported): $(tr '\n' ' ' <<<"$unmarked")"

stray=$(grep -v '^grape_' <<<"$lib")
[ -z "$stray" ]
check "every function libgrape.so exports has the grape_ prefix" $?
[ -n "$stray" ] && echo "# without the prefix: $(head -20 <<<"$stray" | tr '\n' ' ')"

undeclared=$(comm -23 <(echo "$lib") <(echo "$api"))
[ -z "$undeclared" ]
check "every function libgrape.so exports is declared GRAPE_API in grape.h" $?
[ -n "$undeclared" ] && echo "# not in grape.h: $(tr '\n' ' ' <<<"$undeclared")"

missing=$(comm -13 <(echo "$lib") <(echo "$api"))
[ -n "$api" ] && [ -z "$missing" ]
check "every GRAPE_API function of grape.h is exported" $?
[ -n "$missing" ] && echo "# declared, not exported: $(tr '\n' ' ' <<<"$missing")"

[ -n "$oracles" ] && [ -z "$(comm -12 <(echo "$lib") <(echo "$oracles"))" ] &&
  [ -z "$(comm -13 <(echo "$testing") <(echo "$oracles"))" ]
check "the test oracles ($(tr '\n' ' ' <<<"$oracles")) are in libgrape_testing.so, not in libgrape.so" $?

internal=$(comm -23 <(nm --defined-only "$build/libgrape.a" | awk '$2 == "T" && $3 ~ /^grape_/ { print $3 }' | sort -u) \
  <(echo "$api"))
[ -z "$internal" ]
check "no internal function of libgrape.a has the public grape_ prefix" $?
[ -n "$internal" ] && echo "# internal with the prefix: $(tr '\n' ' ' <<<"$internal")"

! grep -q 'GRAPE_TESTING_API\|grape_testing.h' include/grape.h
check "grape.h does not declare or include the testing API" $?
