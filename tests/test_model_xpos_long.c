// test_model_xpos_long.c — xPos in the full forward at T = 65536. Anchor 0 overflows float past ~36k tokens
// (zeta0^(-n/512) > FLT_MAX); the model centres the anchor, so every scale stays finite, and sampled rows of the
// logits equal a double reference of one layer written with the exact relative law (the query at its own position,
// key j scaled zeta^((t-j)/sb): no anchor at all). Decoding 65536 tokens costs minutes, so the decoder's agreement
// with the forward is checked at short lengths (test_model.c) and this test checks the forward against the law.
// Past one anchor's reach (T > ~68k at the defaults) the forward is refused with a message, never inf/NaN.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"
#include "model/layers.h"
#include "ref/layers_ref.h"
#include "util.h"

enum { C = 16, H = 2, D = C / H, V = 256 };

static grape_model *make(int T) {
    grape_model_config cfg;
    grape_model_preset(&cfg, "tiny");
    cfg.n_layer = 1, cfg.n_embd = C, cfg.n_head = H, cfg.max_batch = 1, cfg.max_seq = T;
    grape_model *m = NULL;
    if (grape_pe_parse(&cfg.pe, "xpos") || grape_model_create(&m, &cfg) || grape_model_init(m, 5)) {
        printf("# %s\n", grape_last_error());
        grape_model_free(m);
        return NULL;
    }
    t_rng r = t_seed(3);
    float *p = grape_model_params(m);
    for (size_t i = 0; i < grape_model_num_params(m); i++) p[i] += (float)(0.05 * t_normal(&r));
    grape_model_params_changed(m);
    return m;
}

// The model's tensors as doubles, by name.
static double *tensor(grape_model *m, const char *name, size_t *n) {
    for (int i = 0; i < grape_model_num_tensors(m); i++) {
        const grape_tensor_info *t = grape_model_tensor(m, i);
        if (strcmp(t->name, name)) continue;
        *n = (size_t)t->shape[0] * (size_t)(t->ndim > 1 ? t->shape[1] : 1);
        double *d = malloc(*n * sizeof *d);
        for (size_t j = 0; j < *n; j++) d[j] = grape_model_params(m)[t->offset + j];
        return d;
    }
    return NULL;
}

typedef struct {
    double *wte, *ln1, *wq, *wk, *wv, *gq, *gk, *wo, *ln2, *w1, *w2, *w3, *lnf;
    int F;
} weights;

static void load(weights *w, grape_model *m) {
    size_t n;
    w->wte = tensor(m, "wte", &n), w->ln1 = tensor(m, "layers.0.ln1.weight", &n);
    w->wq = tensor(m, "layers.0.attn.wq", &n), w->wk = tensor(m, "layers.0.attn.wk", &n);
    w->wv = tensor(m, "layers.0.attn.wv", &n), w->wo = tensor(m, "layers.0.attn.wo", &n);
    w->gq = tensor(m, "layers.0.attn.q_norm.weight", &n), w->gk = tensor(m, "layers.0.attn.k_norm.weight", &n);
    w->ln2 = tensor(m, "layers.0.ln2.weight", &n), w->w1 = tensor(m, "layers.0.mlp.w1", &n);
    w->w2 = tensor(m, "layers.0.mlp.w2", &n), w->w3 = tensor(m, "layers.0.mlp.w3", &n);
    w->lnf = tensor(m, "ln_f.weight", &n);
    w->F = (int)(n ? 8 * C / 3 : 0);
}

