// attn_internal.h — pieces of the fused attention shared by the fast kernel, the KV cache, the double reference
// (tests/ref/attention_ref.h) and the tests: argument checks and the BCA window rule.
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

// LEX blockwise causal attention (arXiv 2212.10554; github.com/sunyt32/torchscale multihead_attention.py): with window
// W and blocks of h = W/2, query t in block c = floor(t/h) sees keys [(c-1)h, t]. Returns that lower bound (0 when BCA
// is off or t < W).
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

#endif
