// test_bias_factors.c — the additive encodings' factors and closed forms against the double reference:
// forward, tiling, every backward vs 4-point finite differences, the exact relative law, streaming, FoX f → 1.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_bias_fixture.h"

typedef struct {
    grape_bias_kind kind;
    int ap_form; // grape_pe_config.ap_form
    int B, T, H, D, P;
} bias_case;

// Odd T, H not a power of two, several head and probe dims.
static const bias_case cases[] = {
    {GRAPE_BIAS_ALIBI, 0, 2, 11, 3, 8, 0},       {GRAPE_BIAS_FOX, 0, 2, 13, 5, 8, 0},
    {GRAPE_BIAS_GRAPE_A_K, 0, 2, 9, 3, 8, 0},    {GRAPE_BIAS_GRAPE_A_Q, 0, 1, 11, 5, 6, 0},
    {GRAPE_BIAS_GRAPE_A_QK, 0, 2, 7, 3, 10, 0},  {GRAPE_BIAS_GRAPE_AP, 0, 2, 11, 3, 8, 8},
    {GRAPE_BIAS_GRAPE_AP, 2, 1, 13, 5, 4, 4},    {GRAPE_BIAS_GRAPE_AP, 0, 1, 9, 6, 4, 6},
    {GRAPE_BIAS_GRAPE_AP, 1, 2, 12, 3, 4, 8},   {GRAPE_BIAS_GRAPE_A, 0, 2, 11, 5, 8, 0},
};
static const char *form_name[] = {"", "(paper)", "(relative)"};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static char *case_name(char *buf, const bias_case *c, const char *what) {
    snprintf(buf, 160, "%s%s B%d T%d H%d D%d P%d: %s", fx_kind_name(c->kind), form_name[c->ap_form], c->B,
             c->T, c->H, c->D, c->P, what);
    return buf;
}

static int make_case(bias_fx *fx, const bias_case *c, int64_t pos0, uint64_t seed) {
    return fx_make(fx, c->kind, c->ap_form, c->B, c->T, c->H, c->D, c->P ? c->P : 8, pos0, seed);
}

static size_t dense_size(const bias_fx *fx) { return (size_t)fx->B * fx->H * fx->T * fx->T; }

// --- forward: fast factors + closed form vs the double reference; tiles reproduce the full block

static void test_forward(const bias_case *c) {
    char name[160];
    bias_fx fx;
    if (!t_true(case_name(name, c, "create"), make_case(&fx, c, 3, 11))) return;
    size_t n = dense_size(&fx);
    float *got = malloc(n * sizeof(float)), *tile = malloc((size_t)fx.T * fx.T * sizeof(float));
    double *ref = malloc(n * sizeof(double));
    grape_bias_factors *f = NULL;
    t_true(case_name(name, c, "factors_forward ok"), fx_factors(&f, &fx) == GRAPE_OK);
    fx_dense(got, f);
    bias_ref_inputs in = fx_ref(&fx, fx.x);
    bias_ref_dense(ref, &in);
    t_check(case_name(name, c, "bias vs double reference"), fx_bias_err(got, ref, n), 1e-5);
    // Tiles of 4 queries x 3 keys at every offset, including tiles straddling and above the diagonal.
    double worst = 0;
    for (int b = 0; b < fx.B; b++)
        for (int h = 0; h < fx.H; h++)
            for (int t0 = 0; t0 < fx.T; t0 += 4)
                for (int j0 = 0; j0 < fx.T; j0 += 3) {
                    int Tq = t0 + 4 <= fx.T ? 4 : fx.T - t0, Tk = j0 + 3 <= fx.T ? 3 : fx.T - j0;
                    grape_bias_block(tile, f, b, h, t0, Tq, j0, Tk);
                    const float *full = got + ((size_t)b * fx.H + h) * fx.T * fx.T;
                    for (int i = 0; i < Tq; i++)
                        for (int j = 0; j < Tk; j++) {
                            float a = tile[i * Tk + j], e = full[(size_t)(t0 + i) * fx.T + j0 + j];
                            if (a != e && !(isinf(a) && isinf(e))) worst = fmax(worst, fabs(a - e) + 1e-30);
                            if (isinf(a) != isinf(e)) worst = 1;
                        }
                }
    t_check(case_name(name, c, "tiles equal the full block"), worst, 1e-6);
    free(got), free(tile), free(ref);
    fx_free(&fx);
}

// --- backward: L = Σ W ⊙ bias; tiles → block_backward → factors_backward vs finite differences of the reference

typedef struct {
    const bias_fx *fx;
    const double *W;
    double *buf;
} loss_ctx;

