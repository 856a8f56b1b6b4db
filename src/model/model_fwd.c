// model_fwd.c — forward and backward of the byte-level Llama-style model (official GRAPE code,
// github.com/model-architectures/GRAPE model/llama-mha-*.py):
//   x = wte[tokens];  per layer: x += W_o Attn(PE(QKNorm(W_qkv RMSNorm(x))));  x += W_3 SwiGLU(W_12 RMSNorm(x));
//   logits = RMSNorm(x) wte^T;  loss = mean CE.
// GEMMs go through core/gemm.h (threads from the BLAS), elementwise kernels thread with OpenMP. Every buffer is a
// slice of the model arena: nothing is allocated here.
#include <string.h>

#include "attn/attn_internal.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/prof.h"
#include "model/layers.h"
#include "model/model_internal.h"

static void zero_f(float *x, size_t n) { memset(x, 0, n * sizeof(float)); }

// ---------------------------------------------------------------------------------------------------------------
// Fused projection split/merge: row n of qkv (N, 3C+E) is [q | k | v | token input channel 0 | 1 | ...].

// Rows [n0, n0+n) of N tokens: qkv holds the n rows; q, k, v: (N,C); tok: channel-major (N*E), the channels with
// a learned bias (grape-m-ctx phase c, FoX b_f) get it added. The training forward splits all rows at once (n0 = 0, n = N), the
// evaluator one token chunk at a time.
void model_split_qkv(float *q, float *k, float *v, float *tok, const float *qkv, const layer_view *p,
                     const grape_model *m, size_t n0, size_t n, size_t N) {
    size_t C = (size_t)m->C, Ct = (size_t)m->Ctot;
    const tok_layout *tl = &m->tl;
#pragma omp parallel for schedule(static) if (PAR(n * Ct))
    for (size_t i = 0; i < n; i++) {
        const float *r = qkv + i * Ct;
        size_t row = n0 + i;
        memcpy(q + row * C, r, C * sizeof(float));
        memcpy(k + row * C, r + C, C * sizeof(float));
        memcpy(v + row * C, r + 2 * C, C * sizeof(float));
        float *t = tok;
        for (int ch = 0; ch < tl->n; ch++) {
            int w = tl->width[ch];
            const float *b = tl->bias[ch] >= 0 ? p->b_tok + tl->bias[ch] : NULL;
            for (int c = 0; c < w; c++) t[row * (size_t)w + c] = b ? r[tl->col[ch] + c] + b[c] : r[tl->col[ch] + c];
            t += N * (size_t)w;
        }
    }
}

// db += sum over rows of x, in double: the token gradients of a bias cancel heavily across tokens.
// db: (ch); x: (N,ch)
static void sum_rows(float *db, const float *x, size_t N, int ch) {
    for (int i = 0; i < ch; i++) {
        double s = 0;
        for (size_t n = 0; n < N; n++) s += x[n * (size_t)ch + i];
        db[i] += (float)s;
    }
}

// The transpose of split_qkv: dqkv rows from dq, dk, dv, dtok; the bias gradients sum dtok over tokens.
static void merge_dqkv(float *dqkv, layer_view *g, const float *dq, const float *dk, const float *dv,
                       const float *dtok, const grape_model *m, size_t N) {
    size_t C = (size_t)m->C, Ct = (size_t)m->Ctot, E = (size_t)m->tl.E;
#pragma omp parallel for schedule(static) if (PAR(N * Ct))
    for (size_t n = 0; n < N; n++) {
        float *r = dqkv + n * Ct;
        memcpy(r, dq + n * C, C * sizeof(float));
        memcpy(r + C, dk + n * C, C * sizeof(float));
        memcpy(r + 2 * C, dv + n * C, C * sizeof(float));
        // Channel-major dtok back to row-major extras: channel blocks are (N, width) each, laid end to end.
        const float *t = dtok;
        for (int ch = 0; ch < m->tl.n && E; ch++) {
            int w = m->tl.width[ch];
            for (int i = 0; i < w; i++) r[m->tl.col[ch] + i] = t[n * (size_t)w + i];
            t += N * (size_t)w;
        }
    }
    for (int ch = 0; ch < m->tl.n; ch++)
        if (m->tl.bias[ch] >= 0)
            sum_rows(g->b_tok + m->tl.bias[ch], dtok + N * (size_t)(m->tl.col[ch] - 3 * m->C), N, m->tl.width[ch]);
}

