// attention.c — fused causal attention with the additive action generated inside the tiles.
//
// FlashAttention-2 (Dao 2023) online softmax, O = softmax(scale q kᵀ + b) v, never forming T x T. Layout choice:
// a tile holds ATTN_BQ queries in vector LANES, so per key j the score row S[j][0..BQ) is one set of vectors.
// That makes every per-query quantity (row max, row sum, lse, the GRAPE-AP suffix sums over keys) a plain vector
// op, and every product is one register-blocked routine (tile_mk):
//   Sᵀ = K·(scale Q)ᵀ,  Oᵀ += Vᵀ·Pᵀ,  dPᵀ = V·dOᵀ,  dQᵀ += Kᵀ·dSᵀ,  dV += Pᵀ·dO,  dK += dSᵀ·Q.
// Key tiles are visited from the diagonal backwards: GRAPE-AP needs b(t,j) = slope sum_{l=j+1..t} psi(t,l) as a
// running suffix per query (GRAPE §5), and the online softmax is indifferent to key order.
// Backward: dk, dv and the key-side factor grads of a (b,h) go to per-thread (T,·) accumulators — O(threads·T·(D+P))
// extra memory, no races, no atomics. When the (b,h) slices split evenly over the threads, each thread owns whole
// slices (every query tile of a slice in one fixed order, then its accumulators flushed into dk, dv: no barrier);
// otherwise (few slices, e.g. B = 1) the query tiles of each slice are dealt to the threads by a fixed rule and the
// accumulators reduced in thread-index order after each slice. Either way, for a given thread count the gradients
// are the same bits on every run.
#include <string.h>

#include <omp.h>

#include "attn/attn_internal.h"
#include "core/simd.h"
#include "attn/tile.h"
#include "core/error.h"
#include "core/mem.h"
#include "pe/bias_kinds.h"

#define BQ ATTN_BQ
#define BK ATTN_BK
#define NVQ (BQ / VW) // vectors per lane row

// --- one (b,h) slice of the inputs

typedef struct {
    const float *q, *k, *v; // rows t of this (b,h): x + t*ld, (T, D)
    size_t ld;              // H*D
    int T, D, window;       // window: effective BCA window (0 = plain causal)
    int h;                  // head
    float scale;
    bias_form form;         // the kind's closed form (pe/bias_kinds.h); BIAS_FORM_NONE when no factors
    int gated;              // linear form with gates
    float slope;
    const float *gate_q, *gate_k; // stride fs
    const double *cum;            // stride fs
    const float *probe_q, *probe_k; // stride ps
    size_t fs, ps;
    int P;
} slice;

static void slice_init(slice *s, const float *q, const float *k, const float *v, const grape_bias_factors *f,
                       float scale, int window, int b, int h, int T, int H, int D) {
    size_t row0 = (size_t)b * (size_t)T * (size_t)H + (size_t)h;
    *s = (slice){.q = q + row0 * (size_t)D, .k = k + row0 * (size_t)D, .v = v + row0 * (size_t)D,
                 .ld = (size_t)H * (size_t)D, .T = T, .D = D, .window = window, .h = h, .scale = scale,
                 .form = BIAS_FORM_NONE, .fs = (size_t)H};
    if (!f) return;
    const bias_kind *kd = bias_kind_of(f->kind);
    s->form = kd->form;
    s->gated = bias_kind_gated(kd);
    if (s->form == BIAS_FORM_NONE) return;
    // The factor list, read by index (bias_kinds.h): NULL where the kind lacks the channel.
    const float *slope = bf_f32(f, BF_SLOPE), *gate_q = bf_f32(f, BF_GATE_Q), *gate_k = bf_f32(f, BF_GATE_K);
    const float *probe_q = bf_f32(f, BF_PROBE_Q), *probe_k = bf_f32(f, BF_PROBE_K);
    const double *cum = bf_f64(f, BF_CUM);
    s->slope = slope ? slope[h] : 0.0f;
    s->gate_q = gate_q ? gate_q + row0 : NULL;
    s->gate_k = gate_k ? gate_k + row0 : NULL;
    s->cum = cum ? cum + row0 : NULL;
    s->P = bias_kind_has(kd, BF_PROBE_Q) ? f->P : 0; // must match the workspace plan (bias_probe_dim)
    s->ps = (size_t)H * (size_t)f->P;
    s->probe_q = probe_q ? probe_q + row0 * (size_t)f->P : NULL;
    s->probe_k = probe_k ? probe_k + row0 * (size_t)f->P : NULL;
}

// --- per-thread tile workspace (carved from the caller's workspace, attn_workspace_bytes)

typedef struct {
    float *QT;  // (D, BQ) scale * q, transposed
    float *AT;  // (D, BQ) forward: O accumulator; backward: dQ accumulator
    float *dOT; // (D, BQ) backward: dO transposed
    float *ST;  // (BK, BQ) scores, then P
    float *dPT; // (BK, BQ) backward: dP, then dS
    float *xT, *lsT;   // (BK, BQ) GRAPE-AP edges x(t,l) and log sigmoid(x)
    float *pqT, *dpqT, *cpqT; // (P, BQ) GRAPE-AP query probes / P, their gradient, its row-total correction
    float *kf;  // (BK) per-key factor of the current key tile
    // lane vectors (BQ): positions, BCA lower bounds, softmax state, bias state and query-side gradients
    float *t, *lo, *m, *l, *alpha, *gq, *acc, *gs, *lsum, *dsl, *dgq, *dcq;
    // key-side accumulators of the current (b,h) (backward only): (T,D), (T,D), (T,P), (T), (T)
    float *dK, *dV, *dpk, *dgk;
    double *dck;
    double *dslope; // (H) this thread's slope gradient
} tws;