static double loss_ref(const double *x, void *ctx) {
    loss_ctx *l = ctx;
    bias_ref_inputs in = fx_ref(l->fx, x);
    bias_ref_dense(l->buf, &in);
    double s = 0;
    for (size_t i = 0; i < dense_size(l->fx); i++)
        if (isfinite(l->buf[i])) s += l->W[i] * l->buf[i];
    return s;
}

// Accumulate dL/dfactors tile by tile (5 x 4 tiles), as the fused attention will.
static void backward_tiles(grape_bias_grads *g, const grape_bias_factors *f, const float *Wf) {
    int T = f->T;
    float tile[5 * 4];
    for (int b = 0; b < f->B; b++)
        for (int h = 0; h < f->H; h++)
            for (int t0 = 0; t0 < T; t0 += 5)
                for (int j0 = 0; j0 < T; j0 += 4) {
                    int Tq = t0 + 5 <= T ? 5 : T - t0, Tk = j0 + 4 <= T ? 4 : T - j0;
                    const float *W = Wf + ((size_t)b * f->H + h) * T * T;
                    for (int i = 0; i < Tq; i++)
                        for (int j = 0; j < Tk; j++) tile[i * Tk + j] = W[(size_t)(t0 + i) * T + j0 + j];
                    grape_bias_block_backward(g, tile, f, b, h, t0, Tq, j0, Tk);
                }
}

static void test_backward(const bias_case *c) {
    char name[160];
    bias_fx fx;
    if (!make_case(&fx, c, 5, 23)) return;
    size_t n = dense_size(&fx);
    double *W = malloc(n * sizeof(double)), *buf = malloc(n * sizeof(double));
    double *fd = malloc(fx.nx * sizeof(double)), *gd = malloc(fx.nx * sizeof(double));
    float *Wf = malloc(n * sizeof(float)), *gx = malloc(fx.nx * sizeof(float));
    void *gws = malloc(grape_bias_workspace_bytes(fx.pe, fx.B, fx.T) + 64);
    t_rng r = t_seed(77);
    for (size_t i = 0; i < n; i++) Wf[i] = (float)t_normal(&r), W[i] = Wf[i];
    for (size_t i = 0; i < fx.nx; i++) gx[i] = 0.25f; // the backward must add to what is there
    grape_bias_factors *f;
    grape_bias_grads *g;
    fx_factors(&f, &fx);
    t_true(case_name(name, c, "grads_bind ok"), grape_bias_grads_bind(&g, gws, f) == GRAPE_OK);
    backward_tiles(g, f, Wf);
    const float *in[TI_MAX] = {0};
    float *din[TI_MAX] = {0};
    fx_inputs(in, &fx);
    ti_set_grad(din, fx.pe, "gate", gx + fx.off_gate), ti_set_grad(din, fx.pe, "probe", gx + fx.off_probe);
    grape_status st = grape_bias_factors_backward(gx, gx + fx.off_q, gx + fx.off_k, din, g, f, fx.pe,
                                                  fx.xf + fx.off_q, fx.xf + fx.off_k, in);
    t_true(case_name(name, c, "factors_backward ok"), st == GRAPE_OK);
    for (size_t i = 0; i < fx.nx; i++) gd[i] = (double)gx[i] - 0.25;
    loss_ctx l = {&fx, W, buf};
    t_fd_grad(fd, loss_ref, fx.x, fx.nx, 1e-3, &l);
    const char *seg[] = {"d params", "dq", "dk", "d gate_logit", "d probe"};
    size_t off[] = {0, fx.off_q, fx.off_k, fx.off_gate, fx.off_probe, fx.nx};
    for (int s = 0; s < 5; s++) {
        if (off[s + 1] == off[s]) continue;
        char what[64];
        snprintf(what, sizeof what, "%s vs finite differences", seg[s]);
        // A segment the kind does not read has a zero gradient: then the error is the largest absolute entry.
        t_check(case_name(name, c, what), t_rel_err_dd(gd + off[s], fd + off[s], off[s + 1] - off[s]), 1e-4);
    }
    free(W), free(buf), free(fd), free(gd), free(Wf), free(gx), free(gws);
    fx_free(&fx);
}

// --- the exact relative law: relative kinds are unchanged by pos0 → pos0 + c; official AP is not

