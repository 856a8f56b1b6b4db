// decode.c — streaming decode: one token per sequence per step against a per-layer cache of the final keys k~,
// values and the per-token encoding inputs (official code §2: "cache the final k~_j = RMSNorm_k(R_j k_j) and v_j").
// Rotations are applied once at arrival (position t, or the ctx phase Phi_t); additive biases are regenerated from
// the cached factors for the new query row, so every encoding decodes exactly as the full forward computes.
#include <math.h>
#include <string.h>

#include <omp.h>

#include "core/error.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "model/layers.h"
#include "model/model_internal.h"

typedef struct {
    float *k, *v, *q; // (batch, max_len, H, D); q only with a bias that reads queries
    float *prev_k, *prev_v; // KV-shift: the previous token's k, v projections (batch, C), zero before token 0
    float *tok;       // per sequence b: kind-major (max_len, ch) blocks, b stride max_len*E
} layer_cache;

struct grape_decoder {
    const grape_model *m;
    int batch, max_len;
    int64_t t; // tokens consumed per sequence
    layer_cache *c;
    // per-step buffers, N = batch rows
    float *x, *ln, *rstd, *qkv, *qraw, *kraw, *v, *qmid, *kmid, *q, *k, *rstdq, *rstdk, *tok, *att, *h12, *act;
    double *phase, *phase_seq; // (batch*ph), (max_len*ph)
    void *bias_ws;             // batch slices of bias_bytes
    size_t bias_bytes;
    grape_bias_factors *f; // (batch)
    float *work;           // (threads, 2*max_len) scores and bias row
    void *arena;
};

static void *dtake(grape_arena *a, int *overflow, size_t n1, size_t n2, size_t elem) {
    size_t n, bytes;
    if (!size_mul(&n, n1, n2) || !size_mul(&bytes, n, elem) || bytes > SIZE_MAX / 4) {
        *overflow = 1;
        return NULL;
    }
    return arena_take(a, bytes);
}

static void decoder_plan(grape_decoder *d, grape_arena *a, int *ov) {
    const grape_model *m = d->m;
    size_t B = (size_t)d->batch, ML = (size_t)d->max_len, C = (size_t)m->C, F = (size_t)m->F, E = (size_t)m->tl.E;
    size_t ph = (size_t)m->tl.phase, f = sizeof(float);
    int need_q = m->cfg.pe.bias == GRAPE_BIAS_GRAPE_A_Q || m->cfg.pe.bias == GRAPE_BIAS_GRAPE_A_QK;
    for (int l = 0; l < m->L; l++) {
        layer_cache *c = &d->c[l];
        c->k = dtake(a, ov, B * ML, C, f);
        c->v = dtake(a, ov, B * ML, C, f);
        c->q = need_q ? dtake(a, ov, B * ML, C, f) : NULL;
        c->tok = E ? dtake(a, ov, B * ML, E, f) : NULL;
        c->prev_k = m->tl.shift ? dtake(a, ov, B, C, f) : NULL;
        c->prev_v = m->tl.shift ? dtake(a, ov, B, C, f) : NULL;
    }
    float **rowsC[] = {&d->x, &d->ln, &d->qraw, &d->kraw, &d->v, &d->qmid, &d->kmid, &d->q, &d->k, &d->att};
    for (size_t i = 0; i < sizeof rowsC / sizeof rowsC[0]; i++) *rowsC[i] = dtake(a, ov, B, C, f);
    d->rstd = dtake(a, ov, B, 1, f);
    d->qkv = dtake(a, ov, B, (size_t)m->Ctot, f);
    d->rstdq = dtake(a, ov, B, (size_t)m->H, f);
    d->rstdk = dtake(a, ov, B, (size_t)m->H, f);
    d->tok = E ? dtake(a, ov, B, E, f) : NULL;
    d->h12 = dtake(a, ov, B, 2 * F, f);
    d->act = dtake(a, ov, B, F, f);
    d->phase = ph ? dtake(a, ov, B, ph, sizeof(double)) : NULL;
    d->phase_seq = ph ? dtake(a, ov, ML, ph, sizeof(double)) : NULL;
    d->bias_ws = d->bias_bytes ? dtake(a, ov, B, align_up(d->bias_bytes), 1) : NULL;
    d->f = dtake(a, ov, B, 1, sizeof(grape_bias_factors));
    d->work = dtake(a, ov, (size_t)omp_get_max_threads(), 2 * ML, f);
}

