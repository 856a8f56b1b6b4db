# bench/common.sh — sourced by bench/attn.sh, train.sh and eval.sh: the benchmark lock, the PyTorch peer, the load
# average and the per-round JSON lines every table is computed from.

# Re-run the calling script ("$0" "$@") under /tmp/grape-bench.lock unless this process tree already holds it
# (flock is not re-entrant across processes).
bench_lock() {
  if [ -z "${GRAPE_BENCH_LOCKED:-}" ]; then
    GRAPE_BENCH_LOCKED=1 exec flock /tmp/grape-bench.lock "$@"
  fi
}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_load() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_torch SCRIPT ARGS... — run a bench/torch_*.py in the venv of bench/torch_venv.sh (after bench_torch_setup),
# without the CUDA wheel's warnings that a CPU run prints.
bench_torch_setup() { bench_py=$("$bench_dir/torch_venv.sh"); }
bench_torch() {
  "$bench_py" "$bench_dir/$1" "${@:2}" 2> >(grep -v -e 'No CUDA runtime' -e 'triton not found' >&2)
}

# ... | bench_record OUT ROUND [KEY VALUE] — append JSON lines to OUT with "round" (and KEY) added.
bench_record() {
  local extra=""
  [ $# -lt 4 ] || extra=" \"$3\": $4,"
  sed "s/^{/{\"round\": $2,$extra /" >>"$1"
}
