// bench_pe.c — `grape bench pe`: cost of every position encoding per token per head, forward and backward, at
// head dims 64 and 128, and its ratio to RoPE. Rotations time grape_rot_forward/backward on q; biases time
// grape_bias_factors_forward and grape_bias_factors_backward (the per-token factor work; the O(T²) bias itself is
// generated inside the attention tiles and belongs to `grape bench attn`).
// Goals (GRAPE §5 claims): every commuting rotation <= 1.5x rope, grape-m-nc <= (r/2 + 1)x rope.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/mem.h"
#include "grape.h"

static const char *const encodings[] = {"rope",      "xpos",      "grape-m",    "grape-m-ctx", "grape-m-basis",
                                        "grape-m-nc", "alibi",     "fox",        "grape-a-k",   "grape-a-q",
                                        "grape-a-qk", "grape-ap"};
#define N_ENC (int)(sizeof encodings / sizeof encodings[0])

typedef struct {
    grape_pe *pe;
    const grape_pe_config *cfg;
    int B, T, H, D;
    grape_positions pos;
    const float *in[8];  // token inputs: logit for the (B,T,H)-or-narrower channels, probe for GRAPE-AP's
    float *din[8];
    grape_bias_factors *f;
    grape_bias_grads *g;
    float *q, *k, *y, *dy, *dq, *dk, *params, *dparams, *logit, *probe, *dlogit, *dprobe;
    double *phase, *dphase;
    void *ws, *gws;
    grape_arena arena;
} pe_bench;

// Deterministic data in [-1, 1) without a library RNG (the values only need to be ordinary).
static void fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

// Plan (arena.base NULL) or hand out every buffer of one encoding's run.
static void take_buffers(pe_bench *b, size_t np, size_t ws) {
    size_t n3 = (size_t)b->B * (size_t)b->T * (size_t)b->H, n4 = n3 * (size_t)b->D, f = sizeof(float);
    grape_arena *a = &b->arena;
    b->q = arena_take(a, n4 * f), b->k = arena_take(a, n4 * f), b->y = arena_take(a, n4 * f);
    b->dy = arena_take(a, n4 * f), b->dq = arena_take(a, n4 * f), b->dk = arena_take(a, n4 * f);
    b->params = arena_take(a, (np + 1) * f), b->dparams = arena_take(a, (np + 1) * f);
    b->logit = arena_take(a, n3 * f), b->dlogit = arena_take(a, n3 * f);
    b->probe = arena_take(a, n3 * 8 * f), b->dprobe = arena_take(a, n3 * 8 * f);
    b->phase = arena_take(a, n3 * sizeof(double)), b->dphase = arena_take(a, n3 * sizeof(double));
    b->ws = arena_take(a, ws), b->gws = arena_take(a, ws);
}

// Give the bound factor gradients nonzero values so no backward can skip work.
static void fill_grads(const grape_bias_grads *g, const grape_bias_factors *f) {
    grape_channel c;
    for (int i = 0; i < grape_bias_num_factors(f) && !grape_bias_grad(g, i, &c); i++) {
        size_t n = 1;
        for (int d = 0; d < c.ndim; d++) n *= (size_t)c.shape[d];
        if (c.dtype == GRAPE_F32) fill(c.data, n, (uint32_t)i + 1);
        for (size_t j = 0; c.dtype == GRAPE_F64 && j < n; j++) ((double *)c.data)[j] = 1e-3 * (double)(j % 17);
    }
}