grape_status grape_decoder_create(grape_decoder **out, const grape_model *m, int batch, int max_len) {
    if (!out || !m) return grape_fail(GRAPE_ERR_ARG, "grape_decoder_create: NULL argument");
    *out = NULL;
    if (batch < 1 || max_len < 1)
        return grape_fail(GRAPE_ERR_ARG, "decoder batch (%d) and max_len (%d) must be >= 1", batch, max_len);
    grape_decoder *d = grape_alloc(sizeof *d);
    if (!d) return GRAPE_ERR_NOMEM;
    *d = (grape_decoder){.m = m, .batch = batch, .max_len = max_len};
    d->bias_bytes = m->cfg.pe.bias != GRAPE_BIAS_NONE ? grape_bias_workspace_bytes(m->pe[0], 1, max_len) : 0;
    if (!(d->c = grape_alloc((size_t)m->L * sizeof *d->c))) {
        grape_decoder_free(d);
        return GRAPE_ERR_NOMEM;
    }
    grape_arena a = {NULL, 0, 0};
    int ov = 0;
    decoder_plan(d, &a, &ov);
    if (ov) {
        grape_decoder_free(d);
        return grape_fail(GRAPE_ERR_NOMEM, "decoder cache size overflows (batch %d, max_len %d)", batch, max_len);
    }
    if (!(d->arena = grape_alloc(a.used))) {
        grape_decoder_free(d);
        return GRAPE_ERR_NOMEM;
    }
    a = (grape_arena){d->arena, a.used, 0};
    decoder_plan(d, &a, &ov);
    *out = d;
    return GRAPE_OK;
}

void grape_decoder_free(grape_decoder *d) {
    if (!d) return;
    grape_free(d->arena);
    grape_free(d->c);
    grape_free(d);
}

void grape_decoder_reset(grape_decoder *d) {
    d->t = 0;
    size_t n = (size_t)d->batch * (size_t)d->m->C * sizeof(float);
    for (int l = 0; l < d->m->L && d->c[l].prev_k; l++) {
        memset(d->c[l].prev_k, 0, n);
        memset(d->c[l].prev_v, 0, n);
    }
}
int64_t grape_decoder_position(const grape_decoder *d) { return d->t; }

// ---------------------------------------------------------------------------------------------------------------

// Pointers to sequence b's cached token inputs, prefix (1, t+1, ch) per kind.
static grape_pe_token_inputs seq_inputs(const grape_decoder *d, const layer_cache *c, int b) {
    size_t ML = (size_t)d->max_len;
    return model_token_inputs(d->m, c->tok + (size_t)b * ML * (size_t)d->m->tl.E, ML);
}

// Append this step's token inputs (kind-major over N = batch) to each sequence's cache at row t.
static void cache_tokens(grape_decoder *d, layer_cache *c) {
    const tok_layout *tl = &d->m->tl;
    const int chans[] = {tl->phase, tl->gate, tl->probe, tl->shift};
    size_t B = (size_t)d->batch, ML = (size_t)d->max_len, t = (size_t)d->t;
    for (int b = 0; b < d->batch; b++) {
        const float *src = d->tok;
        float *dst = c->tok + (size_t)b * ML * (size_t)tl->E;
        for (int kind = 0; kind < 4; kind++) {
            size_t ch = (size_t)chans[kind];
            memcpy(dst + t * ch, src + (size_t)b * ch, ch * sizeof(float));
            src += B * ch;
            dst += ML * ch;
        }
    }
}

