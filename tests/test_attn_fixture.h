// test_attn_fixture.h — random attention problems shared by the attention tests: q, k, v, dO and bias factors
// for every kind (random slopes, gates, FoX cumsums, probes), their double copies for the reference, and the
// comparison of the fast kernel against attn_forward_ref / attn_backward_ref.
#ifndef GRAPE_TESTS_ATTN_FIXTURE_H
#define GRAPE_TESTS_ATTN_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/attention_ref.h"
#include "ref/grape_testing.h"
#include "core/mathx.h"
#include "pe/bias_kinds.h"
#include "util.h"

#define FX_P 8 // GRAPE-AP probe dim of the official configs

typedef struct {
    int B, T, H, D, P;
    grape_bias_kind kind;
    size_t n, nf, np; // elements of q (B,T,H,D), of a per-token factor (B,T,H), of a probe (B,T,H,P)
    float *q, *k, *v, *dout;
    float *slope, *gate_q, *gate_k, *probe_q, *probe_k;
    double *cum;
    grape_bias_factors f;
    // double copies for the reference
    double *qd, *kd, *vd, *doutd, *sloped, *gqd, *gkd, *pqd, *pkd;
    attn_ref_factors fd;
} fx_problem;

static inline double *fx_to_double(const float *x, size_t n) {
    if (!x) return NULL;
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static inline float *fx_randn(size_t n, double std, t_rng *r) {
    float *x = malloc(n * sizeof *x);
    t_fill(x, n, std, r);
    return x;
}

static inline float *fx_uniform(size_t n, double lo, double hi, t_rng *r) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * t_uniform(r));
    return x;
}

// Random q, k, v, dout: (B,T,H,D); q, k entries ~ N(0, qk_std^2) (qk_std 1 gives sharp softmaxes at D = 64).
static inline void fx_inputs(fx_problem *p, grape_bias_kind kind, int B, int T, int H, int D, double qk_std, t_rng *r) {
    *p = (fx_problem){.B = B, .T = T, .H = H, .D = D, .P = FX_P, .kind = kind};
    p->nf = (size_t)B * T * H;
    p->n = p->nf * D;
    p->np = p->nf * FX_P;
    p->q = fx_randn(p->n, qk_std, r);
    p->k = fx_randn(p->n, qk_std, r);
    p->v = fx_randn(p->n, 1.0, r);
    p->dout = fx_randn(p->n, 1.0, r);
}

// Point p->f at the float factors and make the double copies the reference reads.
static inline void fx_bind(fx_problem *p) {
    // The library's list by index (bias_kinds.h): a test builds arbitrary factors as the handle itself.
    p->f = (grape_bias_factors){p->kind, p->B, p->T, p->H, FX_P, 0,
                                {p->slope, p->gate_q, p->gate_k, p->cum, p->probe_q, p->probe_k}};
    p->qd = fx_to_double(p->q, p->n);
    p->kd = fx_to_double(p->k, p->n);
    p->vd = fx_to_double(p->v, p->n);
    p->doutd = fx_to_double(p->dout, p->n);
    p->sloped = fx_to_double(p->slope, (size_t)p->H);
    p->gqd = fx_to_double(p->gate_q, p->nf);
    p->gkd = fx_to_double(p->gate_k, p->nf);
    p->pqd = fx_to_double(p->probe_q, p->np);
    p->pkd = fx_to_double(p->probe_k, p->np);
    p->fd = (attn_ref_factors){p->kind, FX_P, p->sloped, p->gqd, p->gkd, p->cum, p->pqd, p->pkd};
}

// A problem with random factors of the given kind (those its row of the kind table lists): slopes in [0.02, 0.6], gates in [0.1, 1.5], FoX cumsums of
// log sigmoid(N(2, 1.5)) logits, probes N(0, 4) (query) and N(0, 1) (key).
static inline void fx_make(fx_problem *p, grape_bias_kind kind, int B, int T, int H, int D, double qk_std, uint64_t seed) {
    t_rng r = t_seed(seed);
    fx_inputs(p, kind, B, T, H, D, qk_std, &r);
    const bias_kind *kd = bias_kind_of(kind);
    if (bias_kind_has(kd, BF_SLOPE)) p->slope = fx_uniform((size_t)H, 0.02, 0.6, &r);
    if (bias_kind_has(kd, BF_GATE_Q)) p->gate_q = fx_uniform(p->nf, 0.1, 1.5, &r);
    if (bias_kind_has(kd, BF_GATE_K)) p->gate_k = fx_uniform(p->nf, 0.1, 1.5, &r);
    if (bias_kind_has(kd, BF_CUM)) {
        p->cum = malloc(p->nf * sizeof *p->cum);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                double c = 0;
                for (int t = 0; t < T; t++) {
                    c += log_sigmoid_d(2.0 + 1.5 * t_normal(&r));
                    p->cum[((size_t)b * T + t) * H + h] = c;
                }
            }
    }
    if (bias_kind_has(kd, BF_PROBE_Q)) {
        p->probe_q = fx_randn(p->np, 2.0, &r);
        p->probe_k = fx_randn(p->np, 1.0, &r);
    }
    fx_bind(p);
}

