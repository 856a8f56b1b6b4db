// test_attn_bca.c — LEX blockwise causal attention (arXiv 2212.10554) in the fused kernel:
//   1. against dense attention in double with the block mask built literally from the definition (query block
//      c = [c h, (c+1) h) sees keys [(c-1) h, (c+1) h) with key <= query): every bias kind, several W;
//   2. T <= W is plain causal attention (bitwise);
//   3. re-basing positions per window leaves logits unchanged for relative encodings: RoPE/xPos rotated at
//      window-local positions give the same block outputs as at absolute positions (so the kernel never needs
//      re-based inputs for them; see grape.h for GRAPE-AP v1, whose key probes carry absolute positions).
// Tolerances: 1e-4 normwise relative vs double; 1e-5 for the two float runs of check 3.
#include "test_attn_fixture.h"

// The LEX block mask, written from the definition rather than through attn_bca_lo.
static int lex_visible(int t, int j, int W) {
    int h = W / 2, c = t / h;
    return j <= t && j >= (c - 1) * h && j < (c + 1) * h;
}

// Dense softmax(scale q kᵀ + b + mask) v in double for one problem; the bias row from the reference closed forms.
static void dense_masked(double *out, const fx_problem *p, int W) {
    double scale = 1.0 / sqrt((double)p->D), *s = malloc((size_t)p->T * 8);
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int t = 0; t < p->T; t++) {
                if (p->kind) attn_ref_bias_row(s, &p->fd, b, h, t, 0, p->T, p->H);
                size_t it = (((size_t)b * p->T + t) * p->H + h) * p->D;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    size_t ij = (((size_t)b * p->T + j) * p->H + h) * p->D;
                    double dot = 0;
                    for (int d = 0; d < p->D; d++) dot += p->qd[it + d] * p->kd[ij + d];
                    s[j] = lex_visible(t, j, W) ? scale * dot + (p->kind ? s[j] : 0) : -INFINITY;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                for (int d = 0; d < p->D; d++) out[it + d] = 0;
                for (int j = 0; j <= t; j++)
                    for (int d = 0; d < p->D; d++)
                        out[it + d] += s[j] / sum * p->vd[(((size_t)b * p->T + j) * p->H + h) * p->D + d];
            }
    free(s);
}

static void vs_dense(grape_bias_kind kind, int T, int W) {
    fx_problem p;
    fx_make(&p, kind, 1, T, 2, 32, 1.0, 500 + kind + W);
    float *out = malloc(p.n * 4), *lse = malloc((size_t)p.H * T * 4);
    double *ref = malloc(p.n * 8);
    grape_attn_opts opts = {0.0f, W};
    grape_status st = grape_attn_forward(out, lse, p.q, p.k, p.v, fx_bias(&p), &opts, 1, T, p.H, p.D);
    dense_masked(ref, &p, W);
    char name[96];
    snprintf(name, sizeof name, "bca %s T%d W%d vs dense block mask", fx_kind_name(kind), T, W);
    t_check(name, st == GRAPE_OK ? t_rel_err(out, ref, p.n) : INFINITY, 1e-4);
    free(out), free(lse), free(ref);
    fx_free(&p);
}

static void short_is_causal(int T, int W) {
    fx_problem p;
    fx_make(&p, GRAPE_BIAS_ALIBI, 1, T, 2, 64, 1.0, 900 + W);
    float *a = malloc(p.n * 4), *b = malloc(p.n * 4), *lse = malloc((size_t)p.H * T * 4);
    grape_attn_opts causal = {0.0f, 0}, bca = {0.0f, W};
    grape_attn_forward(a, lse, p.q, p.k, p.v, &p.f, &causal, 1, T, p.H, p.D);
    grape_attn_forward(b, lse, p.q, p.k, p.v, &p.f, &bca, 1, T, p.H, p.D);
    char name[96];
    snprintf(name, sizeof name, "bca T%d <= W%d equals causal attention", T, W);
    t_check(name, t_rel_err_ff(b, a, p.n), 0.0);
    free(a), free(b), free(lse);
    fx_free(&p);
}

// Every query block c computed with q, k rotated at window-local positions n - (c-1)h equals the absolute run.
static void rebase_invariance(const char *pe_name, int T, int W) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 2, 64);
    grape_pe *pe = NULL;
    if (grape_pe_parse(&cfg, pe_name) || grape_pe_create(&pe, &cfg) || grape_pe_prepare(pe, NULL)) {
        t_true("bca rebase: encoding created", 0);
        return;
    }
    fx_problem p;
    fx_make(&p, GRAPE_BIAS_NONE, 1, T, 2, 64, 1.0, 321);
    float *qr = malloc(p.n * 4), *kr = malloc(p.n * 4), *abs_out = malloc(p.n * 4), *loc = malloc(p.n * 4);
    float *lse = malloc((size_t)p.H * T * 4);
    grape_attn_opts opts = {0.0f, W};
    grape_positions pos = {0, 0.0, NULL};
    grape_rot_forward(qr, p.q, pe, &pos, GRAPE_QUERY, 1, T);
    grape_rot_forward(kr, p.k, pe, &pos, GRAPE_KEY, 1, T);
    grape_attn_forward(abs_out, lse, qr, kr, p.v, NULL, &opts, 1, T, p.H, p.D);
    double worst = 0;
    int h = W / 2;
    for (int c = 0; c * h < T; c++) {
        pos.pos0 = -(int64_t)(c > 0 ? (c - 1) * h : 0);
        grape_rot_forward(qr, p.q, pe, &pos, GRAPE_QUERY, 1, T);
        grape_rot_forward(kr, p.k, pe, &pos, GRAPE_KEY, 1, T);
        grape_attn_forward(loc, lse, qr, kr, p.v, NULL, &opts, 1, T, p.H, p.D);
        size_t row0 = (size_t)c * h * p.H * p.D, rows = (size_t)((c + 1) * h < T ? h : T - c * h) * p.H * p.D;
        double e = t_rel_err_ff(loc + row0, abs_out + row0, rows);
        worst = e > worst ? e : worst;
    }
    char name[96];
    snprintf(name, sizeof name, "bca %s T%d W%d per-window re-based positions = absolute", pe_name, T, W);
    t_check(name, worst, 1e-5);
    free(qr), free(kr), free(abs_out), free(loc), free(lse);
    fx_free(&p);
    grape_pe_free(pe);
}

int main(void) {
    for (int kind = 0; kind < GRAPE_BIAS_COUNT; kind++) vs_dense((grape_bias_kind)kind, 300, 128);
    vs_dense(GRAPE_BIAS_GRAPE_AP, 77, 6);  // blocks of 3: many blocks inside one 64-key tile
    vs_dense(GRAPE_BIAS_FOX, 200, 100);    // h = 50 does not divide the tile
    vs_dense(GRAPE_BIAS_NONE, 129, 2);     // h = 1: a key sees itself and the previous token
    short_is_causal(100, 100);
    short_is_causal(100, 256);
    rebase_invariance("rope", 256, 64);
    rebase_invariance("xpos", 256, 64);
    return t_finish();
}