// grape-m-ctx: Phi_t of each sequence, from the phase logits of its whole prefix (same double cumsum as training).
static grape_status step_phase(grape_decoder *d, const layer_cache *c, int l) {
    size_t ph = (size_t)d->m->tl.phase;
    for (int b = 0; b < d->batch; b++) {
        grape_pe_token_inputs in = seq_inputs(d, c, b);
        grape_status st = grape_phase_forward(d->phase_seq, in.phase_logit, d->m->pe[l], 1, (int)d->t + 1);
        if (st) return st;
        memcpy(d->phase + (size_t)b * ph, d->phase_seq + (size_t)d->t * ph, ph * sizeof(double));
    }
    return GRAPE_OK;
}

// Softmax attention of the new query of (b,h) over keys 0..t: out = sum_j p_j v_j, p = softmax(scale q.k_j + bias_j).
// out: (D); q: (D); k, v: (t+1) rows of stride ld; bias: (t+1) or NULL; s: (t+1) scratch.
static void attend_row(float *out, float *s, const float *q, const float *k, const float *v, const float *bias,
                       size_t ld, int n, int D, float scale) {
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        float dot = 0;
        for (int i = 0; i < D; i++) dot += q[i] * k[(size_t)j * ld + i];
        s[j] = scale * dot + (bias ? bias[j] : 0.0f);
        mx = s[j] > mx ? s[j] : mx;
    }
    for (int i = 0; i < D; i++) out[i] = 0;
    for (int j = 0; j < n; j++) {
        float p = expf(s[j] - mx);
        sum += p;
        for (int i = 0; i < D; i++) out[i] += p * v[(size_t)j * ld + i];
    }
    for (int i = 0; i < D; i++) out[i] /= sum;
}

static grape_status step_attention(grape_decoder *d, const layer_cache *c, int l) {
    const grape_model *m = d->m;
    size_t ML = (size_t)d->max_len, C = (size_t)m->C, D = (size_t)m->D;
    int n = (int)d->t + 1, H = m->H;
    if (d->bias_ws)
        for (int b = 0; b < d->batch; b++) {
            grape_pe_token_inputs in = seq_inputs(d, c, b);
            const float *qb = c->q ? c->q + (size_t)b * ML * C : NULL;
            grape_status st = grape_bias_factors_forward(&d->f[b], (char *)d->bias_ws + (size_t)b * align_up(d->bias_bytes),
                                                         m->pe[l], qb, c->k + (size_t)b * ML * C, &in, 0, 1, n);
            if (st) return st;
        }
    float scale = m->attn_opts.scale > 0 ? m->attn_opts.scale : 1.0f / sqrtf((float)m->D);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < d->batch * H; bh++) {
        int b = bh / H, h = bh % H;
        float *s = d->work + (size_t)omp_get_thread_num() * 2 * ML, *bias = d->bias_ws ? s + ML : NULL;
        if (bias) grape_bias_block(bias, &d->f[b], 0, h, n - 1, 1, 0, n);
        size_t base = (size_t)b * ML * C + (size_t)h * D;
        attend_row(d->att + (size_t)b * C + (size_t)h * D, s, d->q + (size_t)b * C + (size_t)h * D, c->k + base,
                   c->v + base, bias, C, n, m->D, scale);
    }
    return GRAPE_OK;
}

