// decode.c — streaming decode: one token per sequence per step, one grape_kv_cache (src/attn/kv_cache.c) per layer
// and sequence. The cache rotates q, k at its next position and attends over the cached keys with the bias row
// regenerated from cached key factors; the model keeps only what surrounds attention: projections, QK-RMSNorm in
// the encoding's order (official GRAPE code, model/llama-mha-*.py), KV-shift's previous projections, the MLP and the
// head.
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "model/layers.h"
#include "model/model_internal.h"

struct grape_decoder {
    const grape_model *m;
    int batch, max_len;
    int64_t t;               // tokens consumed per sequence
    grape_kv_cache **cache;  // (L, batch)
    float **prev_k, **prev_v; // (L): KV-shift's previous k, v projections (batch, C), zero before token 0
    // per-step buffers, N = batch rows
    float *x, *ln, *rstd, *qkv, *q, *k, *v, *rstdq, *rstdk, *tok, *att, *h12, *act;
    float *qg, *kg; // ROT+grape-a-* hybrids: QKNorm of the un-rotated q, k (the gates' input), else NULL
    void *arena;
};

static void *dtake(grape_arena *a, int *overflow, size_t n1, size_t n2) {
    size_t n, bytes;
    if (!size_mul(&n, n1, n2) || !size_mul(&bytes, n, sizeof(float)) || bytes > SIZE_MAX / 4) {
        *overflow = 1;
        return NULL;
    }
    return arena_take(a, bytes);
}

static void decoder_plan(grape_decoder *d, grape_arena *a, int *ov) {
    const grape_model *m = d->m;
    size_t B = (size_t)d->batch, C = (size_t)m->C, F = (size_t)m->F, E = (size_t)m->tl.E, H = (size_t)m->H;
    for (int l = 0; l < m->L; l++) {
        d->prev_k[l] = m->tl.shift_k >= 0 ? dtake(a, ov, B, C) : NULL;
        d->prev_v[l] = m->tl.shift_k >= 0 ? dtake(a, ov, B, C) : NULL;
    }
    float **rowsC[] = {&d->x, &d->ln, &d->q, &d->k, &d->v, &d->att};
    for (size_t i = 0; i < sizeof rowsC / sizeof rowsC[0]; i++) *rowsC[i] = dtake(a, ov, B, C);
    d->qg = m->gated ? dtake(a, ov, B, C) : NULL;
    d->kg = m->gated ? dtake(a, ov, B, C) : NULL;
    d->rstd = dtake(a, ov, B, 1);
    d->qkv = dtake(a, ov, B, (size_t)m->Ctot);
    d->rstdq = dtake(a, ov, B, H);
    d->rstdk = dtake(a, ov, B, H);
    d->tok = E ? dtake(a, ov, B, E) : NULL;
    d->h12 = dtake(a, ov, B, 2 * F);
    d->act = dtake(a, ov, B, F);
}

static grape_status create_caches(grape_decoder *d) {
    const grape_model *m = d->m;
    for (int l = 0; l < m->L; l++)
        for (int b = 0; b < d->batch; b++) {
            grape_status st = grape_kv_cache_create(&d->cache[(size_t)l * (size_t)d->batch + (size_t)b], m->pe[l],
                                                    d->max_len, m->attn_opts.bca_window);
            if (st) return st;
        }
    return GRAPE_OK;
}

static grape_status decoder_alloc(grape_decoder *d) {
    size_t L = (size_t)d->m->L;
    d->cache = mem_alloc(L * (size_t)d->batch * sizeof *d->cache);
    d->prev_k = mem_alloc(L * sizeof *d->prev_k);
    d->prev_v = mem_alloc(L * sizeof *d->prev_v);
    if (!d->cache || !d->prev_k || !d->prev_v) return GRAPE_ERR_NOMEM;
    grape_arena a = {NULL, 0, 0};
    int ov = 0;
    decoder_plan(d, &a, &ov);
    if (ov) return error_fail(GRAPE_ERR_NOMEM, "decoder buffers overflow (batch %d)", d->batch);
    if (!(d->arena = mem_alloc(a.used))) return GRAPE_ERR_NOMEM;
    a = (grape_arena){d->arena, a.used, 0};
    decoder_plan(d, &a, &ov);
    return create_caches(d);
}