static void test_shift(const bias_case *c) {
    char name[160];
    bias_fx fx;
    if (!make_case(&fx, c, 0, 31)) return;
    size_t n = dense_size(&fx);
    float *b0 = malloc(n * sizeof(float)), *b1 = malloc(n * sizeof(float));
    grape_bias_factors *f;
    fx_factors(&f, &fx);
    fx_dense(b0, f);
    int relative = !(c->kind == GRAPE_BIAS_GRAPE_AP && c->ap_form != GRAPE_AP_RELATIVE);
    double worst = 0, least = INFINITY;
    const double shifts[] = {1, 1000, 1e6};
    for (int s = 0; s < 3; s++) {
        fx.pos0 = (int64_t)shifts[s];
        fx_factors(&f, &fx);
        fx_dense(b1, f);
        double num = 0, den = 0; // over the finite (causal) entries
        for (size_t i = 0; i < n; i++)
            if (isfinite(b0[i])) num = fmax(num, fabs(b1[i] - b0[i])), den = fmax(den, fabs(b0[i]));
        double e = den > 0 ? num / den : num;
        worst = fmax(worst, e), least = fmin(least, e);
    }
    if (relative)
        t_check(case_name(name, c, "shift pos0 by 1, 1e3, 1e6: bias unchanged"), worst, 1e-4);
    else // official v1 and the paper's form rotate the key probe at the absolute l only: ψ moves with pos0
        t_true(case_name(name, c, "depends on the absolute position (rel change > 0.05)"), least > 0.05);
    free(b0), free(b1);
    fx_free(&fx);
}

// --- streaming: factors of one token at a time, assembled into a cache, give the full bias

typedef struct {
    float *gq, *gk, *pq, *pk;
    double *cum;
} stream_cache;

static void stream_token(stream_cache *sc, bias_fx *fx, int b, int t, void *ws) {
    size_t H = (size_t)fx->H, i3 = ((size_t)b * fx->T + t) * H;
    const float *in[TI_MAX] = {0};
    fx_inputs_at(in, fx, i3 / H);
    grape_bias_factors *f1;
    grape_bias_factors_forward(&f1, ws, fx->pe, fx->xf + fx->off_q + i3 * fx->D, fx->xf + fx->off_k + i3 * fx->D,
                               in, fx->pos0 + t, 1, 1);
    const float *gate_q = bf_f32(f1, BF_GATE_Q), *gate_k = bf_f32(f1, BF_GATE_K);
    const double *cum = bf_f64(f1, BF_CUM);
    for (size_t h = 0; h < H; h++) {
        if (gate_q) sc->gq[i3 + h] = gate_q[h];
        if (gate_k) sc->gk[i3 + h] = gate_k[h];
        if (cum) sc->cum[i3 + h] = (t ? sc->cum[i3 - H + h] : 0.0) + cum[h]; // running c_t
    }
    if (f1->ch[BF_PROBE_Q]) memcpy(sc->pq + i3 * fx->P, f1->ch[BF_PROBE_Q], H * fx->P * sizeof(float));
    if (f1->ch[BF_PROBE_K]) memcpy(sc->pk + i3 * fx->P, f1->ch[BF_PROBE_K], H * fx->P * sizeof(float));
}

static void test_streaming(const bias_case *c) {
    char name[160];
    bias_fx fx;
    if (!make_case(&fx, c, 40, 47)) return;
    size_t n = dense_size(&fx), n3 = (size_t)fx.B * fx.T * fx.H, n4 = n3 * fx.P;
    float *full = malloc(n * sizeof(float)), *inc = malloc(n * sizeof(float));
    void *ws1 = malloc(grape_bias_workspace_bytes(fx.pe, 1, 1) + 64);
    stream_cache sc = {calloc(n3, 4), calloc(n3, 4), calloc(n4, 4), calloc(n4, 4), calloc(n3, 8)};
    grape_bias_factors *f;
    fx_factors(&f, &fx);
    fx_dense(full, f);
    for (int b = 0; b < fx.B; b++)
        for (int t = 0; t < fx.T; t++) stream_token(&sc, &fx, b, t, ws1);
    grape_bias_factors s = *f; // same slopes and shapes, per-token factors from the stream (by list index)
    void *streamed[BF_COUNT] = {[BF_GATE_Q] = sc.gq, [BF_GATE_K] = sc.gk, [BF_CUM] = sc.cum, [BF_PROBE_Q] = sc.pq,
                                [BF_PROBE_K] = sc.pk};
    for (int i = BF_GATE_Q; i < BF_COUNT; i++) s.ch[i] = f->ch[i] ? streamed[i] : NULL;
    fx_dense(inc, &s);
    double num = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(full[i]) || isfinite(inc[i])) num = fmax(num, fabs(full[i] - inc[i]));
    t_check(case_name(name, c, "one token at a time equals the full computation (max abs)"), num, 1e-6);
    free(full), free(inc), free(ws1), free(sc.gq), free(sc.gk), free(sc.pq), free(sc.pk), free(sc.cum);
    fx_free(&fx);
}