static void ws_plan(grape_arena *a, tws *w, int T, int H, int D, int P, int backward) {
    size_t tile = (size_t)D * BQ * sizeof(float), sq = (size_t)BK * BQ * sizeof(float);
    size_t pt = (size_t)(P > 0 ? P : 1) * BQ * sizeof(float), lane = BQ * sizeof(float);
    w->QT = arena_take(a, tile);
    w->AT = arena_take(a, tile);
    w->ST = arena_take(a, sq);
    w->xT = arena_take(a, sq);
    w->lsT = arena_take(a, sq);
    w->pqT = arena_take(a, pt);
    w->kf = arena_take(a, BK * sizeof(float));
    float **lanes[] = {&w->t,  &w->lo,   &w->m,   &w->l,   &w->alpha, &w->gq,
                       &w->acc, &w->gs, &w->lsum, &w->dsl, &w->dgq, &w->dcq};
    for (size_t i = 0; i < sizeof lanes / sizeof lanes[0]; i++) *lanes[i] = arena_take(a, lane);
    w->dslope = arena_take(a, (size_t)H * sizeof(double));
    if (!backward) return;
    w->dOT = arena_take(a, tile);
    w->dPT = arena_take(a, sq);
    w->dpqT = arena_take(a, pt);
    w->cpqT = arena_take(a, pt);
    w->dK = arena_take(a, (size_t)T * (size_t)D * sizeof(float));
    w->dV = arena_take(a, (size_t)T * (size_t)D * sizeof(float));
    w->dpk = arena_take(a, (size_t)T * (size_t)(P > 0 ? P : 1) * sizeof(float));
    w->dgk = arena_take(a, (size_t)T * sizeof(float));
    w->dck = arena_take(a, (size_t)T * sizeof(double));
}

// --- query tile setup

// Lanes i >= nq (past T) replicate the last query so every lane sees at least its diagonal key (no NaN rows);
// their results are never stored and, in the backward, their P is forced to 0.
static int lane_row(int i, int nq) { return i < nq ? i : nq - 1; }

// QT[d][i] = scale * q[t0+i][d]; lane positions, BCA bounds and per-query bias factors.
static void qtile_setup(tws *w, const slice *s, int t0, int nq) {
    for (int i = 0; i < BQ; i++) {
        int t = t0 + lane_row(i, nq);
        const float *qt = s->q + (size_t)t * s->ld;
        for (int d = 0; d < s->D; d++) w->QT[(size_t)d * BQ + (size_t)i] = s->scale * qt[d];
        w->t[i] = (float)t;
        w->lo[i] = (float)attn_bca_lo(t, s->window);
        w->gq[i] = s->gate_q ? s->gate_q[(size_t)t * s->fs] : 0.0f;
        w->acc[i] = w->gs[i] = w->lsum[i] = w->dsl[i] = w->dgq[i] = w->dcq[i] = 0.0f;
        if (s->form == BIAS_FORM_PATH)
            for (int p = 0; p < s->P; p++)
                w->pqT[(size_t)p * BQ + (size_t)i] = s->probe_q[(size_t)t * s->ps + (size_t)p] / (float)s->P;
    }
}

// --- the additive action inside a tile (forward and backward side by side): the SIMD kernels of the closed forms
// of pe/bias_kinds.h, one per form (a new kind of an existing form needs none)

// Linear -slope (t-j) Λ: ungated (ALiBi, GRAPE-A) Λ = 1, gated (GRAPE-A-k/q/qk) Λ = gate_q(t) + gate_k(j); cum
// (FoX) c_t - c_j rebased on c_{j0} (float keeps its precision at large T); path (GRAPE-AP) slope * (suffix of
// log sigmoid(<p_t, r_l>/P)) over l in (j, t].
static void bias_forward(tws *w, const slice *s, int j0, int nk) {
    float *ST = w->ST;
    switch (s->form) {
    case BIAS_FORM_LINEAR:
        if (!s->gated) { // Λ = 1
            for (int j = 0; j < nk; j++)
                for (int v = 0; v < NVQ; v++) {
                    vf d = vf_sub(vf_set1((float)(j0 + j)), vf_load(w->t + v * VW));
                    vf_store(ST + j * BQ + v * VW, vf_fma(vf_set1(s->slope), d, vf_load(ST + j * BQ + v * VW)));
                }
            break;
        }
        for (int j = 0; j < nk; j++) {
            float gk = s->gate_k ? s->gate_k[(size_t)(j0 + j) * s->fs] : 0.0f;
            for (int v = 0; v < NVQ; v++) {
                vf d = vf_sub(vf_set1((float)(j0 + j)), vf_load(w->t + v * VW));
                vf lam = vf_mul(vf_set1(s->slope), vf_add(vf_load(w->gq + v * VW), vf_set1(gk)));
                vf_store(ST + j * BQ + v * VW, vf_fma(lam, d, vf_load(ST + j * BQ + v * VW)));
            }
        }
        break;
    case BIAS_FORM_CUM: {
        double base = s->cum[(size_t)j0 * s->fs];
        float cq[BQ];
        for (int i = 0; i < BQ; i++) cq[i] = (float)(s->cum[(size_t)w->t[i] * s->fs] - base);
        for (int j = 0; j < nk; j++) {
            vf ck = vf_set1((float)(s->cum[(size_t)(j0 + j) * s->fs] - base));
            for (int v = 0; v < NVQ; v++)
                vf_store(ST + j * BQ + v * VW, vf_add(vf_load(ST + j * BQ + v * VW), vf_sub(vf_load(cq + v * VW), ck)));
        }
        break;
    }
    case BIAS_FORM_PATH:
        memset(w->xT, 0, (size_t)nk * BQ * sizeof(float));
        tile_mk(w->xT, BQ, s->probe_k + (size_t)j0 * s->ps, s->ps, 1, w->pqT, BQ, nk, BQ, s->P);
        for (int j = nk - 1; j >= 0; j--)
            for (int v = 0; v < NVQ; v++) {
                vf ls = vf_log_sigmoid(vf_load(w->xT + j * BQ + v * VW));
                vf_store(w->lsT + j * BQ + v * VW, ls);
                vf acc = vf_load(w->acc + v * VW);
                vf_store(ST + j * BQ + v * VW, vf_fma(vf_set1(s->slope), acc, vf_load(ST + j * BQ + v * VW)));
                // psi(t,l) only counts for l <= t: keys past the query add nothing to the suffix
                vf jf = vf_set1((float)(j0 + j));
                vf_store(w->acc + v * VW, vf_add(acc, vf_select_lt(vf_load(w->t + v * VW), jf, vf_set1(0.0f), ls)));
            }
        break;
    default: break;
    }
}

