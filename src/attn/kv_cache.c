// kv_cache.c — streaming decode for one layer and one sequence (grape.h, "Streaming decode").
//
// Step t: out_h = sum_{j in [lo, t]} softmax_j(scale q_h·k_j + b_h(t, j)) v_j with the bias regenerated for the
// new query row from cached key factors (GRAPE §3 "streaming: cache k̂*_j once"; FoX (arXiv 2503.02130) running c;
// GRAPE-AP, official model/llama-mha-grape-ap-v1.py: "cache r_l; per step form p_t, one sweep over l <= t, then a
// suffix sum"; grape-m-ctx, model/llama-mha-grape-m-ctx.py: "at arrival Phi_t = S; rotate; cache k̃_t; then
// S += omega_t"). lo = 0, or t - W for the BCA sliding window. Keys live in a ring (slot = position mod cap) that is
// only ever appended to.
#include <string.h>

#include "attn/attn_internal.h"
#include "core/error.h"
#include "core/mem.h"
#include "pe/bias_kinds.h"

// xPos anchors: keys are scaled against the first position of their block of this many tokens.
#define KV_XPOS_BLOCK 256

struct grape_kv_cache {
    const grape_pe *pe;
    grape_rot_kind rot;
    const bias_kind *kind; // the additive kind's row of the kind table
    int H, D, P, nph; // nph: grape-m-ctx phases per token (1 or H), else 0
    int cap, window;  // ring size; BCA window W (0: none)
    float scale;
    int64_t start;    // position of the first token since create/reset (grape_kv_cache_reset_at)
    int64_t pos;      // next position
    int64_t rotated;  // position the last grape_kv_cache_rotate was for (-1: none)
    double *S;        // (nph) grape-m-ctx running phase
    double *fox_c;    // (H) FoX running sum of log f up to the last token
    float *k, *v;     // (cap, H, D)
    float *gate_k;    // (cap, H) grape-a
    double *cum;      // (cap, H) FoX c_j
    float *probe_k;   // (cap, H, P) GRAPE-AP rotated key probes r_j
    float *q_pre;     // (H, D) xPos: the query before rotation, re-scaled per key block
    float *q_blk;     // (H, D) xPos: the query against one block's anchor
    float *scores;    // (H, cap) one query row per head, indexed by t - j
    float *mx;        // (H) row max
    double *ap_acc;   // (H) GRAPE-AP suffix sum of the row so far
    void *fws;        // factor workspace of one token
    float *lg2;       // (2 nph) grape-m-ctx: [logit_t, 0], whose exclusive cumsum's second row is omega_t
    double *ph2;      // (2 nph)
    void *mem;        // the one allocation all of the above point into
};

static void cache_plan(grape_kv_cache *c, grape_arena *a, size_t fws_bytes) {
    size_t HD = (size_t)c->H * c->D, cap = (size_t)c->cap, H = (size_t)c->H;
    c->S = arena_take(a, (size_t)(c->nph ? c->nph : 1) * sizeof(double));
    c->fox_c = arena_take(a, H * sizeof(double));
    c->k = arena_take(a, cap * HD * sizeof(float));
    c->v = arena_take(a, cap * HD * sizeof(float));
    c->gate_k = arena_take(a, cap * H * sizeof(float));
    c->cum = arena_take(a, cap * H * sizeof(double));
    c->probe_k = arena_take(a, cap * H * (size_t)(c->P ? c->P : 1) * sizeof(float));
    c->q_pre = arena_take(a, HD * sizeof(float));
    c->q_blk = arena_take(a, HD * sizeof(float));
    c->scores = arena_take(a, H * cap * sizeof(float));
    c->mx = arena_take(a, H * sizeof(float));
    c->ap_acc = arena_take(a, H * sizeof(double));
    c->fws = arena_take(a, fws_bytes);
    c->lg2 = arena_take(a, 2 * (size_t)(c->nph ? c->nph : 1) * sizeof(float));
    c->ph2 = arena_take(a, 2 * (size_t)(c->nph ? c->nph : 1) * sizeof(double));
}

