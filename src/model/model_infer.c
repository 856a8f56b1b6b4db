// model_infer.c — the forward-only evaluator (grape.h "Evaluation"): one window of T tokens, layer by layer.
//   x = wte[tokens];  per layer: token chunks  ln1 -> fused projection -> q, k, v, token inputs (whole-window rows)
//                                whole window  KV-shift, phase, q/k path, bias factors, fused attention
//                                token chunks  x += W_o att;  x += W_3 SwiGLU(W_12 RMSNorm(x))
//   token chunks: logits = RMSNorm(x) wte^T, per-position cross-entropy.
// The pieces are the training forward's own (model_fwd.c model_attn_project / _mix / _out, model_mlp_forward),
// pointed at the evaluator's buffers through a layer_acts view. What the window needs at once is what attention
// needs: the residual stream and one layer's q, k, v, token inputs and output, O(T) floats; the flash-style kernel
// itself keeps O(1) per thread. Nothing is saved for a backward and one set of buffers serves every layer.
#include <math.h>
#include <string.h>

#include <omp.h>

#include "attn/attn_internal.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "model/layers.h"
#include "model/model_internal.h"

struct grape_evaluator {
    grape_model *m;
    int max_T;
    layer_acts a; // whole-window buffers of one layer (every layer reuses them)
    float *ln, *rstd, *qkv, *h12, *act, *logits, *lse; // (chunk, C), (chunk), (chunk, Ctot), (chunk, 2F), ...
    void *attn_ws;                                     // the attention forward's workspace
    size_t attn_ws_bytes;
    grape_eval_observer obs;
    void *obs_ctx;
    uint8_t *argmax; // (max_T) most likely next byte per position, when asked for (grape_evaluator_argmax)
    void *arena;
    size_t bytes;
};

// n1 * n2 elements of elem bytes from the arena; *ov flags a size that overflows.
static void *take(grape_arena *a, int *ov, size_t n1, size_t n2, size_t elem) {
    size_t n, bytes;
    if (!size_mul(&n, n1, n2) || !size_mul(&bytes, n, elem) || bytes > SIZE_MAX / 4) *ov = 1;
    return *ov ? NULL : arena_take(a, bytes);
}

static void plan(grape_evaluator *e, grape_arena *ar, int *ov) {
    const grape_model *m = e->m;
    size_t T = (size_t)e->max_T, C = (size_t)m->C, H = (size_t)m->H, f = sizeof(float);
    size_t n = T < GRAPE_EVAL_CHUNK ? T : GRAPE_EVAL_CHUNK;
    layer_acts *a = &e->a;
    *a = (layer_acts){0};
    a->x = take(ar, ov, T, C, f);
    a->qraw = take(ar, ov, T, C, f);
    a->kraw = take(ar, ov, T, C, f);
    a->q = take(ar, ov, T, C, f);
    a->k = take(ar, ov, T, C, f);
    a->v = take(ar, ov, T, C, f);
    a->ko = m->tl.shift_k >= 0 ? take(ar, ov, T, C, f) : NULL;
    a->vo = m->tl.shift_k >= 0 ? take(ar, ov, T, C, f) : NULL;
    a->qmid = m->order != QK_NORM_ONLY ? take(ar, ov, T, C, f) : NULL;
    a->kmid = m->order != QK_NORM_ONLY ? take(ar, ov, T, C, f) : NULL;
    a->rstdq = take(ar, ov, T, H, f);
    a->rstdk = take(ar, ov, T, H, f);
    a->qg = m->gated ? take(ar, ov, T, C, f) : NULL; // ROT+grape-a-*: the gates read QKNorm of the raw q, k
    a->kg = m->gated ? take(ar, ov, T, C, f) : NULL;
    a->rstdqg = m->gated ? take(ar, ov, T, H, f) : NULL;
    a->rstdkg = m->gated ? take(ar, ov, T, H, f) : NULL;
    a->tok = m->tl.E ? take(ar, ov, T, (size_t)m->tl.E, f) : NULL;
    a->phase = m->tl.phase >= 0 ? take(ar, ov, T, (size_t)tok_width(&m->tl, m->tl.phase), sizeof(double)) : NULL;
    a->bias_ws = m->cfg.pe.bias != GRAPE_BIAS_NONE ? take(ar, ov, grape_bias_workspace_bytes(m->pe[0], 1, e->max_T), 1, 1)
                                                   : NULL;
    a->att = take(ar, ov, T, C, f);
    a->lse = take(ar, ov, T, H, f);
    e->ln = take(ar, ov, n, C, f);
    e->rstd = take(ar, ov, n, 1, f);
    e->qkv = take(ar, ov, n, (size_t)m->Ctot, f);
    e->h12 = take(ar, ov, n, 2 * (size_t)m->F, f);
    e->act = take(ar, ov, n, (size_t)m->F, f);
    e->logits = take(ar, ov, n, (size_t)m->V, f);
    e->lse = take(ar, ov, n, 1, f);
    if (!e->attn_ws_bytes) *ov = 1;
    e->attn_ws = take(ar, ov, e->attn_ws_bytes, 1, 1);
}