// ---------------------------------------------------------------------------------------------------------------
// q/k path: QK-RMSNorm (gain shared across heads) composed with the rotation in the encoding's order.

// Positions of a (B,T) block. xPos scales q by zeta^((n-c)/sb) and k by zeta^((c-n)/sb); the anchor c cancels in
// every logit (LEX §3), so it is taken at the block's centre: the scales then stay within zeta_min^(+-T/(2 sb)),
// finite in float for T up to the limit grape_rot_forward checks (about 68k tokens at the defaults) instead of
// overflowing past ~36k as anchor 0 does (arXiv 2212.10554 §3.3 notes the same scale growth).
static grape_positions qk_positions(const qk_ctx *c) {
    return (grape_positions){.pos0 = c->pos0, .xpos_anchor = (double)(c->pos0 + c->T / 2), .phase = c->phase};
}

// out: (B,T,H,D) final; mid: (B,T,H,D) between the two steps (NULL for QK_NORM_ONLY); raw: projection output.
grape_status model_qk_forward(float *out, float *mid, float *rstd, const float *raw, const float *g,
                               const qk_ctx *c, grape_side side) {
    int64_t rows = (int64_t)c->B * c->T * c->H;
    grape_positions pos = qk_positions(c);
    switch (c->order) {
    case QK_NORM_ONLY:
        rmsnorm_forward(out, rstd, raw, g, rows, c->D, MODEL_NORM_EPS);
        return GRAPE_OK;
    case QK_NORM_THEN_ROT:
        rmsnorm_forward(mid, rstd, raw, g, rows, c->D, MODEL_NORM_EPS);
        return grape_rot_forward(out, mid, c->pe, &pos, side, c->B, c->T);
    default: {
        grape_status st = grape_rot_forward(mid, raw, c->pe, &pos, side, c->B, c->T);
        if (!st) rmsnorm_forward(out, rstd, mid, g, rows, c->D, MODEL_NORM_EPS);
        return st;
    }
    }
}

// draw += d/draw; dg, dpe, dphase accumulate. dmid: scratch (B,T,H,D).
static grape_status qk_backward(float *draw, float *dmid, float *dg, float *dpe, double *dphase, const float *dout,
                                const float *raw, const float *mid, const float *rstd, const float *g,
                                const qk_ctx *c, grape_side side) {
    int64_t rows = (int64_t)c->B * c->T * c->H;
    size_t n = (size_t)rows * (size_t)c->D;
    grape_positions pos = qk_positions(c);
    grape_status st = GRAPE_OK;
    switch (c->order) {
    case QK_NORM_ONLY:
        rmsnorm_backward(draw, dg, dout, raw, g, rstd, rows, c->D);
        break;
    case QK_NORM_THEN_ROT:
        zero_f(dmid, n);
        st = grape_rot_backward(dmid, dpe, dphase, dout, mid, c->pe, &pos, side, c->B, c->T);
        if (!st) rmsnorm_backward(draw, dg, dmid, raw, g, rstd, rows, c->D);
        break;
    default:
        zero_f(dmid, n);
        rmsnorm_backward(dmid, dg, dout, mid, g, rstd, rows, c->D);
        st = grape_rot_backward(draw, dpe, dphase, dmid, raw, c->pe, &pos, side, c->B, c->T);
    }
    return st;
}

static qk_ctx qk_context(const grape_model *m, const layer_acts *a, int l, int B, int T) {
    return (qk_ctx){.pe = m->pe[l], .pos0 = m->pos0, .phase = a->phase, .B = B, .T = T, .H = m->H, .D = m->D,
                    .order = m->order};
}