grape_status grape_kv_cache_create(grape_kv_cache **out, const grape_pe *pe, int capacity, int bca_window) {
    if (!out || !pe) return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_create: NULL argument");
    *out = NULL;
    if (capacity < 1 || bca_window < 0 || bca_window == 1 || bca_window % 2 || bca_window >= ATTN_MAX_T)
        return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_create: capacity %d must be >= 1 and bca_window %d 0 or even",
                          capacity, bca_window);
    const grape_pe_config *cfg = grape_pe_get_config(pe);
    grape_pe_token_channels ch;
    grape_pe_token_input_channels(pe, &ch);
    const bias_kind *kd = bias_kind_of(cfg->bias);
    grape_kv_cache tmp = {.pe = pe, .rot = cfg->rot, .kind = kd, .H = cfg->n_heads, .D = cfg->head_dim,
                          .P = kd->factors & BF_PROBE ? cfg->ap_probe_dim : 0, .nph = ch.phase,
                          .cap = bca_window ? bca_window + 1 : capacity, .window = bca_window,
                          .scale = 1.0f / sqrtf((float)cfg->head_dim)};
    grape_status st = attn_check_dims("grape_kv_cache_create", 1, tmp.cap, tmp.H, tmp.D, NULL);
    if (st) return st;
    size_t fws = grape_bias_workspace_bytes(pe, 1, 1);
    grape_arena plan = {0};
    cache_plan(&tmp, &plan, fws);
    grape_kv_cache *c = mem_alloc(sizeof *c);
    void *mem = c ? mem_alloc(plan.used) : NULL;
    if (!mem) {
        mem_free(c);
        return GRAPE_ERR_NOMEM;
    }
    *c = tmp;
    c->mem = mem;
    grape_arena a = {mem, plan.used, 0};
    cache_plan(c, &a, fws);
    grape_kv_cache_reset(c);
    *out = c;
    return GRAPE_OK;
}

void grape_kv_cache_free(grape_kv_cache *c) {
    if (!c) return;
    mem_free(c->mem);
    mem_free(c);
}

void grape_kv_cache_reset_at(grape_kv_cache *c, int64_t pos0) {
    c->start = c->pos = pos0 > 0 ? pos0 : 0;
    c->rotated = -1;
    for (int i = 0; i < (c->nph ? c->nph : 1); i++) c->S[i] = (double)c->start;
    memset(c->fox_c, 0, (size_t)c->H * sizeof(double));
}

void grape_kv_cache_reset(grape_kv_cache *c) { grape_kv_cache_reset_at(c, 0); }

int64_t grape_kv_cache_position(const grape_kv_cache *c) { return c->pos; }

static int64_t xpos_anchor(int64_t p) { return p / KV_XPOS_BLOCK * KV_XPOS_BLOCK; }

// Positions of one token at p: integer position, grape-m-ctx phase S, xPos anchor = p's block start (or c).
static grape_positions token_positions(const grape_kv_cache *c, int64_t p, int64_t anchor) {
    return (grape_positions){p, (double)anchor, c->nph ? c->S : NULL};
}

grape_status grape_kv_cache_rotate(grape_kv_cache *c, float *q, float *k) {
    if (!c || !q || !k) return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_rotate: NULL argument");
    if (c->rot == GRAPE_ROT_XPOS) memcpy(c->q_pre, q, (size_t)c->H * c->D * sizeof(float));
    grape_positions pos = token_positions(c, c->pos, xpos_anchor(c->pos));
    grape_status st = grape_rot_forward(q, q, c->pe, &pos, GRAPE_QUERY, 1, 1);
    if (!st) st = grape_rot_forward(k, k, c->pe, &pos, GRAPE_KEY, 1, 1);
    if (!st) c->rotated = c->pos;
    return st;
}