grape_status grape_evaluator_create(grape_evaluator **out, grape_model *m, int max_T) {
    if (!out || !m) return error_fail(GRAPE_ERR_ARG, "grape_evaluator_create: NULL argument");
    *out = NULL;
    if (max_T < 1 || max_T > ATTN_MAX_T)
        return error_fail(GRAPE_ERR_ARG, "evaluation length must be in [1, %d], got %d", ATTN_MAX_T, max_T);
    grape_evaluator *e = mem_alloc(sizeof *e);
    if (!e) return GRAPE_ERR_NOMEM;
    int nth = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    *e = (grape_evaluator){.m = m, .max_T = max_T,
                           .attn_ws_bytes = attn_workspace_bytes(nth, max_T, m->H, m->D, model_probe_dim(m), 0)};
    grape_arena ar = {NULL, 0, 0};
    int ov = 0;
    plan(e, &ar, &ov);
    grape_status st = ov ? error_fail(GRAPE_ERR_NOMEM, "evaluation buffers for T = %d overflow", max_T) : GRAPE_OK;
    if (!st && !(e->arena = mem_alloc(ar.used))) st = GRAPE_ERR_NOMEM;
    if (!st) {
        e->bytes = ar.used;
        ar = (grape_arena){e->arena, ar.used, 0};
        plan(e, &ar, &ov);
    }
    // the rotation's tables for a whole window, planned now so that scoring allocates nothing; the encodings'
    // tables derived once here, not per window
    for (int l = 0; l < m->L && !st; l++) st = grape_pe_reserve(m->pe[l], 1, max_T);
    if (!st) st = grape_model_params_changed(m);
    if (st) {
        grape_evaluator_free(e);
        return st;
    }
    *out = e;
    return GRAPE_OK;
}

void grape_evaluator_free(grape_evaluator *e) {
    if (!e) return;
    mem_free(e->arena);
    mem_free(e);
}

size_t grape_evaluator_bytes(const grape_evaluator *e) { return e->bytes; }

void grape_evaluator_observe(grape_evaluator *e, grape_eval_observer fn, void *ctx) {
    e->obs = fn;
    e->obs_ctx = ctx;
}

void grape_evaluator_argmax(grape_evaluator *e, uint8_t *argmax) { e->argmax = argmax; }

// ---------------------------------------------------------------------------------------------------------------

static size_t chunk_len(size_t n0, size_t T) { return T - n0 < GRAPE_EVAL_CHUNK ? T - n0 : GRAPE_EVAL_CHUNK; }