// Gradients of the factors from G = dL/db on this tile (G = dS, masked entries 0). Query-side grads collect in
// lanes (w->dsl, dgq, dcq, dpqT), key-side ones in the thread's (T,·) accumulators.
static void bias_backward(tws *w, const slice *s, const float *G, int j0, int nk) {
    const vf zero = vf_set1(0.0f);
    if (s->form == BIAS_FORM_LINEAR) {
        for (int j = 0; j < nk; j++) {
            float gk = s->gate_k ? s->gate_k[(size_t)(j0 + j) * s->fs] : 0.0f;
            vf dG = zero;
            for (int v = 0; v < NVQ; v++) {
                vf d = vf_sub(vf_set1((float)(j0 + j)), vf_load(w->t + v * VW));
                vf g = vf_mul(d, vf_load(G + j * BQ + v * VW)); // d b / d(slope * lambda) * G
                vf lam = !s->gated ? vf_set1(1.0f) : vf_add(vf_load(w->gq + v * VW), vf_set1(gk));
                vf_store(w->dsl + v * VW, vf_fma(lam, g, vf_load(w->dsl + v * VW)));
                vf_store(w->dgq + v * VW, vf_fma(vf_set1(s->slope), g, vf_load(w->dgq + v * VW)));
                dG = vf_add(dG, g);
            }
            w->dgk[j0 + j] += s->slope * vf_hsum(dG);
        }
    } else if (s->form == BIAS_FORM_CUM) {
        for (int j = 0; j < nk; j++) {
            vf sum = zero;
            for (int v = 0; v < NVQ; v++) {
                vf g = vf_load(G + j * BQ + v * VW);
                vf_store(w->dcq + v * VW, vf_add(vf_load(w->dcq + v * VW), g));
                sum = vf_add(sum, g);
            }
            w->dck[j0 + j] -= vf_hsum(sum);
        }
    } else if (s->form == BIAS_FORM_PATH) {
        // da(t,l) = sum_{lo<=j<l} G(t,j) = r_t - sum_{j>=l} G(t,j) with r_t = sum_j G(t,j) (0 in exact arithmetic):
        // the suffix runs in the forward's key order; the r_t terms are added once per row (qtile_bias_grads),
        // because r_t times a sum over up to T edges is not negligible. da = 0 for l <= lo (incl. l = 0).
        for (int j = nk - 1; j >= 0; j--) {
            vf jf = vf_set1((float)(j0 + j));
            for (int v = 0; v < NVQ; v++) {
                vf gs = vf_add(vf_load(w->gs + v * VW), vf_load(G + j * BQ + v * VW));
                vf_store(w->gs + v * VW, gs);
                vf lo1 = vf_add(vf_load(w->lo + v * VW), vf_set1(1.0f)), t = vf_load(w->t + v * VW);
                vf da = vf_select_lt(jf, lo1, zero, vf_sub(zero, gs));
                vf ls = vf_load(w->lsT + j * BQ + v * VW), x = vf_load(w->xT + j * BQ + v * VW);
                vf_store(w->dsl + v * VW, vf_fma(da, ls, vf_load(w->dsl + v * VW)));
                // d log sigmoid(x)/dx = sigmoid(-x) = exp(log sigmoid(x) - x)
                vf sg = vf_exp(vf_sub(ls, x));
                vf_store(w->xT + j * BQ + v * VW, vf_mul(vf_mul(da, vf_set1(s->slope)), sg));
                // the edges lo < l <= t, for the r_t terms: sum of log sigmoid, and sigmoid(-x) (into lsT)
                vf live = vf_select_lt(t, jf, zero, vf_select_lt(jf, lo1, zero, vf_set1(1.0f)));
                vf_store(w->lsum + v * VW, vf_fma(live, ls, vf_load(w->lsum + v * VW)));
                vf_store(w->lsT + j * BQ + v * VW, vf_mul(live, sg));
            }
        }
        tile_mk(w->dpqT, BQ, s->probe_k + (size_t)j0 * s->ps, 1, s->ps, w->xT, BQ, s->P, BQ, nk);
        tile_mk(w->cpqT, BQ, s->probe_k + (size_t)j0 * s->ps, 1, s->ps, w->lsT, BQ, s->P, BQ, nk);
        tile_dot_lanes(w->dpk + (size_t)j0 * (size_t)s->P, (size_t)s->P, w->xT, BQ, w->pqT, BQ, nk, s->P, BQ);
    }
    // the slope sums T^2 terms of both signs: flush the tile's float lanes into the thread's double per tile
    vf dsl = zero;
    for (int v = 0; v < NVQ; v++) dsl = vf_add(dsl, vf_load(w->dsl + v * VW));
    w->dslope[s->h] += vf_hsum(dsl);
    memset(w->dsl, 0, BQ * sizeof(float));
}

