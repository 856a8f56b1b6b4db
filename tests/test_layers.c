// test_layers.c — the model's layer kernels: every fast forward vs its double reference twin, every backward vs
// 4-point finite differences of the reference (in double), backward accumulation (+=), and the GEMM vs gemm_ref.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gemm.h"
#include "core/simd.h"
#include "model/layers.h"
#include "ref/layers_ref.h"
#include "util.h"

#define FD_TOL 1e-4  // float backward vs double finite differences, normwise relative
#define FWD_TOL 1e-5 // float forward vs double reference, normwise relative
#define FD_STEP 1e-3

// A kernel under test: n inputs packed into one vector p; `ref` is sum(r ⊙ forward_ref(p)) in double;
// `grad` accumulates the float backward of the same objective into g (n floats) from float inputs pf.
typedef struct layer_case {
    const char *name;
    size_t n;    // packed inputs
    size_t nout; // outputs of the forward (length of r)
    double (*ref)(const double *p, void *self);
    void (*grad)(float *g, const float *pf, const struct layer_case *lc);
    void (*fwd)(float *out, const float *pf, const struct layer_case *lc);
    int64_t N;
    int C, V;
    double *r; // (nout) random output weights
    uint8_t *tok;
} layer_case;

static double weighted(const double *y, const double *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += y[i] * r[i];
    return s;
}