static grape_status setup(pe_bench *b, const char *name) {
    grape_pe_config c;
    grape_pe_config_default(&c, b->H, b->D);
    grape_status st = grape_pe_parse(&c, name);
    if (st || (st = grape_pe_create(&b->pe, &c))) return st;
    b->cfg = grape_pe_get_config(b->pe);
    size_t np = grape_pe_num_params(b->pe), ws = grape_bias_workspace_bytes(b->pe, b->B, b->T);
    b->arena = (grape_arena){0};
    take_buffers(b, np, ws);
    if (!(b->arena.base = mem_alloc(b->arena.used))) return GRAPE_ERR_NOMEM;
    b->arena.size = b->arena.used, b->arena.used = 0;
    take_buffers(b, np, ws);
    size_t n3 = (size_t)b->B * (size_t)b->T * (size_t)b->H, n4 = n3 * (size_t)b->D;
    fill(b->q, n4, 11), fill(b->k, n4, 12), fill(b->dy, n4, 13), fill(b->logit, n3, 14), fill(b->probe, n3 * 8, 15);
    if ((st = grape_pe_init_params(b->pe, b->params, 42)) || (st = grape_pe_prepare(b->pe, b->params))) return st;
    b->pos = (grape_positions){0, 0.0, NULL};
    if (c.rot == GRAPE_ROT_GRAPE_M_CTX) {
        if ((st = grape_phase_forward(b->phase, b->logit, b->pe, b->B, b->T))) return st;
        b->pos.phase = b->phase;
    }
    for (int i = 0; i < grape_pe_num_token_inputs(b->pe) && i < 8; i++) {
        int wide = grape_pe_token_input_info(b->pe, i)->width > b->H;
        b->in[i] = wide ? b->probe : b->logit;
        b->din[i] = wide ? b->dprobe : b->dlogit;
    }
    if (c.bias == GRAPE_BIAS_NONE) return GRAPE_OK;
    if ((st = grape_bias_factors_forward(&b->f, b->ws, b->pe, b->q, b->k, b->in, 0, b->B, b->T)) ||
        (st = grape_bias_grads_bind(&b->g, b->gws, b->f)))
        return st;
    fill_grads(b->g, b->f);
    return GRAPE_OK;
}

static void teardown(pe_bench *b) {
    grape_pe_free(b->pe);
    mem_free(b->arena.base);
    b->pe = NULL, b->arena.base = NULL;
}

static void rot_fwd(void *ctx) {
    pe_bench *b = ctx;
    grape_rot_forward(b->y, b->q, b->pe, &b->pos, GRAPE_QUERY, b->B, b->T);
}

static void rot_bwd(void *ctx) {
    pe_bench *b = ctx;
    grape_rot_backward(b->dq, b->dparams, b->pos.phase ? b->dphase : NULL, b->dy, b->q, b->pe, &b->pos,
                       GRAPE_QUERY, b->B, b->T);
}

static void bias_fwd(void *ctx) {
    pe_bench *b = ctx;
    grape_bias_factors_forward(&b->f, b->ws, b->pe, b->q, b->k, b->in, 0, b->B, b->T);
}

static void bias_bwd(void *ctx) {
    pe_bench *b = ctx;
    grape_bias_factors_backward(b->dparams, b->dq, b->dk, b->din, b->g, b->f, b->pe, b->q, b->k, b->in);
}

// --- CPU-time medians. On a shared machine other processes preempt the benchmark; with one thread the
// thread's own CPU time excludes that, so the per-kernel cost stays measurable while others compile and test.

#define CPU_REPS_MAX 101

typedef struct {
    void (*fn)(void *ctx);
    void *ctx;
    int n;
    double t[CPU_REPS_MAX + 1];
} cpu_timer;

