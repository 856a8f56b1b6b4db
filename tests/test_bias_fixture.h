// test_bias_fixture.h — random inputs of one additive encoding, held once in double (the finite-difference
// variables) and once in float (what the library reads), plus the library's and the reference's view of them.
// Included by the test_bias_*.c files only.
#ifndef GRAPE_TESTS_BIAS_FIXTURE_H
#define GRAPE_TESTS_BIAS_FIXTURE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"
#include "pe/bias_kinds.h"
#include "ref/grape_testing.h"
#include "ref/lift_bias_ref.h"
#include "test_inputs.h"
#include "util.h"

// x = [params | q | k | gate_logit | probe] in double; xf is the same in float.
typedef struct {
    grape_pe *pe;
    grape_pe_config cfg;
    int B, T, H, D, P;
    int64_t pos0;
    size_t off_q, off_k, off_gate, off_probe, nx;
    double *x;
    float *xf;
    void *ws;
} bias_fx;

static inline const char *fx_kind_name(grape_bias_kind k) { return bias_kind_of(k)->info.name; }

// Parameters as the library initialises them, with ρ spread so that softplus(ρ) is not 1 for every head.
static inline int fx_make(bias_fx *fx, grape_bias_kind kind, int ap_form, int B, int T, int H, int D, int P,
                          int64_t pos0, uint64_t seed) {
    memset(fx, 0, sizeof *fx);
    grape_pe_config_default(&fx->cfg, H, D);
    fx->cfg.bias = kind;
    fx->cfg.ap_probe_dim = P;
    fx->cfg.ap_form = ap_form;
    if (grape_pe_create(&fx->pe, &fx->cfg)) return 0;
    fx->B = B, fx->T = T, fx->H = H, fx->D = D, fx->P = P, fx->pos0 = pos0;
    size_t np = grape_pe_num_params(fx->pe), n3 = (size_t)B * T * H;
    fx->off_q = np;
    fx->off_k = fx->off_q + n3 * D;
    fx->off_gate = fx->off_k + n3 * D;
    fx->off_probe = fx->off_gate + n3;
    fx->nx = fx->off_probe + n3 * P;
    fx->x = calloc(fx->nx, sizeof(double));
    fx->xf = calloc(fx->nx, sizeof(float));
    fx->ws = malloc(grape_bias_workspace_bytes(fx->pe, B, T) + 64);
    t_rng r = t_seed(seed);
    if (np) grape_pe_init_params(fx->pe, fx->xf, seed);
    for (size_t i = 0; i < (size_t)H && np; i++) fx->xf[i] += (float)(0.7 * t_normal(&r));
    t_fill(fx->xf + fx->off_q, fx->nx - fx->off_q, 1.0, &r);
    for (size_t i = 0; i < fx->nx; i++) fx->x[i] = fx->xf[i];
    return grape_pe_prepare(fx->pe, fx->xf) == GRAPE_OK;
}

static inline void fx_free(bias_fx *fx) {
    grape_pe_free(fx->pe);
    free(fx->x);
    free(fx->xf);
    free(fx->ws);
}

// in: TI_MAX entries, the encoding's token inputs (FoX gate logits, GRAPE-AP probes) at x's offset t (tokens).
static inline void fx_inputs_at(const float **in, const bias_fx *fx, size_t t) {
    ti_set(in, fx->pe, "gate", fx->xf + fx->off_gate + t * fx->H);
    ti_set(in, fx->pe, "probe", fx->xf + fx->off_probe + t * fx->H * fx->P);
}
static inline void fx_inputs(const float **in, const bias_fx *fx) { fx_inputs_at(in, fx, 0); }

static inline grape_status fx_factors(grape_bias_factors **f, bias_fx *fx) {
    const float *in[TI_MAX] = {0};
    fx_inputs(in, fx);
    return grape_bias_factors_forward(f, fx->ws, fx->pe, fx->xf + fx->off_q, fx->xf + fx->off_k, in, fx->pos0,
                                      fx->B, fx->T);
}

// The reference's view of x (which may be a perturbed copy of fx->x).
static inline bias_ref_inputs fx_ref(const bias_fx *fx, const double *x) {
    bias_ref_inputs in = {fx->cfg.bias, fx->cfg.ap_form, fx->B, fx->T, fx->H, fx->D, fx->P, fx->pos0,
                          NULL, NULL, NULL, x + fx->off_q, x + fx->off_k, x + fx->off_gate, x + fx->off_probe};
    for (int i = 0; i < grape_pe_num_param_tensors(fx->pe); i++) {
        const grape_param_info *t = grape_pe_param_tensor(fx->pe, i);
        const double *p = x + t->offset;
        if (!strcmp(t->name, "rho")) in.rho = p;
        if (!strcmp(t->name, "u")) in.u = p;
        if (!strcmp(t->name, "v")) in.v = p;
    }
    return in;
}

// The full (B,H,T,T) bias from the library's factors.
static inline void fx_dense(float *bias, const grape_bias_factors *f) {
    size_t TT = (size_t)f->T * f->T;
    for (int b = 0; b < f->B; b++)
        for (int h = 0; h < f->H; h++) grape_bias_block(bias + ((size_t)b * f->H + h) * TT, f, b, h, 0, f->T, 0, f->T);
}

// Normwise relative error over finite reference entries; 1 when the -inf pattern differs.
static inline double fx_bias_err(const float *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(ref[i]) || isinf(got[i])) {
            if (!(isinf(ref[i]) && isinf(got[i]) && ref[i] < 0 && got[i] < 0)) return 1.0;
            continue;
        }
        double d = fabs(got[i] - ref[i]);
        if (!(d <= num)) num = d;
        den = fmax(den, fabs(ref[i]));
    }
    return den > 0 ? num / den : num;
}

#endif
