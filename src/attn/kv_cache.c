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
// The chunks do not depend on the thread count, so neither do the bits. The biases that run over the keys are
// split the same way: GRAPE-AP's suffix sum b(t,j) = α Σ_{l=j+1..t} ψ_l is a chunk-local suffix plus the sum
// entering from the newer chunks, a constant per chunk that shifts its row max (m_c += α·in_c) after the chunks ran;
// xPos's query against an older block is the newest one times a per-dim ratio fixed at create.
#include <string.h>

#include "attn/attn_internal.h"
#include "core/simd.h"
#include "core/error.h"
#include "core/mem.h"
#include "pe/bias_kinds.h"
#include "pe/rotation.h"

// xPos anchors: keys are scaled against the first position of their block of this many tokens.
#define KV_XPOS_BLOCK 256
// Keys per chunk of the split decode: one xPos block, so a chunk has one query (its anchor is KV_CHUNK·ck before
// the newest chunk's); a multiple of every vector width.
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
    float *probe_kt;  // (H, P, cap + KV_CHUNK) GRAPE-AP rotated key probes r_j, transposed so that a chunk's keys
                      // are a vector run; slots below KV_CHUNK are mirrored past cap, so a run never wraps
    int nck;          // chunks a step can span: cap / KV_CHUNK + 2
    float *xpos_ratio; // (nck, D) xPos: ζ^(ck·KV_CHUNK/sb) per dim, the query's ratio against chunk ck's anchor
    float *q_blk;     // (nck, H, D) xPos: the query against each chunk's anchor
    float *scores;    // (nck, H, KV_CHUNK) each chunk's scores, then probabilities, oldest key first
    float *part_m, *part_l; // (nck, H) each chunk's row max and sum
    float *part_o;    // (nck, H, D) each chunk's unnormalised output
    float *edge;      // (nck, H, KV_CHUNK) GRAPE-AP edges log sigmoid(<p_t, r_l>/P) of each chunk's keys
    double *ap_sum;   // (nck, H) GRAPE-AP: the sum of the chunk's edges
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
    c->probe_kt = arena_take(a, H * (size_t)(c->P ? c->P : 1) * (cap + KV_CHUNK) * sizeof(float));
    size_t nck = (size_t)c->nck, ap = c->P ? 1 : 0, xp = c->rot == GRAPE_ROT_XPOS ? nck : 1;
    c->xpos_ratio = arena_take(a, xp * (size_t)c->D * sizeof(float));
    c->q_blk = arena_take(a, xp * HD * sizeof(float));
    c->scores = arena_take(a, nck * H * KV_CHUNK * sizeof(float));
    c->part_m = arena_take(a, nck * H * sizeof(float));
    c->part_l = arena_take(a, nck * H * sizeof(float));
    c->part_o = arena_take(a, nck * HD * sizeof(float));
    c->edge = arena_take(a, (ap ? nck * H * KV_CHUNK : 1) * sizeof(float));
    c->ap_sum = arena_take(a, nck * H * sizeof(double));
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
    // Probe slots no token has filled yet are read as padding of a chunk's last vector: give them a value.
    memset(c->probe_kt, 0, (size_t)c->H * (size_t)(c->P ? c->P : 1) * ((size_t)c->cap + KV_CHUNK) * sizeof(float));
    for (int ck = 0; ck < c->nck && c->rot == GRAPE_ROT_XPOS; ck++)
        rot_xpos_query_ratio(c->xpos_ratio + (size_t)ck * c->D, pe, (double)ck * KV_CHUNK);
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
    size_t ld = (size_t)c->cap + KV_CHUNK, HP = H * (size_t)c->P;
    for (size_t i = 0; probe_k && i < HP; i++) {
        c->probe_kt[i * ld + slot] = probe_k[i];
        if (slot < KV_CHUNK) c->probe_kt[i * ld + (size_t)c->cap + slot] = probe_k[i];
    }
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
static size_t slot_above(const grape_kv_cache *c, size_t slot) { return slot + 1 < (size_t)c->cap ? slot + 1 : 0; }