grape_status grape_decoder_create(grape_decoder **out, const grape_model *m, int batch, int max_len) {
    if (!out || !m) return error_fail(GRAPE_ERR_ARG, "grape_decoder_create: NULL argument");
    *out = NULL;
    if (batch < 1 || max_len < 1)
        return error_fail(GRAPE_ERR_ARG, "decoder batch (%d) and max_len (%d) must be >= 1", batch, max_len);
    float scale = m->attn_opts.scale;
    if (scale != 0 && fabsf(scale * sqrtf((float)m->D) - 1.0f) > 1e-6f)
        return error_fail(GRAPE_ERR_UNSUPPORTED, "decoder: the KV cache attends with scale 1/sqrt(D) only");
    grape_decoder *d = mem_alloc(sizeof *d);
    if (!d) return GRAPE_ERR_NOMEM;
    *d = (grape_decoder){.m = m, .batch = batch, .max_len = max_len};
    grape_status st = decoder_alloc(d);
    if (st) {
        grape_decoder_free(d);
        return st;
    }
    *out = d;
    return GRAPE_OK;
}

void grape_decoder_free(grape_decoder *d) {
    if (!d) return;
    for (size_t i = 0; d->cache && i < (size_t)d->m->L * (size_t)d->batch; i++) grape_kv_cache_free(d->cache[i]);
    mem_free(d->cache);
    mem_free(d->prev_k);
    mem_free(d->prev_v);
    mem_free(d->arena);
    mem_free(d);
}

void grape_decoder_reset(grape_decoder *d) {
    d->t = 0;
    size_t n = (size_t)d->batch * (size_t)d->m->C * sizeof(float);
    for (size_t i = 0; i < (size_t)d->m->L * (size_t)d->batch; i++) grape_kv_cache_reset(d->cache[i]);
    for (int l = 0; l < d->m->L && d->prev_k[l]; l++) {
        memset(d->prev_k[l], 0, n);
        memset(d->prev_v[l], 0, n);
    }
}

int64_t grape_decoder_position(const grape_decoder *d) { return d->t; }

// ---------------------------------------------------------------------------------------------------------------

static grape_status rotate_all(grape_decoder *d, int l) {
    size_t C = (size_t)d->m->C;
    for (int b = 0; b < d->batch; b++) {
        grape_status st = grape_kv_cache_rotate(d->cache[(size_t)l * (size_t)d->batch + (size_t)b],
                                                d->q + (size_t)b * C, d->k + (size_t)b * C);
        if (st) return st;
    }
    return GRAPE_OK;
}

// QK-RMSNorm and rotation of the new q, k (in place) in the encoding's order; hybrids first keep QKNorm of the
// un-rotated q, k for the gates (as model_gate_inputs).
static grape_status encode_qk(grape_decoder *d, int l) {
    const grape_model *m = d->m;
    int64_t rows = (int64_t)d->batch * m->H;
    const float *gq = model_qk_gain(m, l, GRAPE_QUERY), *gk = model_qk_gain(m, l, GRAPE_KEY);
    if (d->qg) {
        rmsnorm_forward(d->qg, d->rstdq, d->q, gq, rows, m->D, MODEL_NORM_EPS);
        rmsnorm_forward(d->kg, d->rstdk, d->k, gk, rows, m->D, MODEL_NORM_EPS);
    }
    grape_status st = GRAPE_OK;
    if (m->order == QK_ROT_THEN_NORM) st = rotate_all(d, l);
    if (st) return st;
    rmsnorm_forward(d->q, d->rstdq, d->q, gq, rows, m->D, MODEL_NORM_EPS);
    rmsnorm_forward(d->k, d->rstdk, d->k, gk, rows, m->D, MODEL_NORM_EPS);
    return m->order == QK_NORM_THEN_ROT ? rotate_all(d, l) : GRAPE_OK;
}