// --- scores of one (query tile, key tile) pair

// -inf where key j > query t, or j < lo(t) under BCA.
static void mask_tile(tws *w, int j0, int nk) {
    const vf ninf = vf_set1(-INFINITY);
    for (int j = 0; j < nk; j++) {
        vf jf = vf_set1((float)(j0 + j));
        for (int v = 0; v < NVQ; v++) {
            vf x = vf_load(w->ST + j * BQ + v * VW);
            x = vf_select_lt(vf_load(w->t + v * VW), jf, ninf, x);
            x = vf_select_lt(jf, vf_load(w->lo + v * VW), ninf, x);
            vf_store(w->ST + j * BQ + v * VW, x);
        }
    }
}

// ST[j][i] = scale q_i·k_j + b(t_i, j) (masked), for keys [j0, j0+nk) and the tile's queries [t0, t0+nq).
static void scores(tws *w, const slice *s, int t0, int nq, int j0, int nk) {
    memset(w->ST, 0, (size_t)nk * BQ * sizeof(float));
    tile_mk(w->ST, BQ, s->k + (size_t)j0 * s->ld, s->ld, 1, w->QT, BQ, nk, BQ, s->D);
    bias_forward(w, s, j0, nk);
    int last = t0 + nq - 1;
    if (j0 + nk - 1 > t0 || (s->window && j0 < attn_bca_lo(last, s->window))) mask_tile(w, j0, nk);
}

// First key tile of a query tile starting at t0: tile-aligned floor of the lowest visible key.
static int first_key_tile(const slice *s, int t0) { return (int)(attn_bca_lo(t0, s->window) / BK) * BK; }

// --- forward

// Online softmax over one key tile (FlashAttention-2 Alg. 1): m' = max(m, rowmax S), P = exp(S - m'),
// l' = l e^{m-m'} + rowsum P, O' = O e^{m-m'} + P v. P overwrites S.
static void online_softmax(tws *w, int nk, int D, int first) {
    for (int v = 0; v < NVQ; v++) {
        vf m = vf_load(w->m + v * VW), mx = m;
        for (int j = 0; j < nk; j++) mx = vf_max(mx, vf_load(w->ST + j * BQ + v * VW));
        vf sum = vf_set1(0.0f);
        for (int j = 0; j < nk; j++) {
            vf p = vf_exp(vf_sub(vf_load(w->ST + j * BQ + v * VW), mx));
            vf_store(w->ST + j * BQ + v * VW, p);
            sum = vf_add(sum, p);
        }
        vf alpha = vf_exp(vf_sub(m, mx));
        vf_store(w->alpha + v * VW, alpha);
        vf_store(w->l + v * VW, vf_fma(vf_load(w->l + v * VW), alpha, sum));
        vf_store(w->m + v * VW, mx);
    }
    if (first) return; // O is still zero
    for (int d = 0; d < D; d++)
        for (int v = 0; v < NVQ; v++)
            vf_store(w->AT + (size_t)d * BQ + v * VW, vf_mul(vf_load(w->AT + (size_t)d * BQ + v * VW), vf_load(w->alpha + v * VW)));
}

// Rows [t0, t0+nq) of one (b,h): out (T,D) with row stride ld, lse (T) = m + log l, every key tile of the row
// from the diagonal down to the BCA bound.
static void forward_qtile(float *out, float *lse, tws *w, const slice *s, int t0) {
    int nq = s->T - t0 < BQ ? s->T - t0 : BQ, D = s->D;
    qtile_setup(w, s, t0, nq);
    memset(w->AT, 0, (size_t)D * BQ * sizeof(float));
    for (int i = 0; i < BQ; i++) w->m[i] = -INFINITY, w->l[i] = 0.0f;
    for (int j0 = t0; j0 >= first_key_tile(s, t0); j0 -= BK) {
        int nk = j0 == t0 ? nq : BK;
        scores(w, s, t0, nq, j0, nk);
        online_softmax(w, nk, D, j0 == t0);
        tile_mk(w->AT, BQ, s->v + (size_t)j0 * s->ld, 1, s->ld, w->ST, BQ, D, BQ, nk);
    }
    for (int i = 0; i < nq; i++) {
        float *o = out + (size_t)(t0 + i) * s->ld, inv = 1.0f / w->l[i];
        for (int d = 0; d < D; d++) o[d] = w->AT[(size_t)d * BQ + (size_t)i] * inv;
        lse[t0 + i] = w->m[i] + logf(w->l[i]);
    }
}

// --- argument checks