static double thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void cpu_timed(void *p) {
    cpu_timer *c = p;
    double t0 = thread_cpu_now();
    c->fn(c->ctx);
    if (c->n <= CPU_REPS_MAX) c->t[c->n++] = thread_cpu_now() - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median seconds of fn: wall clock (bench_median), or the calling thread's CPU time when cpu is set.
static double median_time(void (*fn)(void *ctx), void *ctx, int reps, int cpu) {
    if (!cpu) return bench_median(fn, ctx, reps);
    cpu_timer c = {fn, ctx, 0, {0}};
    bench_median(cpu_timed, &c, reps); // its first call is the warm-up: c.t[0] is dropped
    qsort(c.t + 1, (size_t)(c.n - 1), sizeof(double), cmp_double);
    return c.t[1 + (c.n - 1) / 2];
}

typedef struct {
    double fwd, bwd; // ns per token per head
    double goal;     // max ratio to rope (0: none)
} pe_timing;

static int time_encoding(pe_timing *out, const char *name, int B, int T, int H, int D, int reps, int cpu) {
    pe_bench b = {.B = B, .T = T, .H = H, .D = D};
    grape_status st = setup(&b, name);
    if (st) {
        cli_error("bench pe: %s at D=%d: %s", name, D, grape_last_error());
        teardown(&b);
        return 0;
    }
    int rot = b.cfg->bias == GRAPE_BIAS_NONE;
    double per = 1e9 / ((double)B * T * H);
    out->fwd = median_time(rot ? rot_fwd : bias_fwd, &b, reps, cpu) * per;
    out->bwd = median_time(rot ? rot_bwd : bias_bwd, &b, reps, cpu) * per;
    out->goal = !rot ? 0.0 : b.cfg->rot == GRAPE_ROT_GRAPE_M_NC ? b.cfg->nc_rank / 2.0 + 1.0 : 1.5;
    teardown(&b);
    return 1;
}

static void print_row(int json, int first, const char *name, int D, const pe_timing *t, const pe_timing *rope) {
    double rf = t->fwd / rope->fwd, rb = t->bwd / rope->bwd;
    const char *verdict = t->goal == 0 ? "-" : (rf <= t->goal && rb <= t->goal) ? "ok" : "MISS";
    if (json) {
        printf("%s{\"encoding\": \"%s\", \"D\": %d, \"threads\": %d, \"fwd_ns\": %.3f, \"bwd_ns\": %.3f, "
               "\"fwd_x_rope\": %.3f, \"bwd_x_rope\": %.3f, \"goal_x_rope\": %.2f, \"verdict\": \"%s\"}",
               first ? "" : ",\n", name, D, omp_get_max_threads(), t->fwd, t->bwd, rf, rb, t->goal, verdict);
        return;
    }
    char goal[16] = "-";
    if (t->goal > 0) snprintf(goal, sizeof goal, "<= %.1fx", t->goal);
    printf("%-14s %4d %10.2f %10.2f %9.2fx %9.2fx  %-8s %s\n", name, D, t->fwd, t->bwd, rf, rb, goal, verdict);
}

int bench_pe(int argc, char **argv) {
    static const char *const known[] = {"--D", "--B", "--T", "--H", "--reps", "--threads", "--clock", "--pe", NULL};
    static const char *const booleans[] = {"--json", NULL};
    cli_args a = {argc, argv, known};
    long Dsel = 0, B = 2, T = 2048, H = 8, reps = 21, threads = omp_get_max_threads();
    if (!args_check(&a, booleans) || !args_long(&a, "--D", 2, 1024, &Dsel) || !args_long(&a, "--B", 1, 1024, &B) ||
        !args_long(&a, "--T", 1, 1 << 20, &T) || !args_long(&a, "--H", 1, 1024, &H) ||
        !args_long(&a, "--reps", 1, 101, &reps) || !args_long(&a, "--threads", 1, 1024, &threads))
        return 1;
    // Other processes on a small shared machine stall a 2-thread parallel region for a whole time slice; --threads 1
    // with the CPU clock gives the per-kernel cost free of that noise.
    omp_set_num_threads((int)threads);
    const char *clock = args_str(&a, "--clock");
    if (clock && strcmp(clock, "cpu") && strcmp(clock, "wall"))
        return cli_error("bench pe: --clock wants cpu or wall, got '%s'", clock);
    int cpu = clock ? !strcmp(clock, "cpu") : threads == 1;
    if (cpu && threads != 1) return cli_error("bench pe: --clock cpu measures one thread; add --threads 1");
    if (Dsel % 2) return cli_error("bench pe: --D must be even, got %ld", Dsel);
    int json = args_flag(&a, "--json"), Ds[2] = {64, 128}, nD = Dsel ? 1 : 2, first = 1, ok = 1, n_enc = N_ENC;
    // --pe NAME (options allowed): that encoding alone, beside rope
    const char *list[N_ENC], *one = args_str(&a, "--pe");
    for (int e = 0; e < N_ENC; e++) list[e] = encodings[e];
    if (one) list[1] = one, n_enc = 2;
    if (Dsel) Ds[0] = (int)Dsel;
    if (json) printf("[");
    for (int di = 0; di < nD; di++) {
        pe_timing t[N_ENC] = {{0}};
        if (!json)
            printf("\nencodings at D=%d: B=%ld T=%ld H=%ld (%ld token-heads), %ld threads, %s clock, median of %ld; "
                   "ns per token per head\n%-14s %4s %10s %10s %10s %10s  %-8s %s\n",
                   Ds[di], B, T, H, B * T * H, threads, cpu ? "cpu" : "wall", reps, "encoding", "D", "forward", "backward", "fwd/rope",
                   "bwd/rope", "goal", "verdict");
        for (int e = 0; e < n_enc; e++) {
            if (!time_encoding(&t[e], list[e], (int)B, (int)T, (int)H, Ds[di], (int)reps, cpu)) {
                ok = 0;
                continue;
            }
            print_row(json, first, list[e], Ds[di], &t[e], &t[0]);
            first = 0;
        }
    }
    if (json) printf("]\n");
    return ok ? 0 : 1;
}
