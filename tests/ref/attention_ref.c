// attention_ref.c — the double-precision reference of the fused attention: for every query row it materialises
// the bias row from the factors, takes the softmax, and (backward) pushes dS = P (dP - Δ) into q, k, v and the
// factors. O(T^2) time, O(T) memory per row; the oracle of test_attn*.c. The bias is the kind's closed form from
// the kind table (pe/bias_kinds.h), evaluated on double factors.
#include <stdlib.h>

#include "attention_ref.h"
#include "pe/bias_kinds.h"

static size_t tok(int b, int t, int h, int T, int H) { return ((size_t)b * (size_t)T + (size_t)t) * (size_t)H + (size_t)h; }

// GRAPE-AP edge x(t,l) = <probe_q(t), probe_k(l)> / P (grape.h; official v1 passes the raw query probe and the
// rotated, normalised key probe as the factors).
static double ap_edge(const attn_ref_factors *f, size_t it, size_t il) {
    double s = 0;
    for (int p = 0; p < f->P; p++) s += f->probe_q[it * (size_t)f->P + (size_t)p] * f->probe_k[il * (size_t)f->P + (size_t)p];
    return s / f->P;
}

// The values pair (t, j) of head h reads (it, ij: their (B,T,H) indices; those the kind lacks stay 0).
static bias_pair ref_pair(const attn_ref_factors *f, int h, size_t it, size_t ij, int t, int j) {
    return (bias_pair){.slope = f->slope ? f->slope[h] : 0.0, .dist = (double)(t - j),
                       .gate_q = f->gate_q ? f->gate_q[it] : 0.0, .gate_k = f->gate_k ? f->gate_k[ij] : 0.0,
                       .cum_q = f->cum ? f->cum[it] : 0.0, .cum_k = f->cum ? f->cum[ij] : 0.0};
}

// GRAPE (arXiv 2512.07805) §4-5 and its official code, FoX (arXiv 2503.02130): b(t,j) for j in [lo, t].
void attn_ref_bias_row(double *row, const attn_ref_factors *f, int b, int h, int t, int lo, int T, int H) {
    const bias_kind *kd = bias_kind_of(f->kind);
    size_t it = tok(b, t, h, T, H);
    if (kd->form == BIAS_FORM_PATH) { // reverse running sum b(t,j) = b(t,j+1) + α ψ(t,j+1): no cancellation
        row[t] = 0;
        for (int j = t - 1; j >= lo; j--)
            row[j] = row[j + 1] + f->slope[h] * bias_path_edge(ap_edge(f, it, tok(b, j + 1, h, T, H)));
        return;
    }
    for (int j = lo; j <= t; j++) {
        bias_pair p = ref_pair(f, h, it, tok(b, j, h, T, H), t, j);
        row[j] = bias_pair_value(kd, &p);
    }
}

// Logits, probabilities (in s) and lse of one query row; returns lse.
static double ref_row_probs(double *s, const double *q, const double *k, const attn_ref_factors *f, double scale,
                            int b, int h, int t, int lo, int T, int H, int D) {
    const double *qt = q + tok(b, t, h, T, H) * (size_t)D;
    if (f && f->kind != GRAPE_BIAS_NONE) attn_ref_bias_row(s, f, b, h, t, lo, T, H);
    double mx = -INFINITY;
    for (int j = lo; j <= t; j++) {
        const double *kj = k + tok(b, j, h, T, H) * (size_t)D;
        double dot = 0;
        for (int d = 0; d < D; d++) dot += qt[d] * kj[d];
        s[j] = scale * dot + (f && f->kind != GRAPE_BIAS_NONE ? s[j] : 0);
        if (s[j] > mx) mx = s[j];
    }
    double sum = 0;
    for (int j = lo; j <= t; j++) sum += exp(s[j] - mx);
    double lse = mx + log(sum);
    for (int j = lo; j <= t; j++) s[j] = exp(s[j] - lse);
    return lse;
}