grape_status attn_check_dims(const char *fn, int B, int T, int H, int D, const grape_attn_opts *opts) {
    if (B < 1 || T < 1 || H < 1 || D < 1)
        return error_fail(GRAPE_ERR_ARG, "%s: sizes must be positive (B=%d T=%d H=%d D=%d)", fn, B, T, H, D);
    if (D > ATTN_MAX_D) return error_fail(GRAPE_ERR_ARG, "%s: head dim D=%d exceeds %d", fn, D, ATTN_MAX_D);
    if (T > ATTN_MAX_T) return error_fail(GRAPE_ERR_ARG, "%s: T=%d exceeds %d", fn, T, ATTN_MAX_T);
    size_t n;
    if (!size_mul(&n, (size_t)B, (size_t)T) || !size_mul(&n, n, (size_t)H) || !size_mul(&n, n, (size_t)D) ||
        !size_mul(&n, n, sizeof(float)))
        return error_fail(GRAPE_ERR_NOMEM, "%s: B*T*H*D overflows size_t", fn);
    if (opts && (opts->bca_window < 0 || opts->bca_window == 1 || opts->bca_window % 2))
        return error_fail(GRAPE_ERR_ARG, "%s: bca_window must be 0 or an even W >= 2, got %d", fn, opts->bca_window);
    if (opts && !(opts->scale == opts->scale)) return error_fail(GRAPE_ERR_ARG, "%s: scale is NaN", fn);
    return GRAPE_OK;
}

grape_status attn_check_bias(const char *fn, const grape_bias_factors *f, int B, int T, int H) {
    if (!f || f->kind == GRAPE_BIAS_NONE) return GRAPE_OK;
    if (f->kind < 0 || f->kind >= GRAPE_BIAS_COUNT) return error_fail(GRAPE_ERR_ARG, "%s: unknown bias kind %d", fn, (int)f->kind);
    if (f->B != B || f->T != T || f->H != H)
        return error_fail(GRAPE_ERR_ARG, "%s: bias factors are (B=%d,T=%d,H=%d), attention is (%d,%d,%d)", fn, f->B,
                          f->T, f->H, B, T, H);
    const bias_kind *kd = bias_kind_of(f->kind);
    for (int i = 0; i < BF_COUNT; i++)
        if (bias_kind_has(kd, i) && !f->ch[i])
            return error_fail(GRAPE_ERR_ARG, "%s: factor '%s' required by bias kind %d (%s) is NULL", fn,
                              bias_factor_descs[i].name, (int)f->kind, kd->info.name);
    if (bias_kind_has(kd, BF_PROBE_Q) && (f->P < 1 || f->P > ATTN_MAX_P))
        return error_fail(GRAPE_ERR_ARG, "%s: probe dim P=%d outside [1, %d]", fn, f->P, ATTN_MAX_P);
    return GRAPE_OK;
}

// One thread's share of the workspace in bytes.
static size_t ws_per_thread(int T, int H, int D, int P, int backward) {
    grape_arena plan = {0};
    tws w;
    ws_plan(&plan, &w, T, H, D, P, backward);
    return plan.used;
}

size_t attn_workspace_bytes(int nth, int T, int H, int D, int P, int backward) {
    size_t total;
    if (nth < 1 || T < 1 || (size_t)T > SIZE_MAX / 64 / ATTN_MAX_D) return 0;
    return size_mul(&total, ws_per_thread(T, H, D, P, backward), (size_t)nth) ? total : 0;
}

// Threads the workspace holds, capped at OpenMP's team size; 0 (with the error set) when it holds none.
static int ws_threads(size_t ws_bytes, size_t per, const void *ws, const char *fn) {
    size_t fit = ws ? ws_bytes / per : 0;
    int nth = omp_get_max_threads();
    if (fit < 1) error_fail(GRAPE_ERR_ARG, "%s: workspace of %zu bytes holds no thread's %zu", fn, ws_bytes, per);
    return fit < (size_t)nth ? (int)fit : nth;
}

static tws ws_bind(char *base, size_t per, int tid, int T, int H, int D, int P, int backward) {
    grape_arena a = {.base = base + per * (size_t)tid, .size = per};
    tws w;
    ws_plan(&a, &w, T, H, D, P, backward);
    return w;
}

static int bias_probe_dim(const grape_bias_factors *f) {
    return f && bias_kind_has(bias_kind_of(f->kind), BF_PROBE_Q) ? f->P : 0;
}

// out, q, k, v: (B,T,H,D); lse: (B,H,T). O = softmax(scale q kᵀ + b + causal/BCA mask) v (grape.h).
grape_status attn_forward_ws(float *out, float *lse, const float *q, const float *k, const float *v,
                             const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T, int H, int D,
                             void *ws_mem, size_t ws_bytes) {
    grape_status st = attn_check_dims("grape_attn_forward", B, T, H, D, opts);
    if (st || (st = attn_check_bias("grape_attn_forward", bias, B, T, H))) return st;
    if (!out || !lse || !q || !k || !v) return error_fail(GRAPE_ERR_ARG, "grape_attn_forward: NULL tensor");
    int P = bias_probe_dim(bias), W = attn_bca_window(opts, T);
    float scale = attn_scale(opts, D);
    size_t per = ws_per_thread(T, H, D, P, 0);
    char *ws = ws_mem;
    int nth = ws_threads(ws_bytes, per, ws, "grape_attn_forward");
    if (!nth) return GRAPE_ERR_ARG;
    int64_t nqt = (T + BQ - 1) / BQ, nbh = (int64_t)B * H;
#pragma omp parallel num_threads(nth)
    {
        unsigned fpu = fpu_flush_denormals();
        tws w = ws_bind(ws, per, omp_get_thread_num(), T, H, D, P, 0);
        // largest (latest) query tiles first, so the dynamic schedule evens out the causal triangle
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < nqt * nbh; it++) {
            int bh = (int)(it % nbh), b = bh / H, h = bh % H, t0 = (int)(nqt - 1 - it / nbh) * BQ;
            slice s;
            slice_init(&s, q, k, v, bias, scale, W, b, h, T, H, D);
            forward_qtile(out + ((size_t)b * T * H + (size_t)h) * D, lse + (size_t)bh * T, &w, &s, t0);
        }
        fpu_restore(fpu);
    }
    return GRAPE_OK;
}