static inline void fx_free(fx_problem *p) {
    void *all[] = {p->q, p->k, p->v, p->dout, p->slope, p->gate_q, p->gate_k, p->probe_q, p->probe_k, p->cum,
                   p->qd, p->kd, p->vd, p->doutd, p->sloped, p->gqd, p->gkd, p->pqd, p->pkd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static inline const grape_bias_factors *fx_bias(const fx_problem *p) { return p->kind ? &p->f : NULL; }
static inline const attn_ref_factors *fx_bias_ref(const fx_problem *p) { return p->kind ? &p->fd : NULL; }

// Gradient buffers of both precisions, zeroed, shaped like p's factors.
typedef struct {
    float *dq, *dk, *dv, *dslope, *dgq, *dgk, *dpq, *dpk;
    double *dcum;
    grape_bias_grads g;
    double *dqd, *dkd, *dvd, *dsloped, *dgqd, *dgkd, *dcumd, *dpqd, *dpkd;
    attn_ref_grads gd;
} fx_grads;

static inline void fx_grads_make(fx_grads *g, const fx_problem *p) {
    memset(g, 0, sizeof *g);
    g->dq = calloc(p->n, 4), g->dk = calloc(p->n, 4), g->dv = calloc(p->n, 4);
    g->dqd = calloc(p->n, 8), g->dkd = calloc(p->n, 8), g->dvd = calloc(p->n, 8);
    g->dslope = calloc((size_t)p->H, 4), g->dsloped = calloc((size_t)p->H, 8);
    if (p->gate_q) g->dgq = calloc(p->nf, 4), g->dgqd = calloc(p->nf, 8);
    if (p->gate_k) g->dgk = calloc(p->nf, 4), g->dgkd = calloc(p->nf, 8);
    if (p->cum) g->dcum = calloc(p->nf, 8), g->dcumd = calloc(p->nf, 8);
    if (p->probe_q) g->dpq = calloc(p->np, 4), g->dpqd = calloc(p->np, 8);
    if (p->probe_k) g->dpk = calloc(p->np, 4), g->dpkd = calloc(p->np, 8);
    g->g = (grape_bias_grads){p->kind, p->B, p->T, p->H, p->P, {g->dslope, g->dgq, g->dgk, g->dcum, g->dpq, g->dpk}};
    g->gd = (attn_ref_grads){g->dsloped, g->dgqd, g->dgkd, g->dcumd, g->dpqd, g->dpkd, NULL};
}

static inline void fx_grads_free(fx_grads *g) {
    void *all[] = {g->dq, g->dk, g->dv, g->dslope, g->dgq, g->dgk, g->dpq, g->dpk, g->dcum, g->dqd, g->dkd,
                   g->dvd, g->dsloped, g->dgqd, g->dgkd, g->dcumd, g->dpqd, g->dpkd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

// Fast kernel vs the double reference: out, lse, dq, dk, dv and every factor gradient, each normwise relative.
static inline void fx_check_vs_ref(const char *tag, const fx_problem *p, int window, double tol) {
    grape_attn_opts opts = {0.0f, window};
    size_t nl = (size_t)p->B * p->H * p->T;
    float *out = malloc(p->n * 4), *lse = malloc(nl * 4);
    double *outd = malloc(p->n * 8), *lsed = malloc(nl * 8);
    char name[160];
    grape_status st = grape_attn_forward(out, lse, p->q, p->k, p->v, fx_bias(p), &opts, p->B, p->T, p->H, p->D);
    snprintf(name, sizeof name, "%s forward status", tag);
    t_true(name, st == GRAPE_OK);
    double scale = 1.0 / sqrt((double)p->D);
    attn_forward_ref(outd, lsed, p->qd, p->kd, p->vd, fx_bias_ref(p), scale, window, p->B, p->T, p->H, p->D);
    snprintf(name, sizeof name, "%s out", tag);
    t_check(name, t_rel_err(out, outd, p->n), tol);
    snprintf(name, sizeof name, "%s lse", tag);
    t_check(name, t_rel_err(lse, lsed, nl), tol);

    fx_grads g;
    fx_grads_make(&g, p);
    st = grape_attn_backward(g.dq, g.dk, g.dv, p->kind ? &g.g : NULL, p->dout, out, lse, p->q, p->k, p->v,
                             fx_bias(p), &opts, p->B, p->T, p->H, p->D);
    snprintf(name, sizeof name, "%s backward status", tag);
    t_true(name, st == GRAPE_OK);
    attn_backward_ref(g.dqd, g.dkd, g.dvd, &g.gd, p->doutd, p->qd, p->kd, p->vd, fx_bias_ref(p), scale, window, p->B,
                      p->T, p->H, p->D);
    struct { const char *what; const float *a; const double *b; size_t n; } cmp[] = {
        {"dq", g.dq, g.dqd, p->n},          {"dk", g.dk, g.dkd, p->n},          {"dv", g.dv, g.dvd, p->n},
        {"dslope", g.dslope, g.dsloped, (size_t)p->H}, {"dgate_q", g.dgq, g.dgqd, p->nf},
        {"dgate_k", g.dgk, g.dgkd, p->nf},   {"dprobe_q", g.dpq, g.dpqd, p->np}, {"dprobe_k", g.dpk, g.dpkd, p->np},
    };
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        if (!cmp[i].a) continue;
        if (!strcmp(cmp[i].what, "dslope") && !bias_kind_has(bias_kind_of(p->kind), BF_SLOPE)) continue;
        snprintf(name, sizeof name, "%s %s", tag, cmp[i].what);
        t_check(name, t_rel_err(cmp[i].a, cmp[i].b, cmp[i].n), tol);
    }
    if (g.dcum) {
        snprintf(name, sizeof name, "%s dcum", tag);
        t_check(name, t_rel_err_dd(g.dcum, g.dcumd, p->nf), tol);
    }
    fx_grads_free(&g);
    free(out), free(lse), free(outd), free(lsed);
}

static inline const char *fx_kind_name(grape_bias_kind k) { return k ? bias_kind_of(k)->info.name : "none"; }

#endif
