// bench_attn.c — `grape bench attn`: GFLOP/s of the fused causal attention (src/attn) with any encoding's bias,
// forward or forward+backward, next to this machine's sgemm GFLOP/s measured in the same run (1024^3 through
// src/core/gemm.h), plus the process's peak RSS.
//
// Flop count (stated so numbers are comparable): a causal (t, j) pair costs 2D flops for q·k and 2D for p·v, so
//   forward  = 4 · B·H·D · pairs,   pairs = T(T+1)/2 (or the visible pairs under BCA),
//   backward = 2.5 × forward (q·k, dO·v, dS·k, Pᵀ·dO, dSᵀ·q: 10 · B·H·D · pairs),
// and "gflops" with --backward is (forward + backward flops) / (forward + backward time). Bias, softmax and exp
// work is not counted. q, k arrive already rotated: a rotation is O(T·D) outside the kernel and not timed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "attn/attn_internal.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/gemm.h"
#include "core/mem.h"

typedef struct {
    int B, T, H, D;
    grape_attn_opts opts;
    float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv;
    const grape_bias_factors *bias;
    grape_bias_grads *dbias;
    int st; // OR of the statuses of every call
} attn_case;

static void run_forward(void *ctx) {
    attn_case *c = ctx;
    c->st |= grape_attn_forward(c->out, c->lse, c->q, c->k, c->v, c->bias, &c->opts, c->B, c->T, c->H, c->D);
}

static void run_backward(void *ctx) {
    attn_case *c = ctx;
    c->st |= grape_attn_backward(c->dq, c->dk, c->dv, c->dbias, c->dout, c->out, c->lse, c->q, c->k, c->v, c->bias,
                                 &c->opts, c->B, c->T, c->H, c->D);
}

typedef struct {
    float *a, *b, *c;
} sgemm_case;

static void run_sgemm(void *ctx) {
    sgemm_case *g = ctx;
    gemm(g->c, g->a, g->b, 1024, 1024, 1024, 0, 0, 0.0f);
}

// GFLOP/s of a 1024^3 sgemm (the library GEMM), median of 5.
static double sgemm_gflops(void) {
    size_t n = (size_t)1024 * 1024;
    sgemm_case g = {mem_alloc(n * 4), mem_alloc(n * 4), mem_alloc(n * 4)};
    double r = -1;
    if (g.a && g.b && g.c) {
        for (size_t i = 0; i < n; i++) g.a[i] = (float)(i % 7) * 0.1f, g.b[i] = (float)(i % 5) * 0.1f;
        r = 2e-9 * 1024.0 * 1024.0 * 1024.0 / bench_median(run_sgemm, &g, 5);
    }
    mem_free(g.a), mem_free(g.b), mem_free(g.c);
    return r;
}

static double visible_pairs(int T, int window) {
    double n = 0;
    for (int t = 0; t < T; t++) n += (double)(t - attn_bca_lo(t, window) + 1);
    return n;
}

static float *randn(size_t n, uint64_t *s) { // xorshift, sum of 4 uniforms ~ N(0, 1/3)
    float *x = mem_alloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        float u = 0;
        for (int r = 0; r < 4; r++) {
            *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
            u += (float)(*s >> 40) * 0x1.0p-24f - 0.5f;
        }
        x[i] = u * 1.7320508f;
    }
    return x;
}

typedef struct {
    grape_pe *pe;
    float *params, *tok; // tok: every token input channel, each (B,T,width)
    void *fws, *gws;
    grape_bias_factors *f;
    grape_bias_grads *g;
} bench_bias;

// Factors of the named encoding's bias from its default parameters and random token inputs.
static int make_bias(bench_bias *bb, const char *name, const attn_case *c, uint64_t *seed) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, c->H, c->D);
    if (grape_pe_parse(&cfg, name) || grape_pe_create(&bb->pe, &cfg)) return 0;
    bb->params = mem_alloc((grape_pe_num_params(bb->pe) + 1) * sizeof(float));
    size_t ntok = (size_t)c->B * (size_t)c->T, E = 0;
    const float *in[8] = {0};
    int n_in = grape_pe_num_token_inputs(bb->pe);
    for (int i = 0; i < n_in && i < 8; i++) E += (size_t)grape_pe_token_input_info(bb->pe, i)->width;
    bb->tok = E ? randn(ntok * E, seed) : NULL;
    for (int i = 0, at = 0; i < n_in && i < 8; i++) {
        const grape_token_input_info *ti = grape_pe_token_input_info(bb->pe, i);
        in[i] = bb->tok + ntok * (size_t)at;
        for (size_t j = 0; !strcmp(ti->name, "gate") && j < ntok * (size_t)ti->width; j++)
            bb->tok[ntok * (size_t)at + j] += 3.0f; // FoX f ~ 0.95
        at += ti->width;
    }
    size_t wsb = grape_bias_workspace_bytes(bb->pe, c->B, c->T);
    bb->fws = mem_alloc(wsb);
    bb->gws = mem_alloc(wsb);
    if (!bb->params || !bb->fws || !bb->gws || grape_pe_init_params(bb->pe, bb->params, 1) ||
        grape_pe_prepare(bb->pe, bb->params) ||
        grape_bias_factors_forward(&bb->f, bb->fws, bb->pe, c->q, c->k, in, 0, c->B, c->T) ||
        grape_bias_grads_bind(&bb->g, bb->gws, bb->f))
        return 0;
    return 1;
}