// The one-shot calls' workspace: checks the arguments it is sized from, then allocates it (NULL: *st says why).
static void *one_shot_ws(const char *fn, const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T,
                         int H, int D, int backward, size_t *bytes, grape_status *st) {
    *st = attn_check_dims(fn, B, T, H, D, opts);
    if (*st || (*st = attn_check_bias(fn, bias, B, T, H))) return NULL;
    *bytes = attn_workspace_bytes(omp_get_max_threads(), T, H, D, bias_probe_dim(bias), backward);
    void *ws = *bytes ? mem_alloc(*bytes) : NULL;
    if (!ws) *st = error_fail(GRAPE_ERR_NOMEM, "%s: no memory for the workspace (T = %d)", fn, T);
    return ws;
}

grape_status grape_attn_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T, int H,
                                int D) {
    size_t bytes;
    grape_status st;
    void *ws = one_shot_ws("grape_attn_forward", bias, opts, B, T, H, D, 0, &bytes, &st);
    if (ws) st = attn_forward_ws(out, lse, q, k, v, bias, opts, B, T, H, D, ws, bytes);
    mem_free(ws);
    return st;
}

// --- backward

// Query-side and per-row inputs of the backward: dOᵀ, lse (+inf on padded lanes, so their P = 0), Δ = dO·O.
static void qtile_setup_backward(tws *w, const slice *s, const float *dout, const float *out, const float *lse,
                                 int t0, int nq) {
    for (int i = 0; i < BQ; i++) {
        const float *dO = dout + (size_t)(t0 + lane_row(i, nq)) * s->ld, *O = out + (size_t)(t0 + lane_row(i, nq)) * s->ld;
        float delta = 0;
        for (int d = 0; d < s->D; d++) {
            w->dOT[(size_t)d * BQ + (size_t)i] = i < nq ? dO[d] : 0.0f;
            delta += dO[d] * O[d];
        }
        w->m[i] = i < nq ? lse[t0 + i] : INFINITY; // m holds the lse here
        w->l[i] = i < nq ? delta : 0.0f;           // l holds Δ here
    }
    memset(w->AT, 0, (size_t)s->D * BQ * sizeof(float));
    if (s->form == BIAS_FORM_PATH) {
        memset(w->dpqT, 0, (size_t)s->P * BQ * sizeof(float));
        memset(w->cpqT, 0, (size_t)s->P * BQ * sizeof(float));
    }
}

// P = exp(S - lse) in ST, dS = P (dP - Δ) in dPT (FlashAttention-2 Alg. 2).
static void softmax_backward(tws *w, int nk) {
    for (int j = 0; j < nk; j++)
        for (int v = 0; v < NVQ; v++) {
            vf p = vf_exp(vf_sub(vf_load(w->ST + j * BQ + v * VW), vf_load(w->m + v * VW)));
            vf_store(w->ST + j * BQ + v * VW, p);
            vf dp = vf_load(w->dPT + j * BQ + v * VW);
            vf_store(w->dPT + j * BQ + v * VW, vf_mul(p, vf_sub(dp, vf_load(w->l + v * VW))));
        }
}

typedef struct {
    float *dq;                     // rows of this (b,h), stride ld
    const float *dout, *out, *lse; // same rows; lse: (T)
    grape_bias_grads *g;           // may be NULL
    size_t row0;                   // b*T*H + h: offset of (b, t=0, h) in (B,T,H) arrays
} bwd_io;

// Query-side factor gradients of one tile, from the lane accumulators.
static void qtile_bias_grads(const bwd_io *io, tws *w, const slice *s, int t0, int nq) {
    if (s->form == BIAS_FORM_PATH) // GRAPE-AP row-total terms r_t (see bias_backward); gs now holds r_t
        for (int i = 0; i < nq; i++) {
            w->dslope[s->h] += (double)w->gs[i] * w->lsum[i];
            for (int p = 0; p < s->P; p++)
                w->dpqT[(size_t)p * BQ + (size_t)i] += w->gs[i] * s->slope * w->cpqT[(size_t)p * BQ + (size_t)i];
        }
    float *dgate_q = bg_f32(io->g, BF_GATE_Q), *dprobe_q = bg_f32(io->g, BF_PROBE_Q);
    double *dcum = bg_f64(io->g, BF_CUM);
    for (int i = 0; i < nq; i++) {
        size_t f = io->row0 + (size_t)(t0 + i) * s->fs;
        if (dgate_q && s->gate_q) dgate_q[f] += w->dgq[i];
        if (dcum && s->form == BIAS_FORM_CUM) dcum[f] += w->dcq[i];
        if (dprobe_q && s->form == BIAS_FORM_PATH)
            for (int p = 0; p < s->P; p++)
                dprobe_q[f * (size_t)s->P + (size_t)p] += w->dpqT[(size_t)p * BQ + (size_t)i] / (float)s->P;
    }
}

