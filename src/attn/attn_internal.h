// attn_internal.h — pieces of the fused attention shared by the fast kernel, its double reference, the KV cache
// and the tests: argument checks, the BCA window rule, and the reference in double precision.
#ifndef GRAPE_ATTN_INTERNAL_H
#define GRAPE_ATTN_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "grape.h"

#define ATTN_BQ 64      // queries per tile: they live in vector lanes (a multiple of every vector width)
#define ATTN_BK 64      // keys per tile (equal to ATTN_BQ, so the diagonal key tile starts at the query tile)
#define ATTN_MAX_D 1024 // head dims above this are rejected (per-thread tiles are D x ATTN_BQ)
#define ATTN_MAX_P 256  // largest GRAPE-AP probe dim
#define ATTN_MAX_T (1 << 24) // positions are exact in float below 2^24

// LEX blockwise causal attention (xpos_lex_fox_alibi.md §2.1): with window W and blocks of h = W/2, query t in
// block c = floor(t/h) sees keys [(c-1)h, t]. Returns that lower bound (0 when BCA is off or t < W).
static inline int64_t attn_bca_lo(int64_t t, int window) {
    if (window <= 0) return 0;
    int64_t h = window / 2, lo = (t / h - 1) * h;
    return lo > 0 ? lo : 0;
}

// Effective BCA window: 0 when off, or when T <= W (LEX runs plain causal attention then).
static inline int attn_bca_window(const grape_attn_opts *opts, int T) {
    int W = opts ? opts->bca_window : 0;
    return W > 0 && T > W ? W : 0;
}

static inline float attn_scale(const grape_attn_opts *opts, int D) {
    return opts && opts->scale != 0.0f ? opts->scale : 1.0f / sqrtf((float)D);
}

// Checks shared by forward, backward and the cache: sizes, overflow, options, factor shapes and presence.
grape_status attn_check_dims(const char *fn, int B, int T, int H, int D, const grape_attn_opts *opts);
grape_status attn_check_bias(const char *fn, const grape_bias_factors *f, int B, int T, int H);

// ---------------------------------------------------------------------------------------------------------------
// Workspace convention (as the bias factors'): the caller plans the bytes once, up front, and passes the memory in;
// the public grape_attn_forward/backward are one-shot wrappers that allocate it per call. The model and the
// evaluator plan it in their arenas, so a training step or a scored window allocates nothing.

// Bytes for up to nth threads (0 when that overflows); P: GRAPE-AP probe dim (0 for other kinds), backward: plan
// the backward's key accumulators too (a backward workspace serves the forward as well).
size_t attn_workspace_bytes(int nth, int T, int H, int D, int P, int backward);
// grape_attn_forward / grape_attn_backward on a workspace of ws_bytes: they run on at most the threads it was
// planned for (GRAPE_ERR_ARG when it does not hold one thread).
grape_status attn_forward_ws(float *out, float *lse, const float *q, const float *k, const float *v,
                             const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T, int H, int D,
                             void *ws, size_t ws_bytes);
grape_status attn_backward_ws(float *dq, float *dk, float *dv, grape_bias_grads *dbias, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k, const float *v,
                              const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T, int H, int D,
                              void *ws, size_t ws_bytes);

// ---------------------------------------------------------------------------------------------------------------
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
