// kv_cache.c — streaming decode for one layer and one sequence (grape.h, "Streaming decode").
//
// Step t: out_h = sum_{j in [lo, t]} softmax_j(scale q_h·k_j + b_h(t, j)) v_j with the bias regenerated for the
// new query row from cached key factors (GRAPE §3 "streaming: cache k̂*_j once"; FoX (arXiv 2503.02130) running c;
// GRAPE-AP, official model/llama-mha-grape-ap-v1.py: "cache r_l; per step form p_t, one sweep over l <= t, then a
// suffix sum"; grape-m-ctx, model/llama-mha-grape-m-ctx.py: "at arrival Phi_t = S; rotate; cache k̃_t; then
// S += omega_t"). lo = 0, or t - W for the BCA sliding window. Keys live in a ring (slot = position mod cap) that is
// only ever appended to.
// Split-key decode (FlashDecoding, Dao et al. 2023): the keys are cut into chunks of KV_CHUNK positions aligned to
// multiples of KV_CHUNK; each chunk yields a partial softmax (row max m_c, sum l_c, unnormalised output o_c) per
// head, chunks run on the threads, and the partials are combined in chunk order (newest first):
//   M = max_c m_c,  out = sum_c e^{m_c - M} o_c / sum_c e^{m_c - M} l_c.
// The chunks do not depend on the thread count, so neither do the bits.
#include <string.h>

#include "attn/attn_internal.h"
#include "core/simd.h"
#include "core/error.h"
#include "core/mem.h"
#include "pe/bias_kinds.h"

// xPos anchors: keys are scaled against the first position of their block of this many tokens.
#define KV_XPOS_BLOCK 256
// Keys per chunk of the split decode: one xPos block, so a chunk has one query; a multiple of every vector width.
#define KV_CHUNK KV_XPOS_BLOCK
// Below this many key·dim products per step the chunks run on one thread (a team costs more than it saves).
#define KV_PAR_WORK (1 << 16)