static void free_bias(bench_bias *bb) {
    grape_pe_free(bb->pe);
    mem_free(bb->params), mem_free(bb->tok), mem_free(bb->fws);
    mem_free(bb->gws);
}

static int make_case(attn_case *c, int backward, uint64_t *seed) {
    size_t n = (size_t)c->B * c->T * c->H * c->D;
    c->q = randn(n, seed), c->k = randn(n, seed), c->v = randn(n, seed);
    c->out = mem_alloc(n * 4), c->lse = mem_alloc((size_t)c->B * c->H * c->T * 4);
    if (backward) c->dout = randn(n, seed), c->dq = mem_alloc(n * 4), c->dk = mem_alloc(n * 4), c->dv = mem_alloc(n * 4);
    return c->q && c->k && c->v && c->out && c->lse && (!backward || (c->dout && c->dq && c->dk && c->dv));
}

static void free_case(attn_case *c) {
    float *all[] = {c->q, c->k, c->v, c->out, c->lse, c->dout, c->dq, c->dk, c->dv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mem_free(all[i]);
}

int bench_attn(int argc, char **argv) {
    static const char *const known[] = {"--T", "--pe", "--B", "--H", "--D", "--bca", "--reps", NULL};
    static const char *const booleans[] = {"--json", "--backward", NULL};
    cli_args a = {argc, argv, known};
    long T = 1024, B = 1, H = 4, D = 64, W = 0, reps = 0;
    if (!args_check(&a, booleans) || !args_long(&a, "--T", 1, ATTN_MAX_T, &T) || !args_long(&a, "--B", 1, 4096, &B) ||
        !args_long(&a, "--H", 1, 4096, &H) || !args_long(&a, "--D", 2, ATTN_MAX_D, &D) ||
        !args_long(&a, "--bca", 0, ATTN_MAX_T, &W) || !args_long(&a, "--reps", 1, 101, &reps))
        return 1;
    const char *pe = args_str(&a, "--pe") ? args_str(&a, "--pe") : "nope";
    int json = args_flag(&a, "--json"), backward = args_flag(&a, "--backward");
    if (!reps) reps = T >= 16384 ? 1 : T >= 4096 ? 3 : 9; // ~seconds per setting at the largest T
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    attn_case c = {.B = (int)B, .T = (int)T, .H = (int)H, .D = (int)D, .opts = {0.0f, (int)W}};
    bench_bias bb = {0};
    int ok = make_case(&c, backward, &seed) && make_bias(&bb, pe, &c, &seed);
    if (!ok) {
        free_case(&c), free_bias(&bb);
        return cli_error("bench attn: %s", grape_last_error()[0] ? grape_last_error() : "out of memory");
    }
    c.bias = grape_bias_num_factors(bb.f) ? bb.f : NULL;
    c.dbias = c.bias ? bb.g : NULL;
    double sg = sgemm_gflops();
    double fwd_flops = 4.0 * (double)(B * H * D) * visible_pairs((int)T, attn_bca_window(&c.opts, (int)T));
    double tf = bench_median(run_forward, &c, (int)reps), tb = backward ? bench_median(run_backward, &c, (int)reps) : 0;
    double gflops = 1e-9 * fwd_flops * (backward ? 3.5 : 1.0) / (tf + tb);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0;
    if (json)
        printf("{\"pe\": \"%s\", \"B\": %ld, \"T\": %ld, \"H\": %ld, \"D\": %ld, \"bca\": %ld, \"backward\": %d, "
               "\"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"gflops\": %.1f, \"sgemm_gflops\": %.1f, \"pct_sgemm\": %.1f, "
               "\"peak_rss_mib\": %.1f}\n",
               pe, B, T, H, D, W, backward, 1e3 * tf, 1e3 * tb, gflops, sg, 100.0 * gflops / sg, rss_mib);
    else {
        printf("attn %s B=%ld T=%ld H=%ld D=%ld bca=%ld: forward %.3f ms", pe, B, T, H, D, W, 1e3 * tf);
        if (backward) printf(", backward %.3f ms", 1e3 * tb);
        printf(", %.1f GFLOP/s (%.0f%% of sgemm %.1f GFLOP/s), peak RSS %.0f MiB\n", gflops, 100.0 * gflops / sg, sg,
               rss_mib);
    }
    free_case(&c), free_bias(&bb);
    return c.st ? cli_error("bench attn: %s", grape_last_error()) : 0;
}