// FlashAttention-2 backward for query rows [t0, t0+nq) of one (b,h), recomputing each tile's P from the lse:
// dq += scale dS k (this tile's rows, written directly), dv += Pᵀ dO and dk += dSᵀ q into the thread's key
// accumulators, factor grads through bias_backward. dq, dout, out: (T,D) rows with stride ld.
static void backward_qtile(const bwd_io *io, tws *w, const slice *s, int t0) {
    int nq = s->T - t0 < BQ ? s->T - t0 : BQ, D = s->D;
    qtile_setup(w, s, t0, nq);
    qtile_setup_backward(w, s, io->dout, io->out, io->lse, t0, nq);
    const float *dO = io->dout + (size_t)t0 * s->ld, *Q = s->q + (size_t)t0 * s->ld;
    for (int j0 = t0; j0 >= first_key_tile(s, t0); j0 -= BK) {
        int nk = j0 == t0 ? nq : BK;
        const float *K = s->k + (size_t)j0 * s->ld, *V = s->v + (size_t)j0 * s->ld;
        scores(w, s, t0, nq, j0, nk);
        memset(w->dPT, 0, (size_t)nk * BQ * sizeof(float));
        tile_mk(w->dPT, BQ, V, s->ld, 1, w->dOT, BQ, nk, BQ, D);
        softmax_backward(w, nk);
        bias_backward(w, s, w->dPT, j0, nk);
        tile_mk(w->AT, BQ, K, 1, s->ld, w->dPT, BQ, D, BQ, nk);
        tile_mk(w->dV + (size_t)j0 * D, (size_t)D, w->ST, BQ, 1, dO, s->ld, nk, D, nq);
        tile_mk(w->dK + (size_t)j0 * D, (size_t)D, w->dPT, BQ, 1, Q, s->ld, nk, D, nq);
    }
    for (int i = 0; i < nq; i++) {
        float *dq = io->dq + (size_t)(t0 + i) * s->ld;
        for (int d = 0; d < D; d++) dq[d] += s->scale * w->AT[(size_t)d * BQ + (size_t)i];
    }
    qtile_bias_grads(io, w, s, t0, nq);
}

// dk, dv and key-side factor grads of key rows [j_begin, j_end) += one thread's accumulators w.
static void flush_key_rows(float *dk, float *dv, const bwd_io *io, const tws *w, const slice *s, int j_begin,
                           int j_end) {
    int D = s->D, P = s->P;
    float *dgate_k = bg_f32(io->g, BF_GATE_K), *dprobe_k = bg_f32(io->g, BF_PROBE_K);
    double *dcum = bg_f64(io->g, BF_CUM);
    for (int j = j_begin; j < j_end; j++) {
        size_t f = io->row0 + (size_t)j * s->fs;
        for (int d = 0; d < D; d++) {
            dk[(size_t)j * s->ld + (size_t)d] += s->scale * w->dK[(size_t)j * D + (size_t)d];
            dv[(size_t)j * s->ld + (size_t)d] += w->dV[(size_t)j * D + (size_t)d];
        }
        if (dgate_k && s->gate_k) dgate_k[f] += w->dgk[j];
        if (dcum && s->form == BIAS_FORM_CUM) dcum[f] += w->dck[j];
        if (dprobe_k && s->form == BIAS_FORM_PATH)
            for (int p = 0; p < P; p++) dprobe_k[f * (size_t)P + (size_t)p] += w->dpk[(size_t)j * P + (size_t)p];
    }
}

// The same rows += the sum of every thread's accumulators, in thread-index order.
static void reduce_key_rows(float *dk, float *dv, const bwd_io *io, char *ws, size_t per, int nth, const slice *s,
                            int j_begin, int j_end) {
    for (int th = 0; th < nth; th++) {
        tws w = ws_bind(ws, per, th, s->T, (int)s->fs, s->D, s->P, 1);
        flush_key_rows(dk, dv, io, &w, s, j_begin, j_end);
    }
}

static void zero_key_accumulators(tws *w, int T, int D, int P) {
    memset(w->dK, 0, (size_t)T * (size_t)D * sizeof(float));
    memset(w->dV, 0, (size_t)T * (size_t)D * sizeof(float));
    memset(w->dpk, 0, (size_t)T * (size_t)(P > 0 ? P : 1) * sizeof(float));
    memset(w->dgk, 0, (size_t)T * sizeof(float));
    memset(w->dck, 0, (size_t)T * sizeof(double));
}

// Query tile of round r for thread tid of team: a boustrophedon deal (0..team-1, then team-1..0, ...) over the
// tiles in decreasing cost, which evens out the causal triangle as a dynamic schedule would, but fixes which
// thread sums which tile, and in which order, independently of timing. -1 past the last tile.
static int deal_tile(int r, int tid, int team, int nqt) {
    int u = r * team + (r & 1 ? team - 1 - tid : tid);
    return u < nqt ? nqt - 1 - u : -1;
}

// dslope[h] += the per-thread slope gradients, summed in double into thread 0's slot in thread order.
static void reduce_slope(float *dslope, char *ws, size_t per, int team, int T, int H, int D, int P) {
    double *sum = ws_bind(ws, per, 0, T, H, D, P, 1).dslope;
    for (int th = 1; th < team; th++) {
        const double *part = ws_bind(ws, per, th, T, H, D, P, 1).dslope;
        for (int h = 0; h < H; h++) sum[h] += part[h];
    }
    for (int h = 0; h < H; h++) dslope[h] += (float)sum[h];
}

// Whole slices per thread when they split evenly (or are many enough that the remainder costs <= 1/8 of a share).
static int slices_per_thread(int64_t nbh, int nt) { return nbh % nt == 0 || nbh >= 8 * (int64_t)nt; }

typedef struct {
    float *dq, *dk, *dv;
    grape_bias_grads *dbias;
    const float *dout, *out, *lse, *q, *k, *v;
    const grape_bias_factors *bias;
    float scale;
    int W, B, T, H, D, P;
} bwd_args;

