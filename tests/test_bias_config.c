// test_bias_config.c — ALiBi slope tables, the learnable parameters of GRAPE-A (names, shapes, init) and the
// errors a bad configuration or missing input must produce.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_bias_fixture.h"

// llama.cpp / GGML: n_log2 = 2^floor(log2 H), m0 = 2^(-8/n_log2), m1 = 2^(-4/n_log2),
// slope_h = m0^(h+1) for h < n_log2, else m1^(2(h - n_log2) + 1) (ggml's ALiBi slopes, ggml_soft_max_ext).
static double ggml_slope(int h, int H) {
    int n_log2 = 1 << (int)floor(log2((double)H));
    double m0 = pow(2.0, -8.0 / n_log2), m1 = pow(2.0, -4.0 / n_log2);
    return h < n_log2 ? pow(m0, h + 1) : pow(m1, 2 * (h - n_log2) + 1);
}

static void test_slopes(void) {
    static const int Hs[] = {1, 2, 3, 5, 6, 8, 10, 12, 16, 20, 32, 40, 64};
    float m[64];
    for (size_t i = 0; i < sizeof Hs / sizeof Hs[0]; i++) {
        int H = Hs[i], pow2 = (H & (H - 1)) == 0;
        char name[96];
        grape_alibi_slopes(m, H);
        double e_ggml = 0, e_closed = 0;
        for (int h = 0; h < H; h++) {
            e_ggml = fmax(e_ggml, fabs(m[h] - ggml_slope(h, H)) / ggml_slope(h, H));
            if (pow2) e_closed = fmax(e_closed, fabs(m[h] - exp2(-8.0 * (h + 1) / H)) / exp2(-8.0 * (h + 1) / H));
        }
        snprintf(name, sizeof name, "alibi slopes H=%d vs llama.cpp m0/m1", H);
        t_check(name, e_ggml, 1e-7);
        if (pow2) {
            snprintf(name, sizeof name, "alibi slopes H=%d vs 2^(-8h/H)", H);
            t_check(name, e_closed, 1e-7);
        }
    }
    // The spec's worked examples: H = 10 appends 2^-0.5, 2^-1.5; H = 12 appends 2^-0.5 .. 2^-3.5.
    grape_alibi_slopes(m, 12);
    double e = 0;
    for (int j = 0; j < 4; j++) e = fmax(e, fabs(m[8 + j] - exp2(-0.5 - j)));
    for (int h = 0; h < 8; h++) e = fmax(e, fabs(m[h] - exp2(-1.0 - h)));
    t_check("alibi slopes H=12: 2^-1..2^-8 then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5", e, 1e-7);
    t_true("grape_alibi_slopes rejects H = 0", grape_alibi_slopes(m, 0) == GRAPE_ERR_ARG);
}

static void test_params(void) {
    static const struct {
        grape_bias_kind kind;
        const char *names;
    } want[] = {{GRAPE_BIAS_GRAPE_A_K, "rho u"}, {GRAPE_BIAS_GRAPE_A_Q, "rho v"}, {GRAPE_BIAS_GRAPE_A_QK, "rho u v"},
                {GRAPE_BIAS_ALIBI, ""},          {GRAPE_BIAS_FOX, ""},          {GRAPE_BIAS_GRAPE_AP, ""}};
    int H = 16, D = 64; // 1024 samples of u: the variance estimate has a standard error of 4.4%
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        grape_pe_config c;
        grape_pe_config_default(&c, H, D);
        c.bias = want[w].kind;
        grape_pe *pe;
        if (!t_true("create", grape_pe_create(&pe, &c) == GRAPE_OK)) continue;
        char names[32] = "", name[96];
        int ok = 1;
        size_t expect_off = 0;
        for (int i = 0; i < grape_pe_num_param_tensors(pe); i++) {
            const grape_param_info *t = grape_pe_param_tensor(pe, i);
            if (*names) strcat(names, " ");
            strcat(names, t->name);
            int rho = !strcmp(t->name, "rho");
            ok &= t->weight_decay == 1 && t->offset == expect_off && t->ndim == (rho ? 1 : 2) && t->shape[0] == H &&
                  (rho || t->shape[1] == D);
            expect_off += rho ? (size_t)H : (size_t)H * D;
        }
        snprintf(name, sizeof name, "%s: tensors '%s', decayed, contiguous", fx_kind_name(want[w].kind), names);
        t_true(name, ok && !strcmp(names, want[w].names) && grape_pe_num_params(pe) == expect_off);
        if (expect_off) { // init: ρ = ln(e - 1) exactly, u/v ~ N(0, 1/D)
            float *p = malloc(expect_off * sizeof(float));
            grape_pe_init_params(pe, p, 42);
            double erho = 0, ss = 0;
            for (int h = 0; h < H; h++) erho = fmax(erho, fabs(p[h] - log(expm1(1.0))));
            for (size_t i = (size_t)H; i < expect_off; i++) ss += (double)p[i] * p[i];
            double var = ss / (double)(expect_off - H);
            snprintf(name, sizeof name, "%s: init rho = ln(e-1)", fx_kind_name(want[w].kind));
            t_check(name, erho, 1e-7);
            snprintf(name, sizeof name, "%s: init var(u,v) * D = 1 (+-15%%)", fx_kind_name(want[w].kind));
            t_check(name, fabs(var * D - 1.0), 0.15);
            free(p);
        }
        grape_pe_free(pe);
    }
}