// ---------------------------------------------------------------------------------------------------------------
// Forward

// grape-m-ctx with a position offset: the phase starts at Phi_0 = pos0 (the offset plays the position's role).
static void offset_phase(double *phase, int64_t pos0, size_t n) {
    for (size_t i = 0; pos0 && i < n; i++) phase[i] += (double)pos0;
}

void model_gate_inputs(const grape_model *m, layer_acts *a, int l, size_t N, const float **gq, const float **gk) {
    *gq = a->q, *gk = a->k;
    if (!a->qg) return;
    int64_t rows = (int64_t)N * m->H;
    rmsnorm_forward(a->qg, a->rstdqg, a->qraw, model_qk_gain(m, l, GRAPE_QUERY), rows, m->D, MODEL_NORM_EPS);
    rmsnorm_forward(a->kg, a->rstdkg, a->kraw, model_qk_gain(m, l, GRAPE_KEY), rows, m->D, MODEL_NORM_EPS);
    *gq = a->qg, *gk = a->kg;
}


// The forward is cut into pieces that work on the buffers a layer_acts view points at, so the training forward
// (the arena's activations, all B*T rows at once) and the evaluator (model_infer.c: whole-window attention
// inputs, token chunks for everything token-wise) run the same code.

// Rows [n0, n0+n) of N: qkv (n, Ctot) = a->ln1 (those n rows) W_qkv^T, split into a's q, k, v (KV-shift: ko, vo)
// and token inputs at rows n0.. .
grape_status model_attn_project(const grape_model *m, int l, const layer_acts *a, float *qkv, size_t n0, size_t n,
                                size_t N) {
    layer_view p = model_layer(m, m->params, l);
    grape_status st = gemm(qkv, a->ln1, model_wqkv(m, l), (int64_t)n, m->Ctot, m->C, 0, 1, 0.0f);
    if (!st)
        model_split_qkv(a->qraw, a->ko ? a->ko : a->kraw, a->ko ? a->vo : a->v, a->tok, qkv, &p, m, n0, n, N);
    return st;
}

// The encodings' part of the attention sublayer over (B,T): KV-shift, ctx phase, q/k path, bias factors (*bias
// NULL without an additive action).
static grape_status encodings_forward(const grape_model *m, int l, layer_acts *a, int B, int T,
                                     const grape_bias_factors **bias) {
    size_t N = (size_t)B * (size_t)T;
    float *in[MODEL_MAX_INPUTS];
    model_token_inputs(in, m, a->tok, N, 0);
    const tok_layout *tl = &m->tl;
    grape_status st;
    if (a->ko && // KV-shift (official kv_shift_torch.py): k, v mix in the previous token's projection first
        ((st = grape_kv_shift_forward(a->kraw, a->ko, in[tl->shift_k], B, T, m->H, m->D)) ||
         (st = grape_kv_shift_forward(a->v, a->vo, in[tl->shift_v], B, T, m->H, m->D))))
        return st;
    if (a->phase) {
        if ((st = grape_phase_forward(a->phase, in[tl->phase], m->pe[l], B, T))) return st;
        offset_phase(a->phase, m->pos0, N * (size_t)tok_width(tl, tl->phase));
    }
    qk_ctx c = qk_context(m, a, l, B, T);
    if ((st = model_qk_forward(a->q, a->qmid, a->rstdq, a->qraw, model_qk_gain(m, l, GRAPE_QUERY), &c, GRAPE_QUERY)) ||
        (st = model_qk_forward(a->k, a->kmid, a->rstdk, a->kraw, model_qk_gain(m, l, GRAPE_KEY), &c, GRAPE_KEY)))
        return st;
    *bias = NULL;
    if (!a->bias_ws) return GRAPE_OK;
    const float *gq, *gk;
    model_gate_inputs(m, a, l, N, &gq, &gk);
    if ((st = grape_bias_factors_forward(&a->f, a->bias_ws, m->pe[l], gq, gk, (const float *const *)in, m->pos0, B,
                                         T)))
        return st;
    *bias = a->f;
    return GRAPE_OK;
}

