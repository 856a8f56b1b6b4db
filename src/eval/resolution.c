// resolution.c — LEX attention resolution R(s) (resolution.h): every pre-softmax score of a window, summed by
// distance, block by block of query rows (one GEMM per block, the bias materialised by bias_block).
#include "eval/resolution.h"

#include <math.h>
#include <string.h>

#include "attn/attn_internal.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "model/model_internal.h"
#include "pe/bias_internal.h"

#define RES_ROWS 64 // query rows per block

double resolution_R(const double *s, int N) {
    if (N < 2) return NAN;
    double mx = s[0], num = 0, den = 0;
    for (int i = 1; i < N; i++) mx = s[i] > mx ? s[i] : mx;
    for (int i = 0; i < N; i++) { // e^{s - max}: R is a ratio of degree-2 forms, so the shift cancels
        double a = exp(s[i] - mx);
        den += a;
        if (i + 1 < N) num += a * (a - exp(s[i + 1] - mx));
    }
    return num / (den * den);
}

grape_status resolution_create(resolution_acc *r, const grape_model *m, int max_T) {
    *r = (resolution_acc){.L = m->L, .H = m->H, .D = m->D, .max_T = max_T,
                          .scale = attn_scale(&m->attn_opts, m->D), .window = m->attn_opts.bca_window};
    size_t T = (size_t)max_T, D = (size_t)r->D;
    r->prof = mem_alloc(T * sizeof(double));
    r->sum = mem_alloc((size_t)r->L * (size_t)r->H * T * sizeof(double));
    r->count = mem_alloc((size_t)r->L * T * sizeof(int64_t));
    r->qh = mem_alloc(T * D * sizeof(float));
    r->kh = mem_alloc(T * D * sizeof(float));
    r->S = mem_alloc(RES_ROWS * T * sizeof(float));
    r->bias = mem_alloc(RES_ROWS * T * sizeof(float));
    if (!r->prof || !r->sum || !r->count || !r->qh || !r->kh || !r->S || !r->bias) {
        resolution_free(r);
        return GRAPE_ERR_NOMEM;
    }
    return GRAPE_OK;
}

void resolution_free(resolution_acc *r) {
    mem_free(r->prof);
    mem_free(r->sum);
    mem_free(r->count);
    mem_free(r->qh);
    mem_free(r->kh);
    mem_free(r->S);
    mem_free(r->bias);
    *r = (resolution_acc){0};
}

// Head h of x (T,H,D) into out (T,D).
static void gather_head(float *out, const float *x, int h, int T, int H, int D) {
    for (int t = 0; t < T; t++)
        memcpy(out + (size_t)t * D, x + ((size_t)t * H + (size_t)h) * D, (size_t)D * sizeof(float));
}

// Rows [t0, t0+nq) of head h: S = scale q k^T (+ bias) over keys [0, t0+nq), summed by distance t - j.
static grape_status score_block(resolution_acc *r, double *sum, int64_t *count, const grape_bias_factors *bias, int h,
                                int t0, int nq, int T) {
    int nk = t0 + nq, W = r->window > 0 && T > r->window ? r->window : 0;
    grape_status st = gemm_ld(r->S, nk, r->qh + (size_t)t0 * r->D, r->D, r->kh, r->D, nq, nk, r->D, 0, 1, r->scale,
                              0.0f);
    if (st) return st;
    if (bias) bias_block(r->bias, bias, 0, h, t0, nq, 0, nk);
    for (int i = 0; i < nq; i++) {
        int t = t0 + i;
        const float *s = r->S + (size_t)i * nk, *b = r->bias + (size_t)i * nk;
        for (int j = (int)attn_bca_lo(t, W); j <= t; j++) {
            sum[t - j] += (double)s[j] + (bias ? (double)b[j] : 0.0);
            if (count) count[t - j]++;
        }
    }
    return GRAPE_OK;
}

grape_status resolution_observe(void *ctx, int layer, const float *q, const float *k, const grape_bias_factors *bias,
                                 int T) {
    resolution_acc *r = ctx;
    if (T > r->max_T) return error_fail(GRAPE_ERR_ARG, "resolution: window %d > planned %d", T, r->max_T);
    for (int h = 0; h < r->H; h++) {
        gather_head(r->qh, q, h, T, r->H, r->D);
        gather_head(r->kh, k, h, T, r->H, r->D);
        double *sum = r->sum + ((size_t)layer * r->H + (size_t)h) * (size_t)r->max_T;
        int64_t *count = h == 0 ? r->count + (size_t)layer * (size_t)r->max_T : NULL;
        for (int t0 = 0; t0 < T; t0 += RES_ROWS) {
            grape_status st = score_block(r, sum, count, bias, h, t0, T - t0 < RES_ROWS ? T - t0 : RES_ROWS, T);
            if (st) return st;
        }
    }
    return GRAPE_OK;
}

double resolution_layer(const resolution_acc *r, int l) {
    const int64_t *count = r->count + (size_t)l * (size_t)r->max_T;
    int N = 0;
    while (N < r->max_T && count[N] > 0) N++;
    double *s = r->prof, total = 0;
    for (int h = 0; h < r->H; h++) {
        const double *sum = r->sum + ((size_t)l * r->H + (size_t)h) * (size_t)r->max_T;
        for (int n = 0; n < N; n++) s[n] = sum[n] / (double)count[n];
        total += resolution_R(s, N);
    }
    return total / r->H;
}

double resolution_mean(const resolution_acc *r) {
    double total = 0;
    for (int l = 0; l < r->L; l++) total += resolution_layer(r, l);
    return total / r->L;
}
