// bias_block_ref.c — the testing API of the block oracle (grape_testing.h): grape_bias_block exports the library's
// bias_block (bias.c: the closed forms of bias_kinds.h over a block, in double, which resolution.c also uses), and
// grape_bias_block_backward is its gradient, which only the tests need.
#include "grape_testing.h"
#include "pe/bias_internal.h"

GRAPE_TESTING_API void grape_bias_block(float *bias, const grape_bias_factors *f, int b, int h, int t0, int Tq, int j0,
                                        int Tk) {
    bias_block(bias, f, b, h, t0, Tq, j0, Tk);
}

// Path row t backward: da(t,l) = α Σ_{j0<=j<l, j in block} G(t,j) (exclusive prefix sum of G along j),
// dS = da·ψ'(S), dprobe_q(t) += dS·probe_k(l)/P, dprobe_k(l) += dS·probe_q(t)/P, dα += Σ_l (da/α)·ψ.
static void path_row_backward(grape_bias_grads *g, const float *grow, const grape_bias_factors *f, int b, int h,
                              int t, int j0, int Tk) {
    double alpha = bf_f32(f, BF_SLOPE)[h], prefix = 0, dalpha = 0;
    int P = f->P;
    float *dprobe_q = bg_f32(g, BF_PROBE_Q), *dprobe_k = bg_f32(g, BF_PROBE_K), *dslope = bg_f32(g, BF_SLOPE);
    float *dq = dprobe_q ? dprobe_q + bias_tok(f, b, t, h) * (size_t)P : NULL;
    const float *pq = bf_f32(f, BF_PROBE_Q) + bias_tok(f, b, t, h) * (size_t)P;
    for (int l = j0 + 1; l <= t; l++) {
        if (l - 1 < j0 + Tk) prefix += grow[l - 1 - j0];
        if (prefix == 0) continue;
        double S = bias_block_score(f, b, h, t, l);
        dalpha += prefix * bias_path_edge(S);
        double dS = alpha * prefix * bias_path_edge_grad(S) / P;
        const float *pk = bf_f32(f, BF_PROBE_K) + bias_tok(f, b, l, h) * (size_t)P;
        float *dk = dprobe_k ? dprobe_k + bias_tok(f, b, l, h) * (size_t)P : NULL;
        for (int i = 0; i < P; i++) {
            if (dq) dq[i] += (float)(dS * pk[i]);
            if (dk) dk[i] += (float)(dS * pq[i]);
        }
    }
    if (dslope) dslope[h] += (float)dalpha;
}

GRAPE_TESTING_API void grape_bias_block_backward(grape_bias_grads *g, const float *dbias, const grape_bias_factors *f, int b, int h,
                               int t0, int Tq, int j0, int Tk) {
    // dbias: (Tq,Tk); entries with key > query are ignored.
    const bias_kind *kd = bias_kind_of(f->kind);
    // The list by index (NULL where the kind, or the caller's gradients, lack the channel).
    float *dslope = f->ch[BF_SLOPE] ? bg_f32(g, BF_SLOPE) : NULL;
    float *dgate_q = f->ch[BF_GATE_Q] ? bg_f32(g, BF_GATE_Q) : NULL;
    float *dgate_k = f->ch[BF_GATE_K] ? bg_f32(g, BF_GATE_K) : NULL;
    double *dcum = f->ch[BF_CUM] ? bg_f64(g, BF_CUM) : NULL;
    for (int i = 0; i < Tq; i++) {
        int t = t0 + i;
        const float *grow = dbias + (size_t)i * (size_t)Tk;
        if (kd->form == BIAS_FORM_PATH) {
            path_row_backward(g, grow, f, b, h, t, j0, Tk);
            continue;
        }
        bias_pair_grad d = {0}; // query side (slope, gate_q, cum_q) summed over the row; key side per key
        for (int c = 0; c < Tk && j0 + c <= t; c++) {
            int j = j0 + c;
            bias_pair p = bias_block_pair(f, b, h, t, j);
            d.gate_k = d.cum_k = 0;
            bias_pair_backward(&d, kd, &p, grow[c]);
            if (dgate_k) dgate_k[bias_tok(f, b, j, h)] += (float)d.gate_k;
            if (dcum) dcum[bias_tok(f, b, j, h)] += d.cum_k;
        }
        if (dslope) dslope[h] += (float)d.slope;
        if (dgate_q) dgate_q[bias_tok(f, b, t, h)] += (float)d.gate_q;
        if (dcum) dcum[bias_tok(f, b, t, h)] += d.cum_q;
    }
}