// --- FoX: a gate logit of +inf (f = 1) forgets nothing, so the bias is exactly zero

static void test_fox_open_gate(void) {
    bias_fx fx;
    if (!fx_make(&fx, GRAPE_BIAS_FOX, 0, 2, 9, 3, 8, 8, 0, 5)) return;
    size_t n = dense_size(&fx), n3 = (size_t)fx.B * fx.T * fx.H;
    for (size_t i = 0; i < n3; i++) fx.xf[fx.off_gate + i] = INFINITY;
    float *bias = malloc(n * sizeof(float));
    grape_bias_factors *f;
    fx_factors(&f, &fx);
    fx_dense(bias, f);
    double mx = 0;
    int pattern = 1;
    for (int b = 0; b < fx.B; b++)
        for (int h = 0; h < fx.H; h++)
            for (int t = 0; t < fx.T; t++)
                for (int j = 0; j < fx.T; j++) {
                    float v = bias[(((size_t)b * fx.H + h) * fx.T + t) * fx.T + j];
                    if (j > t) pattern &= isinf(v) && v < 0;
                    else mx = fmax(mx, fabs(v));
                }
    t_check("fox: gate logit +inf gives zero bias (max abs)", mx, 0.0);
    t_true("fox: -inf exactly above the diagonal", pattern);
    for (size_t i = 0; i < n3; i++) fx.xf[fx.off_gate + i] = 30.0f; // f = 1 - 1e-13: bias tiny but finite
    fx_factors(&f, &fx);
    fx_dense(bias, f);
    mx = 0;
    for (size_t i = 0; i < n; i++) mx = isfinite(bias[i]) ? fmax(mx, fabs(bias[i])) : mx;
    t_check("fox: gate logit 30 gives |bias| <= T e^-30", mx, fx.T * exp(-30.0) * 1.01);
    free(bias);
    fx_free(&fx);
}

// --- GRAPE-A backward on a shape large enough to thread: per-thread dû/dv̂ slots (n_slots = the OpenMP threads at
// create) must sum to what one thread computes.

static void gate_backward_run(float *gx, int threads) {
    omp_set_num_threads(threads);
    bias_fx fx;
    if (!fx_make(&fx, GRAPE_BIAS_GRAPE_A_QK, 0, 2, 301, 8, 16, 4, 0, 3)) return;
    void *gws = malloc(grape_bias_workspace_bytes(fx.pe, fx.B, fx.T) + 64);
    grape_bias_factors *f;
    grape_bias_grads *g;
    fx_factors(&f, &fx);
    grape_bias_grads_bind(&g, gws, f);
    size_t n3 = (size_t)fx.B * fx.T * fx.H;
    t_rng r = t_seed(12);
    t_fill(bg_f32(g, BF_GATE_Q), n3, 1.0, &r);
    t_fill(bg_f32(g, BF_GATE_K), n3, 1.0, &r);
    t_fill(bg_f32(g, BF_SLOPE), (size_t)fx.H, 1.0, &r);
    const float *in[TI_MAX] = {0};
    fx_inputs(in, &fx);
    memset(gx, 0, fx.nx * sizeof(float));
    grape_bias_factors_backward(gx, gx + fx.off_q, gx + fx.off_k, NULL, g, f, fx.pe, fx.xf + fx.off_q,
                                fx.xf + fx.off_k, in);
    free(gws);
    fx_free(&fx);
}

static void test_threaded_gate_backward(void) {
    size_t nx = 8 + 2 * 8 * 16 + 2 * (size_t)2 * 301 * 8 * (16 + 1 + 4); // >= fx.nx of the case above
    float *one = calloc(nx, sizeof(float)), *many = calloc(nx, sizeof(float));
    int max = omp_get_max_threads();
    gate_backward_run(one, 1);
    gate_backward_run(many, max > 1 ? max : 2);
    omp_set_num_threads(max);
    t_check("grape-a-qk B2 T301 H8: threaded backward (slots summed) = one thread", t_rel_err_ff(many, one, nx), 1e-6);
    free(one), free(many);
}

int main(void) {
    for (int i = 0; i < N_CASES; i++) {
        test_forward(&cases[i]);
        test_backward(&cases[i]);
        test_shift(&cases[i]);
        test_streaming(&cases[i]);
    }
    test_fox_open_gate();
    test_threaded_gate_backward();
    return t_finish();
}