// Project, encode, cache and attend the new token of every sequence in layer l: d->att (batch, C).
static grape_status step_attn_layer(grape_decoder *d, int l) {
    const grape_model *m = d->m;
    layer_view p = model_layer(m, m->params, l);
    size_t N = (size_t)d->batch, C = (size_t)m->C;
    grape_status st = gemm(d->qkv, d->ln, model_wqkv(m, l), (int64_t)N, m->Ctot, m->C, 0, 1, 0.0f);
    if (st) return st;
    model_split_qkv(d->q, d->k, d->v, d->tok, d->qkv, &p, m, 0, N, N);
    if (d->prev_k[l]) {
        float *in[MODEL_MAX_INPUTS];
        model_token_inputs(in, m, d->tok, N, 0);
        if ((st = grape_kv_shift_step(d->k, d->prev_k[l], d->k, in[m->tl.shift_k], d->batch, m->H, m->D)) ||
            (st = grape_kv_shift_step(d->v, d->prev_v[l], d->v, in[m->tl.shift_v], d->batch, m->H, m->D)))
            return st;
    }
    if ((st = encode_qk(d, l))) return st;
    for (int b = 0; b < d->batch && !st; b++) {
        float *in[MODEL_MAX_INPUTS]; // this token's inputs of sequence b: row b of each (batch, width) block
        model_token_inputs(in, m, d->tok, N, (size_t)b);
        size_t o = (size_t)b * C;
        st = grape_kv_cache_attend(d->cache[(size_t)l * N + (size_t)b], d->att + o, d->q + o, d->k + o, d->v + o,
                                   d->qg ? d->qg + o : NULL, d->kg ? d->kg + o : NULL, (const float *const *)in);
    }
    return st;
}

// x += W_3 SwiGLU(W_12 RMSNorm(x)) for the batch rows.
static grape_status step_mlp(grape_decoder *d, const layer_view *p) {
    const grape_model *m = d->m;
    int64_t N = d->batch;
    rmsnorm_forward(d->ln, d->rstd, d->x, p->ln2, N, m->C, MODEL_NORM_EPS);
    grape_status st = gemm(d->h12, d->ln, p->w12, N, 2 * m->F, m->C, 0, 1, 0.0f);
    if (st) return st;
    swiglu_forward(d->act, d->h12, N, m->F);
    return gemm(d->x, d->act, p->w3, N, m->C, m->F, 0, 1, 1.0f);
}

grape_status grape_model_decode_step(grape_model *m, grape_decoder *d, const uint8_t *tokens, float *logits) {
    if (!m || !d || !tokens || !logits || d->m != m)
        return error_fail(GRAPE_ERR_ARG, "grape_model_decode_step: NULL argument or decoder of another model");
    if (d->t >= d->max_len && !m->attn_opts.bca_window)
        return error_fail(GRAPE_ERR_ARG, "decoder cache full (%d tokens)", d->max_len);
    int64_t N = d->batch;
    for (int64_t b = 0; b < N; b++)
        if (tokens[b] >= m->V) return error_fail(GRAPE_ERR_ARG, "token %d >= vocab_size %d", tokens[b], m->V);
    grape_status st = GRAPE_OK;
    if (d->t == 0) { // a new stream starts at the model's position offset
        for (size_t i = 0; i < (size_t)m->L * (size_t)d->batch; i++) grape_kv_cache_reset_at(d->cache[i], m->pos0);
        if ((st = model_prepare(m))) return st;
    }
    embedding_forward(d->x, tokens, m->params + m->off_wte, N, m->C);
    for (int l = 0; l < m->L && !st; l++) {
        layer_view p = model_layer(m, m->params, l);
        rmsnorm_forward(d->ln, d->rstd, d->x, p.ln1, N, m->C, MODEL_NORM_EPS);
        if (!(st = step_attn_layer(d, l)) && !(st = gemm(d->x, d->att, p.wo, N, m->C, m->C, 0, 1, 1.0f)))
            st = step_mlp(d, &p);
    }
    if (st) return st;
    rmsnorm_forward(d->ln, d->rstd, d->x, m->params + m->off_lnf, N, m->C, MODEL_NORM_EPS);
    d->t++;
    return gemm(logits, d->ln, m->params + m->off_wte, N, m->V, m->C, 0, 1, 0.0f);
}