static bwd_io slice_io(const bwd_args *a, slice *s, int bh) {
    int b = bh / a->H, h = bh % a->H;
    size_t off = ((size_t)b * a->T * a->H + (size_t)h) * a->D;
    slice_init(s, a->q, a->k, a->v, a->bias, a->scale, a->W, b, h, a->T, a->H, a->D);
    return (bwd_io){a->dq + off, a->dout + off, a->out + off, a->lse + (size_t)bh * a->T, a->dbias,
                    (size_t)b * a->T * a->H + (size_t)h};
}

// Thread tid of nt owns slices [nbh tid/nt, nbh (tid+1)/nt): every query tile, latest first, then a flush. No other
// thread touches those rows of dq, dk, dv, so there is no barrier, and a slice's bits do not depend on nt.
static void backward_own_slices(const bwd_args *a, tws *w, int tid, int nt) {
    int64_t nbh = (int64_t)a->B * a->H;
    int nqt = (a->T + BQ - 1) / BQ;
    for (int64_t bh = nbh * tid / nt; bh < nbh * (tid + 1) / nt; bh++) {
        slice s;
        bwd_io io = slice_io(a, &s, (int)bh);
        size_t off = (size_t)(io.dq - a->dq);
        zero_key_accumulators(w, a->T, a->D, a->P);
        for (int tile = nqt - 1; tile >= 0; tile--) backward_qtile(&io, w, &s, tile * BQ);
        flush_key_rows(a->dk + off, a->dv + off, &io, w, &s, 0, a->T);
    }
}

// Few slices: every thread takes part in each slice, its query tiles dealt by deal_tile, the key accumulators
// reduced over threads after the slice (two barriers per slice).
static void backward_deal_tiles(const bwd_args *a, tws *w, char *ws, size_t per, int tid, int nt) {
    int nqt = (a->T + BQ - 1) / BQ;
    for (int bh = 0; bh < a->B * a->H; bh++) {
        slice s;
        bwd_io io = slice_io(a, &s, bh);
        size_t off = (size_t)(io.dq - a->dq);
        // each thread clears only its own accumulators; the barrier ending the previous reduction protects them
        zero_key_accumulators(w, a->T, a->D, a->P);
        for (int r = 0; r * nt < nqt; r++) {
            int tile = deal_tile(r, tid, nt, nqt);
            if (tile >= 0) backward_qtile(&io, w, &s, tile * BQ);
        }
#pragma omp barrier
        reduce_key_rows(a->dk + off, a->dv + off, &io, ws, per, nt, &s, (int)((int64_t)a->T * tid / nt),
                        (int)((int64_t)a->T * (tid + 1) / nt));
#pragma omp barrier
    }
}

// dq, dk, dv, dout, out, q, k, v: (B,T,H,D); lse: (B,H,T); dbias shaped as bias. Accumulates (+=).
grape_status attn_backward_ws(float *dq, float *dk, float *dv, grape_bias_grads *dbias, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k, const float *v,
                              const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T, int H, int D,
                              void *ws_mem, size_t ws_bytes) {
    grape_status st = attn_check_dims("grape_attn_backward", B, T, H, D, opts);
    if (st || (st = attn_check_bias("grape_attn_backward", bias, B, T, H))) return st;
    if (dbias && (!bias || dbias->kind != bias->kind || dbias->B != B || dbias->T != T || dbias->H != H))
        return error_fail(GRAPE_ERR_ARG, "grape_attn_backward: dbias was not bound to these factors");
    if (!dq || !dk || !dv || !dout || !out || !lse || !q || !k || !v)
        return error_fail(GRAPE_ERR_ARG, "grape_attn_backward: NULL tensor");
    bwd_args a = {dq, dk, dv, dbias, dout, out, lse, q, k, v, bias, attn_scale(opts, D), attn_bca_window(opts, T),
                  B, T, H, D, bias_probe_dim(bias)};
    size_t per = ws_per_thread(T, H, D, a.P, 1);
    char *ws = ws_mem;
    int nth = ws_threads(ws_bytes, per, ws, "grape_attn_backward"), team = 1;
    if (!nth) return GRAPE_ERR_ARG;
#pragma omp parallel num_threads(nth)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        unsigned fpu = fpu_flush_denormals();
        tws w = ws_bind(ws, per, tid, T, H, D, a.P, 1);
        memset(w.dslope, 0, (size_t)H * sizeof(double)); // the caller's workspace carries the last call's sums
#pragma omp single
        team = nt;
        if (slices_per_thread((int64_t)B * H, nt)) backward_own_slices(&a, &w, tid, nt);
        else backward_deal_tiles(&a, &w, ws, per, tid, nt);
        fpu_restore(fpu);
    }
    if (bg_f32(dbias, BF_SLOPE) && bias && bias_kind_has(bias_kind_of(bias->kind), BF_SLOPE))
        reduce_slope(bg_f32(dbias, BF_SLOPE), ws, per, team, T, H, D, a.P);
    return GRAPE_OK;
}

grape_status grape_attn_backward(float *dq, float *dk, float *dv, grape_bias_grads *dbias, const float *dout,
                                 const float *out, const float *lse, const float *q, const float *k, const float *v,
                                 const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T, int H,
                                 int D) {
    size_t bytes;
    grape_status st;
    void *ws = one_shot_ws("grape_attn_backward", bias, opts, B, T, H, D, 1, &bytes, &st);
    if (ws) st = attn_backward_ws(dq, dk, dv, dbias, dout, out, lse, q, k, v, bias, opts, B, T, H, D, ws, bytes);
    mem_free(ws);
    return st;
}