static void unload(weights *w) {
    double *all[] = {w->wte, w->ln1, w->wq, w->wk, w->wv, w->gq, w->gk, w->wo, w->ln2, w->w1, w->w2, w->w3, w->lnf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

// QK-RMSNorm of one head's row, then the official pair rotation by angle n theta_p scaled by zeta_p^e (double).
static void xpos_row(double *y, const double *x, const double *g, double n, double e) {
    double ms = 0, xn[D];
    for (int i = 0; i < D; i++) ms += x[i] * x[i];
    double rs = 1.0 / sqrt(ms / D + 1e-5);
    for (int i = 0; i < D; i++) xn[i] = g[i] * x[i] * rs;
    for (int p = 0; p < D / 2; p++) {
        double th = pow(10000.0, -2.0 * p / D), zeta = (2.0 * p + 0.4 * D) / (1.4 * D), sc = pow(zeta, e);
        double c = cos(n * th) * sc, s = sin(n * th) * sc, a = xn[p], b = xn[p + D / 2];
        y[p] = a * c + b * s, y[p + D / 2] = -a * s + b * c;
    }
}

// Logits of row t (1 layer): the query at scale 1, key j at zeta^((t-j)/512), so the logit carries zeta^((t-j)/sb).
static void ref_row(double *logits, const weights *w, const uint8_t *tok, int t) {
    int F = w->F;
    double *k = malloc((size_t)(t + 1) * C * sizeof *k), *v = malloc((size_t)(t + 1) * C * sizeof *v);
    double x[C], ln[C], q[C], kr[C], att[C] = {0}, h[2 * 8 * C / 3], act[8 * C / 3], out[C];
    double *s = malloc((size_t)(t + 1) * sizeof *s);
    for (int j = 0; j <= t; j++) {
        rmsnorm_forward_ref(ln, w->wte + (size_t)tok[j] * C, w->ln1, 1, C, 1e-5);
        linear_forward_ref(kr, ln, w->wk, 1, C, C);
        linear_forward_ref(v + (size_t)j * C, ln, w->wv, 1, C, C);
        for (int hh = 0; hh < H; hh++) xpos_row(k + (size_t)j * C + hh * D, kr + hh * D, w->gk, j, (t - j) / 512.0);
    }
    rmsnorm_forward_ref(ln, w->wte + (size_t)tok[t] * C, w->ln1, 1, C, 1e-5);
    linear_forward_ref(x, ln, w->wq, 1, C, C);
    for (int hh = 0; hh < H; hh++) {
        xpos_row(q + hh * D, x + hh * D, w->gq, t, 0.0);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= t; j++) {
            double d = 0;
            for (int i = 0; i < D; i++) d += q[hh * D + i] * k[(size_t)j * C + hh * D + i];
            s[j] = d / sqrt((double)D), mx = fmax(mx, s[j]);
        }
        for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
        for (int j = 0; j <= t; j++)
            for (int i = 0; i < D; i++) att[hh * D + i] += s[j] / sum * v[(size_t)j * C + hh * D + i];
    }
    linear_forward_ref(out, att, w->wo, 1, C, C);
    for (int i = 0; i < C; i++) x[i] = w->wte[(size_t)tok[t] * C + i] + out[i];
    rmsnorm_forward_ref(ln, x, w->ln2, 1, C, 1e-5);
    linear_forward_ref(h, ln, w->w1, 1, C, F);
    linear_forward_ref(h + F, ln, w->w2, 1, C, F);
    swiglu_forward_ref(act, h, 1, F);
    linear_forward_ref(out, act, w->w3, 1, F, C);
    for (int i = 0; i < C; i++) x[i] += out[i];
    rmsnorm_forward_ref(ln, x, w->lnf, 1, C, 1e-5);
    linear_forward_ref(logits, ln, w->wte, 1, C, V);
    free(k), free(v), free(s);
}

static void test_long(void) {
    enum { T = 65536 };
    grape_model *m = make(T);
    uint8_t *tok = malloc(T);
    for (int i = 0; i < T; i++) tok[i] = (uint8_t)((i * 2654435761u) >> 24);
    int ok = m && grape_model_forward(m, tok, NULL, 1, T, NULL) == GRAPE_OK, finite = ok;
    const float *lg = ok ? grape_model_logits(m) : NULL;
    for (size_t i = 0; finite && i < (size_t)T * V; i++) finite = isfinite(lg[i]);
    t_true("xpos: full forward at T = 65536 is finite (anchor 0 overflows past ~36k)", finite);
    weights w = {0};
    if (ok) load(&w, m);
    const int at[] = {0, 1, 300, 36500, 50001, T - 1};
    double err = 0, want[V];
    for (size_t i = 0; ok && i < sizeof at / sizeof at[0]; i++) {
        ref_row(want, &w, tok, at[i]);
        err = fmax(err, t_rel_err(lg + (size_t)at[i] * V, want, V));
    }
    t_check("xpos: T = 65536 logits at rows 0, 1, 300, 36500, 50001, T-1 == double reference of the relative law",
            ok ? err : 1.0, 1e-4);
    if (ok) unload(&w);
    grape_model_free(m);
    free(tok);
}

static void test_too_long(void) {
    enum { T = 70000 };
    grape_model *m = make(T);
    uint8_t *tok = calloc(T, 1);
    grape_status st = m ? grape_model_forward(m, tok, NULL, 1, T, NULL) : GRAPE_ERR_ARG;
    printf("# %s\n", grape_last_error());
    t_true("xpos: a T = 70000 forward is refused (UNSUPPORTED, message names the limit)",
           st == GRAPE_ERR_UNSUPPORTED && strstr(grape_last_error(), "centred anchor serves T <="));
    grape_model_free(m);
    free(tok);
}

int main(void) {
    test_long();
    test_too_long();
    return t_finish();
}