// The sequence-wise middle of the attention sublayer over (B,T): the encodings, then the fused attention into
// a->att, a->lse.
grape_status model_attn_mix(const grape_model *m, int l, layer_acts *a, int B, int T, void *attn_ws,
                            size_t attn_ws_bytes) {
    const grape_bias_factors *bias;
    grape_status st;
    PROF(PROF_PE, st = encodings_forward(m, l, a, B, T, &bias));
    if (!st) PROF(PROF_ATTN_FWD, st = attn_forward_ws(a->att, a->lse, a->q, a->k, a->v, bias, &m->attn_opts, B, T,
                                                        m->H, m->D, attn_ws, attn_ws_bytes));
    return st;
}

// n rows: a->xmid = a->x + a->att W_o^T (a->xmid may be a->x).
grape_status model_attn_out(const grape_model *m, int l, const layer_acts *a, size_t n) {
    if (a->xmid != a->x) memcpy(a->xmid, a->x, n * (size_t)m->C * sizeof(float));
    return gemm(a->xmid, a->att, m->params + m->off[l].wo, (int64_t)n, m->C, m->C, 0, 1, 1.0f);
}

// n rows: next = a->xmid + W_3 SwiGLU(W_12 RMSNorm(a->xmid)) (next may be a->xmid).
grape_status model_mlp_forward(const grape_model *m, int l, const layer_acts *a, float *next, size_t n) {
    layer_view p = model_layer(m, m->params, l);
    rmsnorm_forward(a->ln2, a->rstd2, a->xmid, p.ln2, (int64_t)n, m->C, MODEL_NORM_EPS);
    grape_status st = gemm(a->h12, a->ln2, p.w12, (int64_t)n, 2 * m->F, m->C, 0, 1, 0.0f);
    if (st) return st;
    swiglu_forward(a->act, a->h12, (int64_t)n, m->F);
    if (next != a->xmid) memcpy(next, a->xmid, n * (size_t)m->C * sizeof(float));
    return gemm(next, a->act, p.w3, (int64_t)n, m->C, m->F, 0, 1, 1.0f);
}

static grape_status check_batch(const grape_model *m, const uint8_t *tokens, int B, int T) {
    if (!tokens) return error_fail(GRAPE_ERR_ARG, "grape_model_forward: tokens is NULL");
    if (B < 1 || T < 1 || B > m->cfg.max_batch || T > m->cfg.max_seq)
        return error_fail(GRAPE_ERR_ARG, "batch %dx%d outside the planned 1..%d x 1..%d", B, T, m->cfg.max_batch,
                          m->cfg.max_seq);
    size_t N = (size_t)B * (size_t)T;
    for (size_t i = 0; i < N; i++)
        if (tokens[i] >= m->V) return error_fail(GRAPE_ERR_ARG, "token %d >= vocab_size %d", tokens[i], m->V);
    return GRAPE_OK;
}