static grape_status layer_forward(grape_evaluator *e, int l, int T) {
    const grape_model *m = e->m;
    size_t N = (size_t)T, C = (size_t)m->C;
    const float *g1 = m->params + m->off[l].ln1;
    layer_acts view = e->a;
    view.ln1 = e->ln, view.rstd1 = e->rstd;
    grape_status st = GRAPE_OK;
    for (size_t n0 = 0; n0 < N && !st; n0 += GRAPE_EVAL_CHUNK) {
        size_t n = chunk_len(n0, N);
        rmsnorm_forward(e->ln, e->rstd, e->a.x + n0 * C, g1, (int64_t)n, m->C, MODEL_NORM_EPS);
        st = model_attn_project(m, l, &view, e->qkv, n0, n, N);
    }
    if (st || (st = model_attn_mix(m, l, &e->a, 1, T, e->attn_ws, e->attn_ws_bytes))) return st;
    if (e->obs && (st = e->obs(e->obs_ctx, l, e->a.q, e->a.k, e->a.bias_ws ? e->a.f : NULL, T))) return st;
    view.ln2 = e->ln, view.rstd2 = e->rstd, view.h12 = e->h12, view.act = e->act;
    for (size_t n0 = 0; n0 < N && !st; n0 += GRAPE_EVAL_CHUNK) {
        size_t n = chunk_len(n0, N);
        view.x = view.xmid = e->a.x + n0 * C; // the residual stream is updated in place
        view.att = e->a.att + n0 * C;
        if (!(st = model_attn_out(m, l, &view, n))) st = model_mlp_forward(m, l, &view, view.xmid, n);
    }
    return st;
}

// Per-position cross-entropy of n rows from their logits; a NaN or infinite logit is an error.
static grape_status chunk_loss(grape_evaluator *e, const uint8_t *targets, size_t n0, size_t n, float *loss,
                               double *nats) {
    int V = e->m->V;
    for (size_t i = 0; i < n * (size_t)V; i++)
        if (!isfinite(e->logits[i]))
            return error_fail(GRAPE_ERR_NUMERIC, "non-finite logit (%g) at position %zu of the window", e->logits[i],
                              n0 + i / (size_t)V);
    double mean;
    cross_entropy_forward(&mean, e->lse, e->logits, targets + n0, (int64_t)n, V);
    for (size_t i = 0; i < n; i++) {
        double li = (double)e->lse[i] - (double)e->logits[i * (size_t)V + targets[n0 + i]];
        *nats += li;
        if (loss) loss[n0 + i] = (float)li;
    }
    for (size_t i = 0; e->argmax && i < n; i++) { // first index of the largest logit
        const float *z = e->logits + i * (size_t)V;
        int best = 0;
        for (int v = 1; v < V; v++) best = z[v] > z[best] ? v : best;
        e->argmax[n0 + i] = (uint8_t)best;
    }
    return GRAPE_OK;
}

static grape_status check_window(const grape_evaluator *e, const uint8_t *tokens, const uint8_t *targets, int T) {
    if (!tokens || !targets) return error_fail(GRAPE_ERR_ARG, "grape_model_score: tokens or targets is NULL");
    if (T < 1 || T > e->max_T)
        return error_fail(GRAPE_ERR_ARG, "window of %d tokens outside the evaluator's 1..%d", T, e->max_T);
    for (int i = 0; i < T; i++)
        if (tokens[i] >= e->m->V || targets[i] >= e->m->V)
            return error_fail(GRAPE_ERR_ARG, "byte %d at position %d >= vocab_size %d",
                              tokens[i] >= e->m->V ? tokens[i] : targets[i], i, e->m->V);
    return GRAPE_OK;
}

grape_status grape_model_score(grape_evaluator *e, const uint8_t *tokens, const uint8_t *targets, int T, float *loss,
                               double *nats) {
    if (!e || !nats) return error_fail(GRAPE_ERR_ARG, "grape_model_score: NULL argument");
    grape_model *m = e->m;
    grape_status st = check_window(e, tokens, targets, T);
    if (st) return st;
    size_t N = (size_t)T, C = (size_t)m->C;
    embedding_forward(e->a.x, tokens, m->params + m->off_wte, (int64_t)N, m->C);
    for (int l = 0; l < m->L && !st; l++) st = layer_forward(e, l, T);
    *nats = 0;
    for (size_t n0 = 0; n0 < N && !st; n0 += GRAPE_EVAL_CHUNK) {
        size_t n = chunk_len(n0, N);
        rmsnorm_forward(e->ln, e->rstd, e->a.x + n0 * C, m->params + m->off_lnf, (int64_t)n, m->C, MODEL_NORM_EPS);
        st = gemm(e->logits, e->ln, m->params + m->off_wte, (int64_t)n, m->V, m->C, 0, 1, 0.0f);
        if (!st) st = chunk_loss(e, targets, n0, n, loss, nats);
    }
    return st;
}
