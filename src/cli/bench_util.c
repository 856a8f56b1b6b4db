// bench_util.c — see bench_util.h.
#include "cli/bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <omp.h>

#include "core/prof.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(void (*fn)(void *ctx), void *ctx, int reps) {
    if (reps < 1) reps = 1;
    if (reps > 101) reps = 101;
    double t[101];
    fn(ctx);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        fn(ctx);
        t[r] = bench_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

// Independent accumulators: FMA latency 4 x 2 pipes (AMD Zen 4) = 8 in flight; 16 leave slack, stay in registers.
#define PEAK_ACC 16
// ~0.1 s per thread per rep: long enough that clock ramp-up and scheduler noise do not dominate.
#define PEAK_ITERS 20000000L
#define PEAK_REPS 5

// One thread's FMA loop; returns a value that depends on every accumulator so nothing is optimised away.
static float fma_loop(long iters, float seed) {
#ifdef __AVX512F__
    __m512 acc[PEAK_ACC];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_set1_ps(seed + (float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float s = 0;
    for (int i = 0; i < PEAK_ACC; i++) s += _mm512_reduce_add_ps(acc[i]);
    return s;
#else
    float acc[PEAK_ACC][16];
    for (int i = 0; i < PEAK_ACC; i++)
        for (int l = 0; l < 16; l++) acc[i][l] = seed + (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < PEAK_ACC; i++)
#pragma omp simd
            for (int l = 0; l < 16; l++) acc[i][l] = acc[i][l] * 0.999999f + 1e-7f;
    float s = 0;
    for (int i = 0; i < PEAK_ACC; i++)
        for (int l = 0; l < 16; l++) s += acc[i][l];
    return s;
#endif
}

volatile float bench_sink;

double bench_thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The peak is a property of the machine, so each thread's rate is taken over its own CPU time (time it was
// actually running) and the rates are summed: other processes on the 2 cores then no longer lower the peak
// (a wall-clock peak read 113 GFLOP/s instead of ~230 while other builds ran). Best of PEAK_REPS reps.
double bench_fma_peak_gflops(void) {
    long iters = PEAK_ITERS;
    double best = 0;
    // Start the OpenMP thread pool outside the timed region: the first parallel region spawns threads, which
    // cost the old 3-rep, 2M-iteration loop ~15% (it read 196 GFLOP/s where 230 is sustained on 2 threads).
#pragma omp parallel
    {
        float s = fma_loop(iters / 10, 1.0f);
#pragma omp atomic
        bench_sink += s;
    }
    double per_thread_flops = 2.0 * 16.0 * PEAK_ACC * (double)iters;
    for (int rep = 0; rep < PEAK_REPS; rep++) {
        double rate = 0, top = 0;
        int nthreads = 1;
#pragma omp parallel reduction(+ : rate) reduction(max : top)
        {
#pragma omp single
            nthreads = omp_get_num_threads();
            double t0 = bench_thread_cpu_now();
            float s = fma_loop(iters, (float)omp_get_thread_num());
            double r = per_thread_flops / (bench_thread_cpu_now() - t0);
            rate += r;
            top = r;
#pragma omp atomic
            bench_sink += s;
        }
        // More threads than cores cannot add flops: cap at one fastest thread per core used.
        int cores = nthreads < omp_get_num_procs() ? nthreads : omp_get_num_procs();
        if (rate > cores * top) rate = cores * top;
        if (rate > best) best = rate;
    }
    return best * 1e-9;
}

void bench_profile_print(double units, const char *unit, int json) {
    double total = 0;
    for (int op = 0; op < PROF_COUNT; op++) total += prof_seconds((prof_op)op);
    if (json) {
        printf("{\"profile_ms_per_%s\": {", unit);
        for (int op = 0; op < PROF_COUNT; op++)
            printf("%s\"%s\": %.3f", op ? ", " : "", prof_name((prof_op)op), 1e3 * prof_seconds((prof_op)op) / units);
        printf("}, \"total_ms\": %.3f}\n", 1e3 * total / units);
        return;
    }
    printf("| op | ms per %s | share | calls per %s |\n|---|---|---|---|\n", unit, unit);
    for (int op = 0; op < PROF_COUNT; op++) {
        double s = prof_seconds((prof_op)op);
        printf("| %s | %.2f | %.1f%% | ", prof_name((prof_op)op), 1e3 * s / units, total > 0 ? 100 * s / total : 0);
        op == PROF_OTHER ? printf("– |\n") : printf("%.0f |\n", (double)prof_calls((prof_op)op) / units);
    }
    printf("| total | %.2f | 100%% | |\n", 1e3 * total / units);
}