struct grape_kv_cache {
    const grape_pe *pe;
    grape_rot_kind rot;
    const bias_kind *kind; // the additive kind's row of the kind table
    int H, D, P, nph; // nph: grape-m-ctx phases per token (1 or H), else 0
    int in_phase;     // index of grape-m-ctx's "phase" token input, -1 without
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
    int nck;          // chunks a step can span: cap / KV_CHUNK + 2
    float *q_blk;     // (nck, H, D) xPos: the query against each chunk's anchor
    float *scores;    // (nck, H, KV_CHUNK) each chunk's scores, then probabilities, newest key first
    float *part_m, *part_l; // (nck, H) each chunk's row max and sum
    float *part_o;    // (nck, H, D) each chunk's unnormalised output
    float *edge;      // (nck, H, KV_CHUNK) GRAPE-AP edges log sigmoid(<p_t, r_l>/P) of each chunk's keys
    double *ap_in;    // (nck, H) GRAPE-AP: the chunk's edge sum, then the suffix entering the chunk
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
    size_t nck = (size_t)c->nck, ap = c->P ? 1 : 0;
    c->q_blk = arena_take(a, (c->rot == GRAPE_ROT_XPOS ? nck : 1) * HD * sizeof(float));
    c->scores = arena_take(a, nck * H * KV_CHUNK * sizeof(float));
    c->part_m = arena_take(a, nck * H * sizeof(float));
    c->part_l = arena_take(a, nck * H * sizeof(float));
    c->part_o = arena_take(a, nck * HD * sizeof(float));
    c->edge = arena_take(a, (ap ? nck * H * KV_CHUNK : 1) * sizeof(float));
    c->ap_in = arena_take(a, nck * H * sizeof(double));
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
    const bias_kind *kd = bias_kind_of(cfg->bias);
    int in_phase = grape_pe_token_input_find(pe, "phase");
    grape_kv_cache tmp = {.pe = pe, .rot = cfg->rot, .kind = kd, .H = cfg->n_heads, .D = cfg->head_dim,
                          .P = bias_kind_has(kd, BF_PROBE_Q) ? cfg->ap_probe_dim : 0, .in_phase = in_phase,
                          .nph = in_phase >= 0 ? grape_pe_token_input_info(pe, in_phase)->width : 0,
                          .cap = bca_window ? bca_window + 1 : capacity, .window = bca_window,
                          .nck = (bca_window ? bca_window + 1 : capacity) / KV_CHUNK + 2,
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

static grape_status check_inputs(const grape_kv_cache *c, const float *const *in) {
    if (c->in_phase >= 0 && !(in && in[c->in_phase]))
        return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_attend: token input 'phase' of this encoding is NULL");
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
    const float *gate_k = bf_f32(f, BF_GATE_K), *probe_k = bf_f32(f, BF_PROBE_K);
    const double *cum = bf_f64(f, BF_CUM);
    if (gate_k) memcpy(c->gate_k + slot * H, gate_k, H * sizeof(float));
    if (cum)
        for (size_t h = 0; h < H; h++) c->cum[slot * H + h] = (c->fox_c[h] += cum[h]); // c_t = c_{t-1} + log f_t
    if (probe_k) memcpy(c->probe_k + slot * H * c->P, probe_k, H * (size_t)c->P * sizeof(float));
}

// grape-m-ctx: S += omega_t, with omega from grape_phase_forward itself (exclusive cumsum of [logit_t, 0]).
static grape_status advance_phase(grape_kv_cache *c, const float *phase_logit) {
    for (int i = 0; i < c->nph; i++) c->lg2[i] = phase_logit[i], c->lg2[c->nph + i] = 0.0f;
    grape_status st = grape_phase_forward(c->ph2, c->lg2, c->pe, 1, 2);
    for (int i = 0; !st && i < c->nph; i++) c->S[i] += c->ph2[c->nph + i];
    return st;
}

static size_t slot_of(const grape_kv_cache *c, int64_t j) { return (size_t)(j % c->cap); }
static size_t slot_below(const grape_kv_cache *c, size_t slot) { return slot ? slot - 1 : (size_t)c->cap - 1; }

// Bias b_h(t, j) of the new query t against the key at position j in ring slot `slot`: the kind's closed form
// (pe/bias_kinds.h) on the new token's query factors and the cached key factors. ap_acc: the path form's running
// suffix sum_{l=j+1..t} psi(t,l), advanced by the caller (keys descend).
static float bias_at(const grape_kv_cache *c, const grape_bias_factors *f, int h, int64_t t, int64_t j, size_t slot,
                     double ap_acc) {
    const float *slope = bf_f32(f, BF_SLOPE), *gate_q = bf_f32(f, BF_GATE_Q);
    if (c->kind->form == BIAS_FORM_PATH) return (float)(slope[h] * ap_acc);
    size_t fs = slot * (size_t)c->H + (size_t)h;
    int cum = f->ch[BF_CUM] != NULL;
    bias_pair p = {.slope = slope ? slope[h] : 0.0, .dist = (double)(t - j), .gate_q = gate_q ? gate_q[h] : 0.0,
                   .gate_k = f->ch[BF_GATE_K] ? c->gate_k[fs] : 0.0, .cum_q = cum ? c->fox_c[h] : 0.0,
                   .cum_k = cum ? c->cum[fs] : 0.0};
    return (float)bias_pair_value(c->kind, &p);
}

// The GRAPE-AP edge's logit <p_t, r_l>/P; the edge is its log sigmoid (chunk_edges, in vectors as in the tiles).
static float ap_logit(const grape_kv_cache *c, const grape_bias_factors *f, int h, size_t slot) {
    const float *r = c->probe_k + (slot * c->H + (size_t)h) * c->P, *p = bf_f32(f, BF_PROBE_Q) + (size_t)h * c->P;
    float s = 0;
    for (int i = 0; i < c->P; i++) s += p[i] * r[i];
    return s / (float)c->P;
}

// a·b over D; D a multiple of VW runs in vectors with two accumulators.
static float dot(const float *a, const float *b, int D) {
    if (D % VW) {
        float s = 0;
        for (int d = 0; d < D; d++) s += a[d] * b[d];
        return s;
    }
    vf s0 = vf_set1(0.0f), s1 = s0;
    int d = 0;
    for (; d + 2 * VW <= D; d += 2 * VW) {
        s0 = vf_fma(vf_load(a + d), vf_load(b + d), s0);
        s1 = vf_fma(vf_load(a + d + VW), vf_load(b + d + VW), s1);
    }
    if (d < D) s0 = vf_fma(vf_load(a + d), vf_load(b + d), s0);
    return vf_hsum(vf_add(s0, s1));
}

// o (D) = sum_i p[i] v_i over the chunk's n keys from ring slot `slot` down; columns in blocks of up to 4 vectors
// held in registers across the keys (D a multiple of VW; else one scalar pass).
static void weighted_values(float *o, const grape_kv_cache *c, const float *p, int n, size_t slot, int h) {
    int D = c->D;
    size_t HD = (size_t)c->H * D;
    const float *v0 = c->v + (size_t)h * D;
    if (D % VW) {
        for (int d = 0; d < D; d++) o[d] = 0;
        for (int i = 0; i < n; i++, slot = slot_below(c, slot))
            for (int d = 0; d < D; d++) o[d] += p[i] * v0[slot * HD + (size_t)d];
        return;
    }
    for (int d0 = 0; d0 < D; d0 += 4 * VW) {
        int nv = (D - d0) / VW < 4 ? (D - d0) / VW : 4;
        vf a0 = vf_set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
        size_t sl = slot;
        for (int i = 0; i < n; i++, sl = slot_below(c, sl)) {
            const float *vj = v0 + sl * HD + (size_t)d0;
            vf pi = vf_set1(p[i]);
            a0 = vf_fma(pi, vf_load(vj), a0);
            if (nv > 1) a1 = vf_fma(pi, vf_load(vj + VW), a1);
            if (nv > 2) a2 = vf_fma(pi, vf_load(vj + 2 * VW), a2);
            if (nv > 3) a3 = vf_fma(pi, vf_load(vj + 3 * VW), a3);
        }
        vf_store(o + d0, a0);
        if (nv > 1) vf_store(o + d0 + VW, a1);
        if (nv > 2) vf_store(o + d0 + 2 * VW, a2);
        if (nv > 3) vf_store(o + d0 + 3 * VW, a3);
    }
}

// --- one chunk: keys [j_lo, j_hi] (newest first), chunk index ck

typedef struct {
    int64_t t, lo;      // the query's position and the lowest visible key
    int64_t top;        // first position of the newest chunk
    const float *q;     // (H, D) the query of the newest chunk (xPos: older chunks use q_blk)
    const grape_bias_factors *f;
} step_ctx;

static void chunk_range(const step_ctx *x, int ck, int64_t *j_lo, int64_t *j_hi) {
    int64_t base = x->top - (int64_t)ck * KV_CHUNK;
    *j_hi = ck ? base + KV_CHUNK - 1 : x->t;
    *j_lo = base > x->lo ? base : x->lo;
}


// GRAPE-AP edges log sigmoid(<p_t, r_l>/P) of the chunk's keys for every head (newest first), and their sum in
// double (the suffix sums over up to T edges).
static void chunk_edges(grape_kv_cache *c, const step_ctx *x, int ck) {
    int64_t j_lo, j_hi;
    chunk_range(x, ck, &j_lo, &j_hi);
    int n = (int)(j_hi - j_lo + 1);
    for (int h = 0; h < c->H; h++) {
        float *e = c->edge + ((size_t)ck * c->H + (size_t)h) * KV_CHUNK;
        size_t slot = slot_of(c, j_hi);
        for (int i = 0; i < n; i++, slot = slot_below(c, slot)) e[i] = ap_logit(c, x->f, h, slot);
        for (int i = n; i < KV_CHUNK; i++) e[i] = 0.0f;
        for (int i = 0; i < n; i += VW) vf_store(e + i, vf_log_sigmoid(vf_load(e + i)));
        double sum = 0;
        for (int i = 0; i < n; i++) sum += e[i];
        c->ap_in[(size_t)ck * c->H + (size_t)h] = sum;
    }
}

// Partial softmax of head h over the chunk: s_j = scale q·k_j + b(t, j), m = max s, p = e^{s - m},
// l = sum p, o = sum p v_j. Scores past the chunk's keys are -inf, so whole vectors run the exp.
static void chunk_head(grape_kv_cache *c, const step_ctx *x, int ck, int h) {
    int64_t j_lo, j_hi;
    chunk_range(x, ck, &j_lo, &j_hi);
    int D = c->D, n = (int)(j_hi - j_lo + 1);
    size_t HD = (size_t)c->H * D, ch = (size_t)ck * c->H + (size_t)h;
    const float *q = (c->rot == GRAPE_ROT_XPOS && ck ? c->q_blk + (size_t)ck * HD : x->q) + (size_t)h * D;
    float *s = c->scores + ch * KV_CHUNK, mx = -INFINITY;
    const float *e = c->edge + ch * KV_CHUNK;
    double acc = c->kind->form == BIAS_FORM_PATH ? c->ap_in[ch] : 0;
    size_t slot = slot_of(c, j_hi);
    for (int i = 0; i < n; i++, slot = slot_below(c, slot)) {
        s[i] = c->scale * dot(q, c->k + slot * HD + (size_t)h * D, D);
        if (c->kind->form != BIAS_FORM_NONE) s[i] += bias_at(c, x->f, h, x->t, j_hi - i, slot, acc);
        if (c->kind->form == BIAS_FORM_PATH) acc += e[i];
        mx = s[i] > mx ? s[i] : mx;
    }
    for (int i = n; i < KV_CHUNK; i++) s[i] = -INFINITY;
    vf sum = vf_set1(0.0f), m = vf_set1(mx);
    for (int i = 0; i < n; i += VW) {
        vf p = vf_exp(vf_sub(vf_load(s + i), m));
        vf_store(s + i, p);
        sum = vf_add(sum, p);
    }
    weighted_values(c->part_o + ch * D, c, s, n, slot_of(c, j_hi), h);
    c->part_m[ch] = mx;
    c->part_l[ch] = vf_hsum(sum);
}

// out_h = sum_c e^{m_c - M} o_c / sum_c e^{m_c - M} l_c over the chunks in order.
static void combine(grape_kv_cache *c, float *out, int nck) {
    int D = c->D;
    for (int h = 0; h < c->H; h++) {
        float M = -INFINITY, L = 0, *o = out + (size_t)h * D;
        for (int ck = 0; ck < nck; ck++) M = fmaxf(M, c->part_m[(size_t)ck * c->H + (size_t)h]);
        for (int d = 0; d < D; d++) o[d] = 0;
        for (int ck = 0; ck < nck; ck++) {
            size_t ch = (size_t)ck * c->H + (size_t)h;
            float w = expf(c->part_m[ch] - M);
            L += w * c->part_l[ch];
            for (int d = 0; d < D; d++) o[d] += w * c->part_o[ch * D + (size_t)d];
        }
        for (int d = 0; d < D; d++) o[d] /= L;
    }
}

// xPos: the query of every older chunk, q_pre rotated at t with that chunk's anchor (magnitude ratio
// zeta^((c_t-c_b)/sb)); the newest chunk's query is q itself.
static grape_status chunk_queries(grape_kv_cache *c, const step_ctx *x, int nck) {
    size_t HD = (size_t)c->H * c->D;
    for (int ck = 1; ck < nck && c->rot == GRAPE_ROT_XPOS; ck++) {
        int64_t j_lo, j_hi;
        chunk_range(x, ck, &j_lo, &j_hi);
        grape_positions pos = token_positions(c, x->t, xpos_anchor(j_hi));
        grape_status st = grape_rot_forward(c->q_blk + (size_t)ck * HD, c->q_pre, c->pe, &pos, GRAPE_QUERY, 1, 1);
        if (st) return st;
    }
    return GRAPE_OK;
}

// The attention of query q at position t over keys [lo, t] into out (H, D).
static grape_status attend_split(grape_kv_cache *c, float *out, const float *q, const grape_bias_factors *f,
                                 int64_t lo, int64_t t) {
    step_ctx x = {t, lo, t / KV_CHUNK * KV_CHUNK, q, f};
    int nck = (int)((x.top - lo / KV_CHUNK * KV_CHUNK) / KV_CHUNK) + 1, H = c->H;
    grape_status st = chunk_queries(c, &x, nck);
    if (st) return st;
    int par = (t - lo + 1) * H * c->D > KV_PAR_WORK && nck > 1;
    if (c->kind->form == BIAS_FORM_PATH) {
#pragma omp parallel for schedule(static) if (par)
        for (int ck = 0; ck < nck; ck++) chunk_edges(c, &x, ck);
        for (int h = 0; h < H; h++) { // the suffix entering each chunk: the edge sums of the newer chunks
            double run = 0;
            for (int ck = 0; ck < nck; ck++) {
                double *in = &c->ap_in[(size_t)ck * H + (size_t)h], sum = *in;
                *in = run;
                run += sum;
            }
        }
    }
#pragma omp parallel for schedule(static) if (par)
    for (int i = 0; i < nck * H; i++) chunk_head(c, &x, i / H, i % H);
    combine(c, out, nck);
    return GRAPE_OK;
}

grape_status grape_kv_cache_attend(grape_kv_cache *c, float *out, const float *q, const float *k, const float *v,
                                   const float *gq, const float *gk, const float *const *in) {
    if (!c || !out || !q || !k || !v) return error_fail(GRAPE_ERR_ARG, "grape_kv_cache_attend: NULL tensor");
    grape_status st = check_inputs(c, in);
    if (st) return st;
    int64_t t = c->pos, lo = c->window && t - c->start > c->window ? t - c->window : c->start;
    grape_bias_factors *f;
    if ((st = grape_bias_factors_forward(&f, c->fws, c->pe, gq ? gq : q, gk ? gk : k, in, t, 1, 1))) return st;
    append(c, k, v, f);
    if ((st = attend_split(c, out, q, f, lo, t))) return st;
    if (c->nph && (st = advance_phase(c, in[c->in_phase]))) return st;
    c->pos++;
    return GRAPE_OK;
}