static grape_status check_inputs(const grape_kv_cache *c, const grape_pe_token_inputs *in) {
    if ((c->kind->input != BIAS_IN_NONE && !bias_input_of(c->kind, in)) || (c->nph && !(in && in->phase_logit)))
        return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_attend: a token input of this encoding is NULL");
    if (c->rot == GRAPE_ROT_XPOS && c->rotated != c->pos)
        return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_attend: xpos needs grape_kv_cache_rotate for this token");
    if (!c->window && c->pos - c->start >= c->cap)
        return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_attend: cache full (capacity %d)", c->cap);
    return GRAPE_OK;
}

// Store the new token's key, value and key factors at its slot; f: its factors (B = T = 1).
static void append(grape_kv_cache *c, const float *k, const float *v, const grape_bias_factors *f) {
    size_t slot = (size_t)(c->pos % c->cap), HD = (size_t)c->H * c->D, H = (size_t)c->H;
    memcpy(c->k + slot * HD, k, HD * sizeof(float));
    memcpy(c->v + slot * HD, v, HD * sizeof(float));
    if (f->gate_k) memcpy(c->gate_k + slot * H, f->gate_k, H * sizeof(float));
    if (f->cum)
        for (size_t h = 0; h < H; h++) c->cum[slot * H + h] = (c->fox_c[h] += f->cum[h]); // c_t = c_{t-1} + log f_t
    if (f->probe_k) memcpy(c->probe_k + slot * H * c->P, f->probe_k, H * (size_t)c->P * sizeof(float));
}

// grape-m-ctx: S += omega_t, with omega from grape_phase_forward itself (exclusive cumsum of [logit_t, 0]).
static grape_status advance_phase(grape_kv_cache *c, const float *phase_logit) {
    for (int i = 0; i < c->nph; i++) c->lg2[i] = phase_logit[i], c->lg2[c->nph + i] = 0.0f;
    grape_status st = grape_phase_forward(c->ph2, c->lg2, c->pe, 1, 2);
    for (int i = 0; !st && i < c->nph; i++) c->S[i] += c->ph2[c->nph + i];
    return st;
}

// Bias b_h(t, j) of the new query t against the key at position j: the kind's closed form (pe/bias_kinds.h) on the
// new token's query factors and the cached key factors. ap_acc: the path form's running suffix
// sum_{l=j+1..t} psi(t,l), advanced by the caller (keys descend).
static float bias_at(const grape_kv_cache *c, const grape_bias_factors *f, int h, int64_t t, int64_t j, double ap_acc) {
    if (c->kind->form == BIAS_FORM_PATH) return (float)(f->slope[h] * ap_acc);
    size_t slot = (size_t)(j % c->cap) * c->H + (size_t)h;
    bias_pair p = {.slope = f->slope ? f->slope[h] : 0.0, .dist = (double)(t - j),
                   .gate_q = f->gate_q ? f->gate_q[h] : 0.0, .gate_k = f->gate_k ? c->gate_k[slot] : 0.0,
                   .cum_q = f->cum ? c->fox_c[h] : 0.0, .cum_k = f->cum ? c->cum[slot] : 0.0};
    return (float)bias_pair_value(c->kind, &p);
}

// psi(t,l) of the path form from the new query's probe and the cached key probe r_l.
static double ap_edge(const grape_kv_cache *c, const grape_bias_factors *f, int h, int64_t l) {
    const float *r = c->probe_k + ((size_t)(l % c->cap) * c->H + (size_t)h) * c->P, *p = f->probe_q + (size_t)h * c->P;
    double s = 0;
    for (int i = 0; i < c->P; i++) s += (double)p[i] * r[i];
    return bias_path_edge(s / c->P);
}