grape_status grape_model_forward(grape_model *m, const uint8_t *tokens, const uint8_t *targets, int B, int T,
                                 float *loss) {
    grape_status st = check_batch(m, tokens, B, T);
    if (st || (targets && (st = check_batch(m, targets, B, T))) || (st = model_prepare(m))) return st;
    size_t N = (size_t)B * (size_t)T;
    memcpy(m->tokens, tokens, N);
    m->B = B, m->T = T, m->has_loss = targets != NULL;
    embedding_forward(m->acts[0].x, tokens, m->params + m->off_wte, (int64_t)N, m->C);
    for (int l = 0; l < m->L; l++) {
        layer_acts *a = &m->acts[l];
        rmsnorm_forward(a->ln1, a->rstd1, a->x, m->params + m->off[l].ln1, (int64_t)N, m->C, MODEL_NORM_EPS);
        if ((st = model_attn_project(m, l, a, m->s.qkv, 0, N, N)) || (st = model_attn_mix(m, l, a, B, T, m->s.attn_ws, m->attn_ws_bytes)) ||
            (st = model_attn_out(m, l, a, N)) || (st = model_mlp_forward(m, l, a, m->acts[l + 1].x, N)))
            return st;
    }
    rmsnorm_forward(m->lnf, m->rstdf, m->acts[m->L].x, m->params + m->off_lnf, (int64_t)N, m->C, MODEL_NORM_EPS);
    if ((st = gemm(m->logits, m->lnf, m->params + m->off_wte, (int64_t)N, m->V, m->C, 0, 1, 0.0f))) return st;
    if (!targets) return GRAPE_OK;
    memcpy(m->targets, targets, N);
    double l;
    cross_entropy_forward(&l, m->lse_ce, m->logits, targets, (int64_t)N, m->V);
    if (loss) *loss = (float)l;
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------------
// Backward. s.dx carries dL/d(residual) from the head down to the embedding.

// dL/dx of the MLP sublayer accumulated into s.dx (which holds dL/dnext on entry).
static grape_status mlp_backward(grape_model *m, int l, size_t N) {
    layer_acts *a = &m->acts[l];
    layer_view p = model_layer(m, m->params, l), g = model_layer(m, m->grads, l);
    model_scratch *s = &m->s;
    int64_t n = (int64_t)N;
    grape_status st;
    if ((st = gemm(s->dact, s->dx, p.w3, n, m->F, m->C, 0, 0, 0.0f)) ||
        (st = gemm(g.w3, s->dx, a->act, m->C, m->F, n, 1, 0, 1.0f)))
        return st;
    zero_f(s->dh12, N * 2 * (size_t)m->F);
    swiglu_backward(s->dh12, s->dact, a->h12, n, m->F);
    if ((st = gemm(s->dln, s->dh12, p.w12, n, m->C, 2 * m->F, 0, 0, 0.0f)) ||
        (st = gemm(g.w12, s->dh12, a->ln2, 2 * m->F, m->C, n, 1, 0, 1.0f)))
        return st;
    rmsnorm_backward(s->dx, g.ln2, s->dln, a->xmid, p.ln2, a->rstd2, n, m->C);
    return GRAPE_OK;
}

// Gradients of the bias factors into the encoding's parameters, the token inputs and the vectors the gates read:
// s.dq, s.dk (the attention's q~, k~), or for hybrids through QKNorm of the un-rotated q, k into s.dqraw, s.dkraw
// (s.dqmid, s.dkmid as scratch) and the gains' gradients dgq, dgk.
static grape_status gates_backward(grape_model *m, int l, const grape_bias_grads *gb, float *const *din,
                                   const float *const *in, layer_view *g, float *dgq, float *dgk) {
    layer_acts *a = &m->acts[l];
    model_scratch *s = &m->s;
    if (!a->qg) return grape_bias_factors_backward(g->pe, s->dq, s->dk, din, gb, a->f, m->pe[l], a->q, a->k, in);
    size_t N = (size_t)m->B * (size_t)m->T, NC = N * (size_t)m->C;
    int64_t rows = (int64_t)N * m->H;
    zero_f(s->dqmid, NC);
    zero_f(s->dkmid, NC);
    grape_status st =
        grape_bias_factors_backward(g->pe, s->dqmid, s->dkmid, din, gb, a->f, m->pe[l], a->qg, a->kg, in);
    if (st) return st;
    rmsnorm_backward(s->dqraw, dgq, s->dqmid, a->qraw, model_qk_gain(m, l, GRAPE_QUERY), a->rstdqg, rows, m->D);
    rmsnorm_backward(s->dkraw, dgk, s->dkmid, a->kraw, model_qk_gain(m, l, GRAPE_KEY), a->rstdkg, rows, m->D);
    return GRAPE_OK;
}

// The encodings' backward from the attention's s.dq, s.dk and bias gradients gb (NULL without a bias): bias
// factors, q/k path, phase and KV-shift into s.dqraw, s.dkraw, s.dv, s.dtok and the layer's gradients g.
static grape_status encodings_backward(grape_model *m, int l, int B, int T, layer_view *g, const grape_bias_grads *pgb) {
    layer_acts *a = &m->acts[l];
    model_scratch *s = &m->s;
    size_t N = (size_t)B * (size_t)T, NC = N * (size_t)m->C;
    grape_status st;
    const tok_layout *tl = &m->tl;
    float *in[MODEL_MAX_INPUTS], *din[MODEL_MAX_INPUTS];
    model_token_inputs(in, m, a->tok, N, 0);
    model_token_inputs(din, m, s->dtok, N, 0);
    // Pair-tied gains: gradients of the expanded (D) gains first, tied into the G parameters at the end.
    float *dgq = s->dgain ? s->dgain : g->q_norm, *dgk = s->dgain ? s->dgain + m->D : g->k_norm;
    if (s->dgain) zero_f(s->dgain, 2 * (size_t)m->D);
    if (pgb && (st = gates_backward(m, l, pgb, din, (const float *const *)in, g, dgq, dgk))) return st;
    qk_ctx c = qk_context(m, a, l, B, T);
    if ((st = qk_backward(s->dqraw, s->dqmid, dgq, g->pe, s->dphase, s->dq, a->qraw, a->qmid, a->rstdq,
                          model_qk_gain(m, l, GRAPE_QUERY), &c, GRAPE_QUERY)) ||
        (st = qk_backward(s->dkraw, s->dkmid, dgk, g->pe, s->dphase, s->dk, a->kraw, a->kmid, a->rstdk,
                          model_qk_gain(m, l, GRAPE_KEY), &c, GRAPE_KEY)))
        return st;
    if (s->dgain) {
        model_qk_gain_tie(m, g->q_norm, dgq);
        model_qk_gain_tie(m, g->k_norm, dgk);
    }
    if (a->phase && (st = grape_phase_backward(din[tl->phase], s->dphase, in[tl->phase], m->pe[l], B, T)))
        return st;
    if (!a->ko) return GRAPE_OK;
    zero_f(s->dko, NC);
    zero_f(s->dvo, NC);
    st = grape_kv_shift_backward(s->dko, din[tl->shift_k], s->dkraw, a->ko, in[tl->shift_k], B, T, m->H, m->D);
    if (!st)
        st = grape_kv_shift_backward(s->dvo, din[tl->shift_v], s->dv, a->vo, in[tl->shift_v], B, T, m->H, m->D);
    return st;
}

// Attention, bias factors and the q/k path: fills s.dqraw, s.dkraw, s.dv, s.dtok for layer l.
static grape_status attn_core_backward(grape_model *m, int l, int B, int T, layer_view *g) {
    layer_acts *a = &m->acts[l];
    model_scratch *s = &m->s;
    size_t N = (size_t)B * (size_t)T, NC = N * (size_t)m->C;
    float *zs[] = {s->dq, s->dk, s->dv, s->dqraw, s->dkraw};
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) zero_f(zs[i], NC);
    if (s->dtok) zero_f(s->dtok, N * (size_t)m->tl.E);
    if (s->dphase) memset(s->dphase, 0, N * (size_t)tok_width(&m->tl, m->tl.phase) * sizeof(double));
    grape_bias_grads *pgb = NULL;
    grape_status st;
    if (a->bias_ws && (st = grape_bias_grads_bind(&pgb, s->dbias_ws, a->f))) return st;
    PROF(PROF_ATTN_BWD, st = attn_backward_ws(s->dq, s->dk, s->dv, pgb, s->datt, a->att, a->lse, a->q, a->k, a->v,
                                              pgb ? a->f : NULL, &m->attn_opts, B, T, m->H, m->D, s->attn_ws,
                                              m->attn_ws_bytes));
    if (!st) PROF(PROF_PE, st = encodings_backward(m, l, B, T, g, pgb));
    return st;
}