// Bias b_h(t, j) of the pointwise forms for the new query t against the key at position j in ring slot `slot`: the
// kind's closed form (pe/bias_kinds.h) on the new token's query factors and the cached key factors.
static float bias_at(const grape_kv_cache *c, const grape_bias_factors *f, int h, int64_t t, int64_t j, size_t slot) {
    size_t fs = slot * (size_t)c->H + (size_t)h;
    const float *slope = bf_f32(f, BF_SLOPE), *gate_q = bf_f32(f, BF_GATE_Q);
    int cum = f->ch[BF_CUM] != NULL;
    bias_pair p = {.slope = slope ? slope[h] : 0.0, .dist = (double)(t - j), .gate_q = gate_q ? gate_q[h] : 0.0,
                   .gate_k = f->ch[BF_GATE_K] ? c->gate_k[fs] : 0.0, .cum_q = cum ? c->fox_c[h] : 0.0,
                   .cum_k = cum ? c->cum[fs] : 0.0};
    return (float)bias_pair_value(c->kind, &p);
}

// Keys a loop asks the memory for ahead of the one it works on (a head's rows are H·D floats apart): measured at
// N = 4096 on 2 threads, it took nope from 89 to 79 us and grape-a-qk from 116 to 98 (docs/BENCHMARKS.md).
#define KV_AHEAD 4