static float *to_float(const double *x, size_t n) {
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

// --- RMSNorm: p = [x (N,C) | g (C)]
static double rms_ref(const double *p, void *self) {
    layer_case *lc = self;
    double *y = malloc(lc->nout * sizeof *y);
    rmsnorm_forward_ref(y, p, p + lc->N * lc->C, lc->N, lc->C, 1e-5);
    double s = weighted(y, lc->r, lc->nout);
    free(y);
    return s;
}
static void rms_fwd(float *out, const float *pf, const layer_case *lc) {
    float rstd[64];
    rmsnorm_forward(out, rstd, pf, pf + lc->N * lc->C, lc->N, lc->C, 1e-5f);
}
static void rms_grad(float *g, const float *pf, const layer_case *lc) {
    float rstd[64], *y = malloc(lc->nout * sizeof *y), *r = to_float(lc->r, lc->nout);
    rmsnorm_forward(y, rstd, pf, pf + lc->N * lc->C, lc->N, lc->C, 1e-5f);
    rmsnorm_backward(g, g + lc->N * lc->C, r, pf, pf + lc->N * lc->C, rstd, lc->N, lc->C);
    free(y);
    free(r);
}

// --- SwiGLU: p = h (N,2C)
static double swiglu_ref_obj(const double *p, void *self) {
    layer_case *lc = self;
    double *y = malloc(lc->nout * sizeof *y);
    swiglu_forward_ref(y, p, lc->N, lc->C);
    double s = weighted(y, lc->r, lc->nout);
    free(y);
    return s;
}
static void swiglu_fwd(float *out, const float *pf, const layer_case *lc) { swiglu_forward(out, pf, lc->N, lc->C); }
static void swiglu_grad(float *g, const float *pf, const layer_case *lc) {
    float *r = to_float(lc->r, lc->nout);
    swiglu_backward(g, r, pf, lc->N, lc->C);
    free(r);
}

// --- Embedding: p = wte (V,C)
static double emb_ref(const double *p, void *self) {
    layer_case *lc = self;
    double *y = malloc(lc->nout * sizeof *y);
    embedding_forward_ref(y, lc->tok, p, lc->N, lc->C);
    double s = weighted(y, lc->r, lc->nout);
    free(y);
    return s;
}
static void emb_fwd(float *out, const float *pf, const layer_case *lc) {
    embedding_forward(out, lc->tok, pf, lc->N, lc->C);
}
static void emb_grad(float *g, const float *pf, const layer_case *lc) {
    (void)pf;
    float *r = to_float(lc->r, lc->nout);
    embedding_backward(g, r, lc->tok, lc->N, lc->C);
    free(r);
}

// --- Cross-entropy: p = logits (N,V); the objective is the mean loss itself (nout = 1, r = {1}).
static double ce_ref(const double *p, void *self) {
    layer_case *lc = self;
    return cross_entropy_forward_ref(p, lc->tok, lc->N, lc->V);
}
static void ce_fwd(float *out, const float *pf, const layer_case *lc) {
    float lse[64];
    double loss;
    cross_entropy_forward(&loss, lse, pf, lc->tok, lc->N, lc->V);
    out[0] = (float)loss;
}
static void ce_grad(float *g, const float *pf, const layer_case *lc) {
    float lse[64];
    double loss;
    cross_entropy_forward(&loss, lse, pf, lc->tok, lc->N, lc->V);
    cross_entropy_backward(g, pf, lse, lc->tok, 1.0f, lc->N, lc->V);
}

// --- A bias-free linear layer as the model runs it through gemm: p = [x (N,C) | w (V,C)], y = x w^T: (N,V);
// backward dw += dy^T x, dx += dy w.
static double lin_ref(const double *p, void *self) {
    layer_case *lc = self;
    double *y = malloc(lc->nout * sizeof *y);
    gemm_ref(y, p, p + lc->N * lc->C, lc->N, lc->V, lc->C, 0, 1, 0.0);
    double s = weighted(y, lc->r, lc->nout);
    free(y);
    return s;
}
static void lin_fwd(float *out, const float *pf, const layer_case *lc) {
    gemm(out, pf, pf + lc->N * lc->C, lc->N, lc->V, lc->C, 0, 1, 0.0f);
}
static void lin_grad(float *g, const float *pf, const layer_case *lc) {
    float *r = to_float(lc->r, lc->nout);
    gemm(g + lc->N * lc->C, r, pf, lc->V, lc->C, lc->N, 1, 0, 1.0f);
    gemm(g, r, pf + lc->N * lc->C, lc->N, lc->C, lc->V, 0, 0, 1.0f);
    free(r);
}

// Forward vs reference, backward vs finite differences, and a second backward doubling the gradient.
static void run_case(layer_case *lc, t_rng *rng) {
    double *p = malloc(lc->n * sizeof *p), *fd = malloc(lc->n * sizeof *fd);
    t_fill_d(p, lc->n, 1.0, rng);
    if (lc->r) t_fill_d(lc->r, lc->nout, 1.0, rng);
    float *pf = to_float(p, lc->n);
    for (size_t i = 0; i < lc->n; i++) p[i] = pf[i]; // the reference sees exactly the float inputs
    char label[96];

    // Forward: with r = e_i the objective is output i, so the reference output is read off one at a time.
    double *yref = malloc(lc->nout * sizeof *yref), *rsave = lc->r;
    float *y = malloc(lc->nout * sizeof *y);
    lc->fwd(y, pf, lc);
    if (rsave) {
        double *e = calloc(lc->nout, sizeof *e);
        lc->r = e;
        for (size_t i = 0; i < lc->nout; i++) {
            e[i] = 1;
            yref[i] = lc->ref(p, lc);
            e[i] = 0;
        }
        lc->r = rsave;
        free(e);
    } else {
        yref[0] = lc->ref(p, lc);
    }
    snprintf(label, sizeof label, "%s forward vs double reference", lc->name);
    t_check(label, t_rel_err(y, yref, lc->nout), FWD_TOL);

    t_fd_grad(fd, lc->ref, p, lc->n, FD_STEP, lc);
    float *g = calloc(lc->n, sizeof *g);
    lc->grad(g, pf, lc);
    snprintf(label, sizeof label, "%s backward vs finite differences", lc->name);
    t_check(label, t_rel_err(g, fd, lc->n), FD_TOL);
    for (size_t i = 0; i < lc->n; i++) fd[i] *= 2;
    lc->grad(g, pf, lc);
    snprintf(label, sizeof label, "%s backward accumulates (+=)", lc->name);
    t_check(label, t_rel_err(g, fd, lc->n), FD_TOL);
    free(p), free(fd), free(pf), free(yref), free(y), free(g);
}

// gemm (oneDNN) vs gemm_ref for every transpose pair, beta != 0, and padded leading dimensions.
static void test_gemm(t_rng *rng) {
    const int64_t M = 37, N = 29, K = 53, pad = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);
            double *ad = malloc(na * sizeof *ad), *bd = malloc(nb * sizeof *bd), *cd = malloc(nc * sizeof *cd);
            t_fill_d(ad, na, 1.0, rng);
            t_fill_d(bd, nb, 1.0, rng);
            t_fill_d(cd, nc, 1.0, rng);
            float *a = to_float(ad, na), *b = to_float(bd, nb), *c = to_float(cd, nc);
            for (size_t i = 0; i < na; i++) ad[i] = a[i];
            for (size_t i = 0; i < nb; i++) bd[i] = b[i];
            for (size_t i = 0; i < nc; i++) cd[i] = c[i];
            gemm_ref(cd, ad, bd, M, N, K, ta, tb, 0.5);
            grape_status st = gemm(c, a, b, M, N, K, ta, tb, 0.5f);
            char label[64];
            snprintf(label, sizeof label, "gemm %c%c beta=0.5 vs gemm_ref", ta ? 'T' : 'N', tb ? 'T' : 'N');
            t_check(label, st == GRAPE_OK ? t_rel_err(c, cd, nc) : 1.0, FWD_TOL);
            // Same product written into the interior of a wider C (ldc = N + pad), alpha = 1, beta = 0.
            float *cw = calloc((size_t)(M * (N + pad)), sizeof *cw);
            gemm_ref(cd, ad, bd, M, N, K, ta, tb, 0.0);
            st = gemm_ld(cw, N + pad, a, ta ? M : K, b, tb ? K : N, M, N, K, ta, tb, 1.0f, 0.0f);
            double err = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N + pad; j++) {
                    double want = j < N ? cd[i * N + j] : 0.0;
                    err = fmax(err, fabs(cw[i * (N + pad) + j] - want));
                }
            snprintf(label, sizeof label, "gemm_ld %c%c ldc=N+%d (abs err)", ta ? 'T' : 'N', tb ? 'T' : 'N',
                     (int)pad);
            t_check(label, st == GRAPE_OK ? err : 1.0, 1e-4);
            free(ad), free(bd), free(cd), free(a), free(b), free(c), free(cw);
        }
    t_true("gemm rejects a negative size", gemm(NULL, NULL, NULL, -1, 2, 2, 0, 0, 0.0f) == GRAPE_ERR_ARG);
}

