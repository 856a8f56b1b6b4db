// attention_ref.c — the double-precision reference of the fused attention: for every query row it materialises
// the bias row from the factors, takes the softmax, and (backward) pushes dS = P (dP - Δ) into q, k, v and the
// factors. O(T^2) time, O(T) memory per row; the oracle of test_attn*.c.
#include <stdlib.h>

#include "attn/attn_internal.h"
#include "core/mathx.h"

static size_t tok(int b, int t, int h, int T, int H) { return ((size_t)b * (size_t)T + (size_t)t) * (size_t)H + (size_t)h; }

// GRAPE-AP edge x(t,l) = <probe_q(t), probe_k(l)> / P (grape.h; official v1 passes the raw query probe and the
// rotated, normalised key probe as the factors).
static double ap_edge(const attn_ref_factors *f, size_t it, size_t il) {
    double s = 0;
    for (int p = 0; p < f->P; p++) s += f->probe_q[it * (size_t)f->P + (size_t)p] * f->probe_k[il * (size_t)f->P + (size_t)p];
    return s / f->P;
}

// GRAPE §4-5, official code §2.4-2.7, FoX §3.1: b(t,j) for j in [lo, t].
void attn_ref_bias_row(double *row, const attn_ref_factors *f, int b, int h, int t, int lo, int T, int H) {
    size_t it = tok(b, t, h, T, H);
    for (int j = lo; j <= t; j++) {
        size_t ij = tok(b, j, h, T, H);
        double d = (double)(t - j);
        switch (f->kind) {
        case GRAPE_BIAS_ALIBI: row[j] = -f->slope[h] * d; break;
        case GRAPE_BIAS_GRAPE_A_K:
        case GRAPE_BIAS_GRAPE_A_Q:
        case GRAPE_BIAS_GRAPE_A_QK:
            row[j] = -f->slope[h] * d * ((f->gate_q ? f->gate_q[it] : 0) + (f->gate_k ? f->gate_k[ij] : 0));
            break;
        case GRAPE_BIAS_FOX: row[j] = f->cum[it] - f->cum[ij]; break;
        default: row[j] = 0; break;
        }
    }
    if (f->kind == GRAPE_BIAS_GRAPE_AP) { // reverse running sum b(t,j) = b(t,j+1) + psi(t,j+1): no cancellation
        row[t] = 0;
        for (int j = t - 1; j >= lo; j--)
            row[j] = row[j + 1] + f->slope[h] * log_sigmoid_d(ap_edge(f, it, tok(b, j + 1, h, T, H)));
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
    size_t it = tok(b, t, h, T, H);
    double sl = f->slope ? f->slope[h] : 0;
    for (int j = lo; j <= t; j++) {
        size_t ij = tok(b, j, h, T, H);
        double d = (double)(t - j);
        switch (f->kind) {
        case GRAPE_BIAS_ALIBI:
            if (g->slope) g->slope[h] -= d * G[j];
            break;
        case GRAPE_BIAS_GRAPE_A_K:
        case GRAPE_BIAS_GRAPE_A_Q:
        case GRAPE_BIAS_GRAPE_A_QK: {
            double lam = (f->gate_q ? f->gate_q[it] : 0) + (f->gate_k ? f->gate_k[ij] : 0);
            if (g->slope) g->slope[h] -= d * lam * G[j];
            if (f->gate_q && g->gate_q) g->gate_q[it] -= sl * d * G[j];
            if (f->gate_k && g->gate_k) g->gate_k[ij] -= sl * d * G[j];
            break;
        }
        case GRAPE_BIAS_FOX:
            if (g->cum) {
                g->cum[it] += G[j];
                g->cum[ij] -= G[j];
            }
            break;
        default: break;
        }
    }
    if (f->kind != GRAPE_BIAS_GRAPE_AP) return;
    // psi(t,l) enters b(t,j) for every lo <= j < l: da(t,l) = sum_{lo<=j<l} G(t,j), an exclusive prefix.
    double da = 0;
    int P = f->P;
    for (int l = lo + 1; l <= t; l++) {
        da += G[l - 1];
        size_t il = tok(b, l, h, T, H);
        double x = ap_edge(f, it, il);
        if (g->slope) g->slope[h] += da * log_sigmoid_d(x);
        double dx = da * sl * sigmoid_d(-x) / P;
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