// Prefetch the n floats at p (one head's row of k or v) into the caches.
static inline void prefetch_row(const float *p, int n) {
    for (int d = 0; d < n; d += 16) __builtin_prefetch(p + d, 0, 3);
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

// o (D) = sum_i p[i] v_i over the chunk's n keys from ring slot `slot` up; columns in blocks of up to 4 vectors
// held in registers across the keys (D a multiple of VW; else one scalar pass).
static void weighted_values(float *o, const grape_kv_cache *c, const float *p, int n, size_t slot, int h) {
    int D = c->D;
    size_t HD = (size_t)c->H * D;
    const float *v0 = c->v + (size_t)h * D;
    if (D % VW) {
        for (int d = 0; d < D; d++) o[d] = 0;
        for (int i = 0; i < n; i++, slot = slot_above(c, slot))
            for (int d = 0; d < D; d++) o[d] += p[i] * v0[slot * HD + (size_t)d];
        return;
    }
    for (int d0 = 0; d0 < D; d0 += 4 * VW) {
        int nv = (D - d0) / VW < 4 ? (D - d0) / VW : 4;
        vf a0 = vf_set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
        size_t sl = slot, ahead = slot;
        for (int i = 0; i < KV_AHEAD && i + 1 < n; i++) ahead = slot_above(c, ahead);
        for (int i = 0; i < n; i++, sl = slot_above(c, sl)) {
            prefetch_row(v0 + ahead * HD + (size_t)d0, nv * VW);
            ahead = i + KV_AHEAD + 1 < n ? slot_above(c, ahead) : ahead;
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

// --- one chunk: keys [j_lo, j_hi], chunk index ck (0: the newest)

typedef struct {
    int64_t t, lo;      // the query's position and the lowest visible key
    int64_t top;        // first position of the newest chunk
    const float *q;     // (H, D) the query
    const grape_bias_factors *f;
} step_ctx;

static void chunk_range(const step_ctx *x, int ck, int64_t *j_lo, int64_t *j_hi) {
    int64_t base = x->top - (int64_t)ck * KV_CHUNK;
    *j_hi = ck ? base + KV_CHUNK - 1 : x->t;
    *j_lo = base > x->lo ? base : x->lo;
}

// Head h's query against chunk ck's keys: q itself, or for xPos in an older chunk q times the ratio of the scale
// against that chunk's anchor, KV_CHUNK·ck positions before the newest one's (rot_xpos_query_ratio).
static const float *chunk_query(grape_kv_cache *c, const step_ctx *x, int ck, int h) {
    int D = c->D;
    const float *q = x->q + (size_t)h * D;
    if (c->rot != GRAPE_ROT_XPOS || !ck) return q;
    const float *g = c->xpos_ratio + (size_t)ck * D;
    float *qb = c->q_blk + ((size_t)ck * c->H + (size_t)h) * D;
    for (int d = 0; d < D; d++) qb[d] = q[d] * g[d];
    return qb;
}

// GRAPE-AP edges e[i] = log sigmoid(<p_t, r_l>/P) of head h for the chunk's n keys from ring slot `slot` up
// (oldest first), VW keys at a time over the transposed probes; e is filled to a whole vector (the padding lanes
// read slots past the chunk and are never used).
static void chunk_edges(float *e, const grape_kv_cache *c, const float *probe_q, size_t slot, int n, int h) {
    size_t ld = (size_t)c->cap + KV_CHUNK;
    const float *r = c->probe_kt + (size_t)h * c->P * ld + slot;
    vf inv = vf_set1(1.0f / (float)c->P);
    for (int i = 0; i < n; i += VW) {
        vf s = vf_set1(0.0f);
        for (int p = 0; p < c->P; p++) s = vf_fma(vf_set1(probe_q[p]), vf_load(r + (size_t)p * ld + (size_t)i), s);
        vf_store(e + i, vf_log_sigmoid(vf_mul(s, inv)));
    }
}

// Partial softmax of head h over the chunk: s_j = scale q·k_j + b(t, j), m = max s, p = e^{s - m},
// l = sum p, o = sum p v_j. Scores past the chunk's keys are -inf, so whole vectors run the exp. GRAPE-AP's bias
// here is the chunk-local suffix α Σ_{l=j+1..j_hi} ψ_l (keys visited newest first); attend_split adds the rest.
static void chunk_head(grape_kv_cache *c, const step_ctx *x, int ck, int h) {
    int64_t j_lo, j_hi;
    chunk_range(x, ck, &j_lo, &j_hi);
    int D = c->D, n = (int)(j_hi - j_lo + 1), path = c->kind->form == BIAS_FORM_PATH;
    int pointwise = c->kind->form != BIAS_FORM_NONE && !path;
    size_t HD = (size_t)c->H * D, ch = (size_t)ck * c->H + (size_t)h;
    const float *q = chunk_query(c, x, ck, h);
    float *s = c->scores + ch * KV_CHUNK, *e = c->edge + ch * KV_CHUNK, mx = -INFINITY;
    if (path) chunk_edges(e, c, bf_f32(x->f, BF_PROBE_Q) + (size_t)h * c->P, slot_of(c, j_lo), n, h);
    double acc = 0, alpha = path ? bf_f32(x->f, BF_SLOPE)[h] : 0;
    size_t slot = slot_of(c, j_hi);
    size_t ahead = slot_of(c, j_hi - KV_AHEAD > j_lo ? j_hi - KV_AHEAD : j_lo);
    for (int i = n - 1; i >= 0; i--, slot = slot_below(c, slot)) {
        prefetch_row(c->k + ahead * HD + (size_t)h * D, D);
        ahead = i > KV_AHEAD ? slot_below(c, ahead) : ahead;
        s[i] = c->scale * dot(q, c->k + slot * HD + (size_t)h * D, D);
        if (pointwise) s[i] += bias_at(c, x->f, h, x->t, j_lo + i, slot);
        if (path) s[i] += (float)(alpha * acc), acc += e[i];
        mx = s[i] > mx ? s[i] : mx;
    }
    if (path) c->ap_sum[ch] = acc;
    for (int i = n; i < KV_CHUNK; i++) s[i] = -INFINITY;
    vf sum = vf_set1(0.0f), m = vf_set1(mx);
    for (int i = 0; i < n; i += VW) {
        vf p = vf_exp(vf_sub(vf_load(s + i), m));
        vf_store(s + i, p);
        sum = vf_add(sum, p);
    }
    weighted_values(c->part_o + ch * D, c, s, n, slot_of(c, j_lo), h);
    c->part_m[ch] = mx;
    c->part_l[ch] = vf_hsum(sum);
}

// GRAPE-AP: chunk ck's bias is its local suffix plus α·in_c, in_c = the edge sums of the newer chunks (in chunk
// order), a constant over the chunk: it moves the chunk's row max, m_c += α·in_c.
static void path_shift(grape_kv_cache *c, const grape_bias_factors *f, int nck) {
    for (int h = 0; h < c->H; h++) {
        double in = 0;
        for (int ck = 0; ck < nck; ck++) {
            size_t ch = (size_t)ck * c->H + (size_t)h;
            c->part_m[ch] += (float)(bf_f32(f, BF_SLOPE)[h] * in);
            in += c->ap_sum[ch];
        }
    }
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

// The attention of query q at position t over keys [lo, t] into out (H, D).
static void attend_split(grape_kv_cache *c, float *out, const float *q, const grape_bias_factors *f, int64_t lo,
                         int64_t t) {
    step_ctx x = {t, lo, t / KV_CHUNK * KV_CHUNK, q, f};
    int nck = (int)((x.top - lo / KV_CHUNK * KV_CHUNK) / KV_CHUNK) + 1, H = c->H;
    int par = (t - lo + 1) * H * c->D > KV_PAR_WORK && nck > 1;
#pragma omp parallel for schedule(static) if (par)
    for (int i = 0; i < nck * H; i++) chunk_head(c, &x, i / H, i % H);
    if (c->kind->form == BIAS_FORM_PATH) path_shift(c, f, nck);
    combine(c, out, nck);
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
    attend_split(c, out, q, f, lo, t);
    if (c->nph && (st = advance_phase(c, in[c->in_phase]))) return st;
    c->pos++;
    return GRAPE_OK;
}