// f1_exp (core/simd.h's exp on one float lane) vs exp in double over the range the model feeds it (softmax shifts
// <= 0, SwiGLU gates of either sign).
static void test_f1_exp(void) {
    double worst = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.0f + 175.0f * (float)i / 400000.0f;
        worst = fmax(worst, fabs(f1_exp(x) / exp((double)x) - 1.0));
    }
    t_check("f1_exp relative error on [-87, 88]", worst, 5e-7);
    t_true("f1_exp clamps: finite at +1000, exactly 0 at -1000", isfinite(f1_exp(1000.0f)) && f1_exp(-1000.0f) == 0);
    // NaN stays NaN (so the non-finite checks downstream see it) without a NaN-to-int conversion (UBSan checks it)
    t_true("f1_exp(NaN) is NaN", isnan(f1_exp(NAN)));
}

int main(void) {
    t_rng rng = t_seed(42);
    test_f1_exp();
    enum { N = 6, C = 20, V = 10 }; // C > 16: the column-chunked dg and scatter-add run two chunks
    uint8_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (uint8_t)t_randint(&rng, 0, V - 1);
    tok[1] = tok[4]; // a repeated token: the embedding backward must add both rows
    double r[N * 2 * C];
    layer_case cases[] = {
        {"rmsnorm", N * C + C, N * C, rms_ref, rms_grad, rms_fwd, N, C, 0, r, tok},
        {"swiglu", N * 2 * C, N * C, swiglu_ref_obj, swiglu_grad, swiglu_fwd, N, C, 0, r, tok},
        {"embedding", V * C, N * C, emb_ref, emb_grad, emb_fwd, N, C, V, r, tok},
        {"cross_entropy", N * V, 1, ce_ref, ce_grad, ce_fwd, N, C, V, NULL, tok},
        {"linear", N * C + V * C, N * V, lin_ref, lin_grad, lin_fwd, N, C, V, r, tok},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], &rng);
    test_gemm(&rng);
    return t_finish();
}