// Project, encode and cache the new token of every sequence in layer l, then attend.
static grape_status step_attn_layer(grape_decoder *d, int l) {
    const grape_model *m = d->m;
    layer_cache *c = &d->c[l];
    layer_view p = model_layer(m, m->params, l);
    size_t N = (size_t)d->batch, C = (size_t)m->C, ML = (size_t)d->max_len, t = (size_t)d->t;
    grape_status st = gemm(d->qkv, d->ln, model_wqkv(m, l), (int64_t)N, m->Ctot, m->C, 0, 1, 0.0f);
    if (st) return st;
    model_split_qkv(d->qraw, d->kraw, d->v, d->tok, d->qkv, &p, m, N);
    if (c->prev_k) {
        const float *shift = model_token_inputs(m, d->tok, N).shift_logit;
        if ((st = grape_kv_shift_step(d->kraw, c->prev_k, d->kraw, shift, d->batch, m->H, m->D)) ||
            (st = grape_kv_shift_step(d->v, c->prev_v, d->v, shift, d->batch, m->H, m->D)))
            return st;
    }
    if (c->tok) cache_tokens(d, c);
    if (d->phase && (st = step_phase(d, c, l))) return st;
    qk_ctx q = {.pe = m->pe[l], .pos = {.pos0 = d->t, .xpos_anchor = 0.0, .phase = d->phase}, .B = d->batch,
                .T = 1, .H = m->H, .D = m->D, .order = m->order};
    if ((st = model_qk_forward(d->q, d->qmid, d->rstdq, d->qraw, p.q_norm, &q, GRAPE_QUERY)) ||
        (st = model_qk_forward(d->k, d->kmid, d->rstdk, d->kraw, p.k_norm, &q, GRAPE_KEY)))
        return st;
    for (size_t b = 0; b < N; b++) {
        size_t row = (b * ML + t) * C;
        memcpy(c->k + row, d->k + b * C, C * sizeof(float));
        memcpy(c->v + row, d->v + b * C, C * sizeof(float));
        if (c->q) memcpy(c->q + row, d->q + b * C, C * sizeof(float));
    }
    return step_attention(d, c, l);
}

grape_status grape_model_decode_step(grape_model *m, grape_decoder *d, const uint8_t *tokens, float *logits) {
    if (!m || !d || !tokens || !logits || d->m != m)
        return grape_fail(GRAPE_ERR_ARG, "grape_model_decode_step: NULL argument or decoder of another model");
    if (d->t >= d->max_len) return grape_fail(GRAPE_ERR_ARG, "decoder cache full (%d tokens)", d->max_len);
    size_t N = (size_t)d->batch;
    for (size_t b = 0; b < N; b++)
        if (tokens[b] >= m->V) return grape_fail(GRAPE_ERR_ARG, "token %d >= vocab_size %d", tokens[b], m->V);
    grape_status st = d->t == 0 ? grape_model_params_changed(m) : GRAPE_OK; // a new stream sees current params
    if (st) return st;
    embedding_forward(d->x, tokens, m->params + m->off_wte, (int64_t)N, m->C);
    for (int l = 0; l < m->L && !st; l++) {
        layer_view p = model_layer(m, m->params, l);
        rmsnorm_forward(d->ln, d->rstd, d->x, p.ln1, (int64_t)N, m->C, MODEL_NORM_EPS);
        if ((st = step_attn_layer(d, l)) || (st = gemm(d->x, d->att, p.wo, (int64_t)N, m->C, m->C, 0, 1, 1.0f)))
            break;
        rmsnorm_forward(d->ln, d->rstd, d->x, p.ln2, (int64_t)N, m->C, MODEL_NORM_EPS);
        if ((st = gemm(d->h12, d->ln, p.w12, (int64_t)N, 2 * m->F, m->C, 0, 1, 0.0f))) break;
        swiglu_forward(d->act, d->h12, (int64_t)N, m->F);
        st = gemm(d->x, d->act, p.w3, (int64_t)N, m->C, m->F, 0, 1, 1.0f);
    }
    if (st) return st;
    rmsnorm_forward(d->ln, d->rstd, d->x, m->params + m->off_lnf, (int64_t)N, m->C, MODEL_NORM_EPS);
    d->t++;
    return gemm(logits, d->ln, m->params + m->off_wte, (int64_t)N, m->V, m->C, 0, 1, 0.0f);
}
