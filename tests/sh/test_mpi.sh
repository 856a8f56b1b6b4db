#!/usr/bin/env bash
# test_mpi.sh BUILD — data-parallel training under mpirun (docs/DISTRIBUTED.md), micro preset, 1 thread per rank:
#   * 2 ranks x batch 4 give the loss sequence of 1 rank x batch 8 over 20 steps within 1e-5 relative (and over 10
#     steps of --grad-accum 2, and of --task-mix passkey:0.5);
#   * a 2-rank run stopped at step 10 and resumed on 2 ranks writes the checkpoint bytes and losses of the
#     uninterrupted 2-rank run; resumed on 1 rank it follows that run within 1e-5;
#   * a perturbation injected into rank 1 (GRAPE_FAULT_DIVERGE) is caught by the next checkpoint's checksum: the
#     run stops naming the step and the rank, the checkpoint on disk stays the last agreed one;
#   * a rank count that does not divide --batch is refused before training;
#   * `mpirun -np 2 grape compare` deals the runs to the ranks and writes the checkpoints of a one-process compare;
#     with --ranks-per-job 2 its run is a 2-rank run (within 1e-5 of one process);
#   * a SIGTERM to rank 1 alone stops both ranks after the same step, and rank 0 saves that step.
# And a grape without MPI (this build's objects linked with dist_single.c) trains alone and refuses to run as one
# of several ranks; on a PATH without mpicc the Makefile picks dist_single.c, and MPI=1 stops saying why. When
# BUILD itself has no MPI, only these are checked.
# Works as root and not (OMPI_ALLOW_RUN_AS_ROOT*), with fewer cores than ranks (--oversubscribe), unbound
# (--bind-to none: containers may report one slot), and under ASan: LeakSanitizer then ignores allocations made
# inside OpenMPI's own libraries (tests/sh/lsan_mpi.supp, below).
set -uo pipefail
build=${1:?usage: test_mpi.sh BUILD}
grape=$build/grape
tmp=$(mktemp -d /tmp/grape-mpi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
check() { # name, condition exit status
  if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; fi
}
step_of() { # the training step stored in DIR's checkpoint
  python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"]["state.step"])' "$1/model.safetensors" 2>/dev/null
}
[ -r data/kjv.txt ] || scripts/make_data.sh >/dev/null || { echo "FAIL data/kjv.txt cannot be built"; exit 1; }

# 0. The grape of a build without MPI (make MPI=0): BUILD's CLI objects with src/cli/dist_single.c for dist_mpi.c,
# linked here as the Makefile would, so every run checks it. It trains alone, and refuses to be one of 2 ranks.
single=$tmp/grape-single
cc=${CC:-gcc}
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc -D_DEFAULT_SOURCE ${LINK_FLAGS:-} -c src/cli/dist_single.c \
  -o "$tmp/dist_single.o" &&
  $cc -fopenmp ${LINK_FLAGS:-} -o "$single" $(ls "$build"/obj/src/cli/*.o | grep -v '/dist_') "$tmp/dist_single.o" \
    "$build/libgrape.a" -ldnnl -ljansson -lm
! ldd "$single" | grep -q libmpi && "$single" train --preset micro --steps 2 --threads 1 --quiet --out "$tmp/single" &&
  [ "$(step_of "$tmp/single")" = 2 ]
check "grape without MPI (dist_single.c): links no libmpi, trains 2 steps alone" $?
out=$(OMPI_COMM_WORLD_SIZE=2 "$single" train --preset micro --steps 1 --out "$tmp/nompi" 2>&1); rc=$?
[ "$rc" -eq 1 ] && grep -q 'built without MPI' <<<"$out" && [ ! -e "$tmp/nompi" ]
check "grape without MPI refuses to run as one of 2 ranks (OMPI_COMM_WORLD_SIZE=2), creating nothing" $?
echo "# $out"
# The Makefile on a PATH without mpicc: detection picks dist_single.c; MPI=1 stops with one line saying why.
mkdir "$tmp/bin"
for f in /usr/bin/* /bin/*; do
  n=${f##*/}
  [ "$n" = mpicc ] || [ -e "$tmp/bin/$n" ] || ln -s "$f" "$tmp/bin/$n"
done
unset MAKEFLAGS MAKELEVEL MFLAGS
plan=$(PATH=$tmp/bin make --no-print-directory -n BUILD="$tmp/b" "$tmp/b/grape" 2>&1)
grep -q 'dist_single\.c' <<<"$plan" && ! grep -q 'dist_mpi\.c' <<<"$plan"
check "make without mpicc on PATH builds grape with dist_single.c" $?
out=$(PATH=$tmp/bin make --no-print-directory -n MPI=1 BUILD="$tmp/b" "$tmp/b/grape" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q 'MPI=1 but mpicc is missing' <<<"$out"
check "make MPI=1 without mpicc stops with one line naming make deps and MPI=0" $?
echo "# $out"
if ! ldd "$grape" | grep -q libmpi; then
  echo "# $grape was built without MPI (make MPI=0, or no mpicc): the data-parallel tests need OpenMPI (make deps)"
  exit 0
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none # containers often forbid cross-memory attach (ptrace)
# ASan builds: OpenMPI keeps its state until the process ends and unloads its plugins at MPI_Finalize; kept loaded
# and unwound in full, every allocation it never frees has an OpenMPI library on its stack, which the suppression
# file names (and nothing else: a leak of grape's own code has no such frame).
export OMPI_MCA_mca_base_component_disable_dlclose=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sh/lsan_mpi.supp:fast_unwind_on_malloc=0:print_suppressions=0
mpi() { # ranks, command...
  local n=$1; shift
  timeout 600 mpirun -np "$n" --oversubscribe --bind-to none "$@" </dev/null
}
common=(--preset micro --batch 8 --threads 1 --log-interval 1 --eval-interval 0 --quiet)

# The "loss" values of DIR/metrics.jsonl, one a line.
losses() { python3 -c 'import json,sys; [print(json.loads(l)["loss"]) for l in open(sys.argv[1])]' "$1/metrics.jsonl"; }
# Same count of losses, each within 1e-5 relative; prints the largest relative difference.
close() { # dir_a dir_b count
  python3 - "$1/metrics.jsonl" "$2/metrics.jsonl" "$3" <<'EOF'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
err = max((abs(x - y) / abs(y) for x, y in zip(a, b)), default=float("inf"))
print(f"# {len(a)} vs {len(b)} losses, max relative difference {err:.3g} (tolerance 1e-5)")
sys.exit(0 if len(a) == len(b) == int(sys.argv[3]) and err <= 1e-5 else 1)
EOF
}

# 1. 2 ranks x B/2 == 1 rank x B
"$grape" train "${common[@]}" --steps 20 --out "$tmp/one"
mpi 2 "$grape" train "${common[@]}" --steps 20 --out "$tmp/two" && close "$tmp/one" "$tmp/two" 20
check "2 ranks x batch 4 follow 1 rank x batch 8: 20 losses within 1e-5 relative" $?
"$grape" train "${common[@]}" --steps 10 --grad-accum 2 --out "$tmp/one-acc"
mpi 2 "$grape" train "${common[@]}" --steps 10 --grad-accum 2 --out "$tmp/two-acc" &&
  close "$tmp/one-acc" "$tmp/two-acc" 10
check "with --grad-accum 2 too: 10 losses within 1e-5 relative" $?
mix=(--task-mix passkey:0.5,pairs=2,same=1)
"$grape" train "${common[@]}" "${mix[@]}" --steps 10 --out "$tmp/one-mix"
mpi 2 "$grape" train "${common[@]}" "${mix[@]}" --steps 10 --out "$tmp/two-mix" && close "$tmp/one-mix" "$tmp/two-mix" 10
check "with --task-mix passkey:0.5 too (each rank builds its rows of the one-process batch): 10 losses within 1e-5" $?

# 2. resume on 2 ranks == uninterrupted; on 1 rank within 1e-5
mpi 2 "$grape" train "${common[@]}" --steps 10 --warmup 2 --decay-steps 20 --out "$tmp/half"
cp -r "$tmp/half" "$tmp/half1"
mpi 2 "$grape" train "${common[@]}" --steps 20 --out "$tmp/half" --resume &&
  cmp -s "$tmp/half/model.safetensors" "$tmp/two/model.safetensors" && [ "$(losses "$tmp/half")" = "$(losses "$tmp/two")" ]
check "2 ranks: 10 steps + resume to 20 == 20 steps (checkpoint bytes and losses)" $?
"$grape" train "${common[@]}" --steps 20 --out "$tmp/half1" --resume && close "$tmp/half1" "$tmp/two" 20
check "a 2-rank checkpoint resumed on 1 rank follows the 2-rank run within 1e-5" $?

# 3. an injected divergence is caught at the next checkpoint
out=$(GRAPE_FAULT_DIVERGE=1:6 mpi 2 "$grape" train "${common[@]}" --steps 12 --save-interval 4 --out "$tmp/div" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && grep -q 'ranks diverged at step 8' <<<"$out" && grep -q 'on rank 1' <<<"$out" &&
  [ "$(step_of "$tmp/div")" = 4 ]
check "rank 1 perturbed at step 6: stopped at the step-8 checksum naming rank 1, exit 1, step-4 checkpoint kept" $?
grep 'diverged' <<<"$out" | sed 's/^/# /'

# 4. a rank count that does not divide the batch
out=$(mpi 3 "$grape" train "${common[@]}" --steps 2 --out "$tmp/three" 2>&1); rc=$?
[ "$rc" -ne 0 ] && grep -q -- '--batch 8 cannot be split across 3 ranks' <<<"$out" &&
  [ ! -e "$tmp/three/model.safetensors" ]
check "3 ranks with --batch 8: refused before training, naming the batch and the rank count" $?

# 5. compare: runs dealt to ranks == one process
budget=(--preset micro --steps 6 --eval-interval 3 --max-mult 2 --doc-bytes 256 --threads 1 --quiet)
"$grape" compare --pes rope,alibi,fox "${budget[@]}" --out "$tmp/cmp1" >/dev/null
mpi 2 "$grape" compare --pes rope,alibi,fox "${budget[@]}" --out "$tmp/cmp2" >/dev/null
ok=$?
for pe in rope alibi fox; do
  cmp -s "$tmp/cmp1/runs/$pe-s1/model.safetensors" "$tmp/cmp2/runs/$pe-s1/model.safetensors" || ok=1
done
[ -f "$tmp/cmp2/results.md" ] && [ "$ok" -eq 0 ]
check "mpirun -np 2 grape compare (3 runs dealt to 2 ranks): the checkpoints of a one-process compare, results.md" $?
mpi 2 "$grape" compare --pes rope "${budget[@]}" --ranks-per-job 2 --out "$tmp/cmpg" >/dev/null &&
  close "$tmp/cmp1/runs/rope-s1" "$tmp/cmpg/runs/rope-s1" 6 && grep -q '^mpirun -np 2 grape train' "$tmp/cmpg/commands.txt"
check "compare --ranks-per-job 2: one 2-rank run within 1e-5 of the one-process run; commands.txt says mpirun -np 2" $?

# 6. a SIGTERM to rank 1 alone stops both ranks after the same step; rank 0 saves that step
mpi 2 "$grape" train "${common[@]}" --steps 1000000 --save-interval 0 --out "$tmp/sig" >"$tmp/sig.log" 2>&1 &
launcher=$!
for _ in $(seq 600); do [ "$(cat "$tmp/sig/metrics.jsonl" 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.1; done
for p in $(pgrep -f -- "--out $tmp/sig"); do # rank 1: the process whose environment says so
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && kill -TERM "$p"
done
wait "$launcher"
saved=$(step_of "$tmp/sig")
grep -q "stopped at step $saved;" "$tmp/sig.log" && [ "$saved" -ge 3 ] &&
  [ "$(tail -1 "$tmp/sig/metrics.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])')" = "$saved" ]
check "SIGTERM to rank 1 alone: both ranks stop after the same step, rank 0 saves it (step $saved)" $?