// grape-m-basis: chain the folded projection's gradient s.dwfold into wq, wk, the basis and the other rows.
static grape_status unfold_grad(grape_model *m, int l, const layer_view *p, layer_view *g) {
    size_t CC = (size_t)m->C * (size_t)m->C, rest = ((size_t)m->Ctot - 2 * (size_t)m->C) * (size_t)m->C;
    const float *dw = m->s.dwfold;
    grape_status st = grape_basis_fold_backward(g->wqkv, g->pe, dw, p->wqkv, m->pe[l], m->C);
    if (!st) st = grape_basis_fold_backward(g->wqkv + CC, g->pe, dw + CC, p->wqkv + CC, m->pe[l], m->C);
    for (size_t i = 0; i < rest; i++) g->wqkv[2 * CC + i] += dw[2 * CC + i];
    return st;
}

static grape_status attn_backward(grape_model *m, int l, int B, int T) {
    layer_acts *a = &m->acts[l];
    layer_view p = model_layer(m, m->params, l), g = model_layer(m, m->grads, l);
    model_scratch *s = &m->s;
    size_t N = (size_t)B * (size_t)T;
    int64_t n = (int64_t)N;
    grape_status st;
    if ((st = gemm(s->datt, s->dx, p.wo, n, m->C, m->C, 0, 0, 0.0f)) ||
        (st = gemm(g.wo, s->dx, a->att, m->C, m->C, n, 1, 0, 1.0f)) ||
        (st = attn_core_backward(m, l, B, T, &g)))
        return st;
    merge_dqkv(s->dqkv, &g, s->dqraw, a->ko ? s->dko : s->dkraw, a->ko ? s->dvo : s->dv, s->dtok, m, N);
    if ((st = gemm(s->dln, s->dqkv, model_wqkv(m, l), n, m->C, m->Ctot, 0, 0, 0.0f))) return st;
    if (!s->dwfold) {
        if ((st = gemm(g.wqkv, s->dqkv, a->ln1, m->Ctot, m->C, n, 1, 0, 1.0f))) return st;
    } else if ((st = gemm(s->dwfold, s->dqkv, a->ln1, m->Ctot, m->C, n, 1, 0, 0.0f)) ||
               (st = unfold_grad(m, l, &p, &g)))
        return st;
    rmsnorm_backward(s->dx, g.ln1, s->dln, a->x, p.ln1, a->rstd1, n, m->C);
    return GRAPE_OK;
}