static grape_status create_ap(int P, int form) {
    grape_pe_config c;
    grape_pe_config_default(&c, 4, 16);
    c.bias = GRAPE_BIAS_GRAPE_AP;
    c.ap_probe_dim = P;
    c.ap_form = form;
    grape_pe *pe = NULL;
    grape_status st = grape_pe_create(&pe, &c);
    grape_pe_free(pe);
    return st;
}

// A missing input is an error with a message, never a crash.
static void expect_missing(grape_bias_kind kind, int drop_q, int drop_k, int drop_inputs, const char *label) {
    bias_fx fx;
    if (!fx_make(&fx, kind, 0, 1, 5, 2, 8, 4, 0, 1)) return;
    const float *in[TI_MAX] = {0};
    if (!drop_inputs) fx_inputs(in, &fx);
    grape_bias_factors *f;
    grape_status st = grape_bias_factors_forward(&f, fx.ws, fx.pe, drop_q ? NULL : fx.xf + fx.off_q,
                                                 drop_k ? NULL : fx.xf + fx.off_k, in, 0, 1, 5);
    char name[160];
    snprintf(name, sizeof name, "%s -> GRAPE_ERR_ARG (\"%s\")", label, grape_last_error());
    t_true(name, st == GRAPE_ERR_ARG && strlen(grape_last_error()) > 0);
    fx_free(&fx);
}

static void test_errors(void) {
    t_true("grape-ap: ap_probe_dim 0 rejected", create_ap(0, 0) == GRAPE_ERR_ARG);
    t_true("grape-ap: ap_probe_dim 7 (odd) rejected", create_ap(7, 1) == GRAPE_ERR_ARG);
    t_true("grape-ap: ap_probe_dim 8 accepted", create_ap(8, 0) == GRAPE_OK);
    t_true("grape-ap: ap_form 3 (unknown) rejected", create_ap(8, 3) == GRAPE_ERR_ARG);
    expect_missing(GRAPE_BIAS_FOX, 0, 0, 1, "fox without gate_logit");
    expect_missing(GRAPE_BIAS_GRAPE_AP, 0, 0, 1, "grape-ap without probe");
    expect_missing(GRAPE_BIAS_GRAPE_A_K, 0, 1, 0, "grape-a-k without k");
    expect_missing(GRAPE_BIAS_GRAPE_A_Q, 1, 0, 0, "grape-a-q without q");
    expect_missing(GRAPE_BIAS_GRAPE_A_QK, 1, 0, 0, "grape-a-qk without q");
    bias_fx fx;
    if (!fx_make(&fx, GRAPE_BIAS_ALIBI, 0, 1, 5, 2, 8, 4, 0, 1)) return;
    grape_bias_factors *f;
    t_true("alibi: B = 0 rejected", grape_bias_factors_forward(&f, fx.ws, fx.pe, NULL, NULL, NULL, 0, 0, 5) ==
                                        GRAPE_ERR_ARG);
    t_true("alibi: q, k, inputs may be NULL", grape_bias_factors_forward(&f, fx.ws, fx.pe, NULL, NULL, NULL, 0, 1,
                                                                         5) == GRAPE_OK);
    t_true("workspace bytes of an impossible size is SIZE_MAX",
           grape_bias_workspace_bytes(fx.pe, 1 << 30, 1 << 30) == SIZE_MAX ||
               grape_bias_workspace_bytes(fx.pe, 1 << 30, 1 << 30) >= ((size_t)1 << 32));
    fx_free(&fx);
}

// grads_bind hands out zeroed channels inside the workspace, named and shaped as the factors' list (the kind's
// row: grape-a-qk has slope (H), gate_q, gate_k (B,T,H) and nothing else).
static void test_grads_bind(void) {
    bias_fx fx;
    if (!fx_make(&fx, GRAPE_BIAS_GRAPE_A_QK, 0, 2, 7, 3, 8, 4, 0, 1)) return;
    size_t bytes = grape_bias_workspace_bytes(fx.pe, 2, 7);
    unsigned char *ws = malloc(bytes);
    memset(ws, 0xAB, bytes);
    grape_bias_factors *f;
    grape_bias_grads *g;
    fx_factors(&f, &fx);
    int ok = grape_bias_grads_bind(&g, ws, f) == GRAPE_OK && grape_bias_num_factors(f) == 3;
    static const char *const names[] = {"slope", "gate_q", "gate_k"};
    static const int ndims[] = {1, 3, 3};
    for (int i = 0; ok && i < 3; i++) {
        grape_channel c, cf;
        ok = grape_bias_grad(g, i, &c) == GRAPE_OK && grape_bias_factor(f, i, &cf) == GRAPE_OK &&
             !strcmp(c.name, names[i]) && !strcmp(cf.name, names[i]) && c.dtype == GRAPE_F32 && c.ndim == ndims[i] &&
             c.shape[0] == (i ? 2 : 3) && (i == 0 || (c.shape[1] == 7 && c.shape[2] == 3));
        size_t n = i ? 42 : 3;
        const unsigned char *d = c.data;
        ok = ok && d >= ws && d + n * sizeof(float) <= ws + bytes;
        for (size_t j = 0; ok && j < n * sizeof(float); j++) ok = d[j] == 0;
    }
    grape_channel c;
    t_true("grads_bind: the kind's channels, zeroed, inside ws", ok);
    t_true("grads_bind: no fourth channel", grape_bias_grad(g, 3, &c) == GRAPE_ERR_ARG);
    free(ws);
    fx_free(&fx);
}

int main(void) {
    test_slopes();
    test_params();
    test_errors();
    test_grads_bind();
    return t_finish();
}