// softmax(scale q kᵀ + b) v per row.
void attn_forward_ref(double *out, double *lse, const double *q, const double *k, const double *v,
                      const attn_ref_factors *f, double scale, int window, int B, int T, int H, int D) {
    double *s = malloc((size_t)T * sizeof *s);
    if (T <= window) window = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                int lo = (int)attn_bca_lo(t, window);
                lse[((size_t)b * H + h) * T + t] = ref_row_probs(s, q, k, f, scale, b, h, t, lo, T, H, D);
                double *o = out + tok(b, t, h, T, H) * (size_t)D;
                for (int d = 0; d < D; d++) o[d] = 0;
                for (int j = lo; j <= t; j++)
                    for (int d = 0; d < D; d++) o[d] += s[j] * v[tok(b, j, h, T, H) * (size_t)D + (size_t)d];
            }
    free(s);
}

// Factor gradients of one row from G(t,j) = dL/db(t,j), j in [lo, t].
static void ref_bias_backward_row(attn_ref_grads *g, const double *G, const attn_ref_factors *f, int b, int h,
                                  int t, int lo, int T, int H) {
    const bias_kind *kd = bias_kind_of(f->kind);
    size_t it = tok(b, t, h, T, H);
    if (kd->form != BIAS_FORM_PATH) {
        for (int j = lo; j <= t; j++) {
            size_t ij = tok(b, j, h, T, H);
            bias_pair p = ref_pair(f, h, it, ij, t, j);
            bias_pair_grad d = {0};
            bias_pair_backward(&d, kd, &p, G[j]);
            if (g->slope && bias_kind_has(kd, BF_SLOPE)) g->slope[h] += d.slope;
            if (f->gate_q && g->gate_q) g->gate_q[it] += d.gate_q;
            if (f->gate_k && g->gate_k) g->gate_k[ij] += d.gate_k;
            if (f->cum && g->cum) g->cum[it] += d.cum_q, g->cum[ij] += d.cum_k;
        }
        return;
    }
    // ψ(t,l) enters b(t,j) for every lo <= j < l: da(t,l) = sum_{lo<=j<l} G(t,j), an exclusive prefix.
    double da = 0, sl = f->slope[h];
    int P = f->P;
    for (int l = lo + 1; l <= t; l++) {
        da += G[l - 1];
        size_t il = tok(b, l, h, T, H);
        double x = ap_edge(f, it, il);
        if (g->slope) g->slope[h] += da * bias_path_edge(x);
        double dx = da * sl * bias_path_edge_grad(x) / P;
        for (int p = 0; p < P; p++) {
            if (g->probe_q) g->probe_q[it * (size_t)P + (size_t)p] += dx * f->probe_k[il * (size_t)P + (size_t)p];
            if (g->probe_k) g->probe_k[il * (size_t)P + (size_t)p] += dx * f->probe_q[it * (size_t)P + (size_t)p];
        }
    }
}

// FlashAttention-2 backward in exact form: dP = dO vᵀ, Δ = Σ_j P dP, dS = P (dP - Δ).
void attn_backward_ref(double *dq, double *dk, double *dv, attn_ref_grads *g, const double *dout, const double *q,
                       const double *k, const double *v, const attn_ref_factors *f, double scale, int window, int B,
                       int T, int H, int D) {
    double *s = malloc(2 * (size_t)T * sizeof *s), *G = s + T;
    if (T <= window) window = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                int lo = (int)attn_bca_lo(t, window);
                ref_row_probs(s, q, k, f, scale, b, h, t, lo, T, H, D);
                size_t it = tok(b, t, h, T, H) * (size_t)D;
                double delta = 0;
                for (int j = lo; j <= t; j++) {
                    const double *vj = v + tok(b, j, h, T, H) * (size_t)D;
                    double dp = 0;
                    for (int d = 0; d < D; d++) dp += dout[it + (size_t)d] * vj[d];
                    G[j] = dp;
                    delta += s[j] * dp;
                }
                for (int j = lo; j <= t; j++) {
                    size_t ij = tok(b, j, h, T, H) * (size_t)D;
                    G[j] = s[j] * (G[j] - delta);
                    for (int d = 0; d < D; d++) {
                        dq[it + (size_t)d] += scale * G[j] * k[ij + (size_t)d];
                        dk[ij + (size_t)d] += scale * G[j] * q[it + (size_t)d];
                        dv[ij + (size_t)d] += s[j] * dout[it + (size_t)d];
                    }
                }
                if (g && g->row_sum)
                    for (int j = lo; j <= t; j++) g->row_sum[((size_t)b * H + h) * T + t] += G[j];
                if (f && g && f->kind != GRAPE_BIAS_NONE) ref_bias_backward_row(g, G, f, b, h, t, lo, T, H);
            }
    free(s);
}