// Loss -> logits -> final norm: leaves dL/dx_L in s.dx; the tied wte gets its lm_head gradient.
static grape_status head_backward(grape_model *m, size_t N) {
    model_scratch *s = &m->s;
    int64_t n = (int64_t)N;
    float *wte = m->params + m->off_wte, *dwte = m->grads + m->off_wte;
    zero_f(s->dlogits, N * (size_t)m->V);
    cross_entropy_backward(s->dlogits, m->logits, m->lse_ce, m->targets, 1.0f, n, m->V);
    grape_status st;
    if ((st = gemm(s->dln, s->dlogits, wte, n, m->C, m->V, 0, 0, 0.0f)) ||
        (st = gemm(dwte, s->dlogits, m->lnf, m->V, m->C, n, 1, 0, 1.0f)))
        return st;
    zero_f(s->dx, N * (size_t)m->C);
    rmsnorm_backward(s->dx, m->grads + m->off_lnf, s->dln, m->acts[m->L].x, m->params + m->off_lnf, m->rstdf, n,
                     m->C);
    return GRAPE_OK;
}

grape_status grape_model_backward(grape_model *m) {
    if (!m->has_loss) return error_fail(GRAPE_ERR_ARG, "grape_model_backward: the last forward had no targets");
    size_t N = (size_t)m->B * (size_t)m->T;
    grape_status st = head_backward(m, N);
    for (int l = m->L - 1; l >= 0 && !st; l--)
        if (!(st = mlp_backward(m, l, N))) st = attn_backward(m, l, m->B, m->T);
    if (st) return st;
    embedding_backward(m->grads + m->off_wte, m->s.dx, m->tokens, (int64_t)N, m->C);
    return GRAPE_OK;
}