// Scores of head h against keys [j_lo, j_hi], descending (GRAPE-AP's suffix over l in (j, t] runs with them).
static void score_keys(grape_kv_cache *c, const float *qh, const grape_bias_factors *f, int h, int64_t t,
                       int64_t j_lo, int64_t j_hi) {
    int D = c->D;
    size_t HD = (size_t)c->H * D;
    float *s = c->scores + (size_t)h * c->cap;
    for (int64_t j = j_hi; j >= j_lo; j--) {
        const float *kj = c->k + (size_t)(j % c->cap) * HD + (size_t)h * D;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int d = 0; d < D; d++) dot += qh[d] * kj[d];
        float sj = c->scale * dot + bias_at(c, f, h, t, j, c->ap_acc[h]);
        s[t - j] = sj;
        c->mx[h] = sj > c->mx[h] ? sj : c->mx[h];
        if (c->kind->form == BIAS_FORM_PATH) c->ap_acc[h] += ap_edge(c, f, h, j);
    }
}

// out_h = softmax(scores) v over keys [lo, t].
static void softmax_values(grape_kv_cache *c, float *out, int h, int64_t lo, int64_t t) {
    int D = c->D;
    size_t HD = (size_t)c->H * D;
    float *s = c->scores + (size_t)h * c->cap, mx = c->mx[h];
    double sum = 0;
    for (int64_t i = 0; i <= t - lo; i++) sum += (s[i] = expf(s[i] - mx));
    float *o = out + (size_t)h * D, inv = (float)(1.0 / sum);
    for (int d = 0; d < D; d++) o[d] = 0;
    for (int64_t j = lo; j <= t; j++) {
        const float *vj = c->v + (size_t)(j % c->cap) * HD + (size_t)h * D;
        float p = s[t - j] * inv;
#pragma omp simd
        for (int d = 0; d < D; d++) o[d] += p * vj[d];
    }
}

// Keys in ranges that share a query: one range, or for xPos the 256-token anchor blocks, newest first. The query
// against an older block's anchor c_b is q_pre rotated at t with anchor c_b (magnitude ratio zeta^((c_t-c_b)/sb)).
static grape_status score_all(grape_kv_cache *c, const float *q, const grape_bias_factors *f, int64_t lo, int64_t t) {
    for (int h = 0; h < c->H; h++) c->mx[h] = -INFINITY, c->ap_acc[h] = 0;
    int blocks = c->rot == GRAPE_ROT_XPOS;
    int64_t hi = t;
    while (hi >= lo) {
        int64_t anchor = blocks ? xpos_anchor(hi) : lo, j_lo = anchor > lo ? anchor : lo;
        const float *qb = q;
        if (blocks && anchor != xpos_anchor(t)) {
            grape_positions pos = token_positions(c, t, anchor);
            grape_status st = grape_rot_forward(c->q_blk, c->q_pre, c->pe, &pos, GRAPE_QUERY, 1, 1);
            if (st) return st;
            qb = c->q_blk;
        }
        int64_t work = (hi - j_lo + 1) * c->H * c->D;
#pragma omp parallel for schedule(static) if (work > (1 << 16))
        for (int h = 0; h < c->H; h++) score_keys(c, qb + (size_t)h * c->D, f, h, t, j_lo, hi);
        hi = j_lo - 1;
    }
    return GRAPE_OK;
}

grape_status grape_kv_cache_attend(grape_kv_cache *c, float *out, const float *q, const float *k, const float *v,
                                   const grape_pe_token_inputs *in) {
    if (!c || !out || !q || !k || !v) return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_attend: NULL tensor");
    grape_status st = check_inputs(c, in);
    if (st) return st;
    int64_t t = c->pos, lo = c->window && t - c->start > c->window ? t - c->window : c->start;
    grape_bias_factors f;
    const float *gq = in && in->gate_q ? in->gate_q : q, *gk = in && in->gate_k ? in->gate_k : k;
    if ((st = grape_bias_factors_forward(&f, c->fws, c->pe, gq, gk, in, t, 1, 1))) return st;
    append(c, k, v, &f);
    if ((st = score_all(c, q, &f, lo, t))) return st;
    int64_t work = (t - lo + 1) * c->H * c->D;
#pragma omp parallel for schedule(static) if (work > (1 << 16))
    for (int h = 0; h < c->H; h++) softmax_values(c, out, h, lo, t);
    if (c->nph && (st = advance_phase(c, in->phase_logit))) return st;
    c->pos++;
    return GRAPE_OK;
}
