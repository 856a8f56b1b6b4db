// attention_ref.h — the double-precision reference of the fused attention (attention_ref.c), a test oracle.
#ifndef GRAPE_REF_ATTENTION_REF_H
#define GRAPE_REF_ATTENTION_REF_H

#include "attn/attn_internal.h"

// Double-precision reference: the materialised bias row, softmax and its backward, one query row at a time.
// It is the executable spec and the oracle of the tests. Same layouts as the fast kernel, all in double.

typedef struct {
    grape_bias_kind kind;
    int P;
    const double *slope;   // (H)
    const double *gate_q;  // (B,T,H) or NULL
    const double *gate_k;  // (B,T,H) or NULL
    const double *cum;     // (B,T,H) or NULL
    const double *probe_q; // (B,T,H,P) or NULL
    const double *probe_k; // (B,T,H,P) or NULL
} attn_ref_factors;

typedef struct {
    double *slope, *gate_q, *gate_k, *cum, *probe_q, *probe_k; // shaped as the factors; NULL skips
    double *row_sum; // (B,H,T): sum_j dS(t,j), 0 in exact arithmetic (FoX's query-side dcum); NULL skips
} attn_ref_grads;

// out: (B,T,H,D); lse: (B,H,T); q, k, v: (B,T,H,D); f NULL for no bias. window as grape_attn_opts.bca_window.
void attn_forward_ref(double *out, double *lse, const double *q, const double *k, const double *v,
                      const attn_ref_factors *f, double scale, int window, int B, int T, int H, int D);
// dq, dk, dv: (B,T,H,D) +=; g += factor gradients (may be NULL); dout: (B,T,H,D).
void attn_backward_ref(double *dq, double *dk, double *dv, attn_ref_grads *g, const double *dout, const double *q,
                       const double *k, const double *v, const attn_ref_factors *f, double scale, int window, int B,
                       int T, int H, int D);
// The bias b(t,j) of batch b, head h for keys j in [lo, t] into row[j] (double closed forms of grape.h).
void attn_ref_bias_row(double *row, const attn_ref_factors *f, int b, int h, int t, int lo, int T, int H);

#endif
