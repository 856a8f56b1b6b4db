// bench_util.h — timing helpers shared by every `grape bench` subcommand: a monotonic clock, medians of
// repeated runs (a shared machine is noisy), and the machine's fp32 FMA peak measured in the same run.
#ifndef GRAPE_CLI_BENCH_UTIL_H
#define GRAPE_CLI_BENCH_UTIL_H

double bench_now(void); // seconds, monotonic
double bench_thread_cpu_now(void); // seconds of CPU time of the calling thread
// Run fn(ctx) `reps` times after one warm-up call and return the median wall time in seconds.
double bench_median(void (*fn)(void *ctx), void *ctx, int reps);
// Measured fp32 FMA peak of this machine in GFLOP/s with all OpenMP threads (2 flops per FMA lane).
double bench_fma_peak_gflops(void);
// The per-op table of a profile (core/prof.h) over `units` steps or windows: ms per unit and share of the total,
// as Markdown rows, or with json one object {"op": ms per unit, ...}.
void bench_profile_print(double units, const char *unit, int json);

#endif
