// rotation.c — the multiplicative action's token loops: grape_rot_forward/backward for every rotation kind
// (GRAPE §3.1–3.2, arXiv 2512.07805), the per-call validation and the workspace they carve their table and scratch
// from. Per (token, head) it calls the kind's head kernel (the shared pair kernels, grape_m_nc.c's frame, or
// grape_m_basis.c's GEMM rows); angles come from rot_table.c, parameters and tables from rot_config.c. The folded
// basis's backward (grape_basis_fold_backward) runs here too, on the same workspace.
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "pe/pe_internal.h"
#include "pe/rot_internal.h"

// ---------------------------------------------------------------------------------------------------------
// Per-call checks and the shape of the action

static grape_status check_call(const grape_pe *pe, const grape_positions *pos, grape_side side, const void *a,
                               const void *b, int B, int T) {
    if (!pe || !a || !b || !pos) return error_fail(GRAPE_ERR_ARG, "rotation: NULL argument");
    if (B < 0 || T < 0) return error_fail(GRAPE_ERR_ARG, "rotation: negative shape B=%d T=%d", B, T);
    if (!pe->rot->prepared) return error_fail(GRAPE_ERR_ARG, "rotation: call grape_pe_prepare first");
    if (pe->rot->kd->phase && !pos->phase)
        return error_fail(GRAPE_ERR_ARG, "%s: positions need a phase (grape_phase_forward)", pe->rot->kd->info.name);
    return pe->rot->kd->decay && T > 0 ? xpos_check_range(pe->rot, pos, side, T) : GRAPE_OK;
}

// True when the action is a plain pair rotation of the head's coordinates (no frame to apply).
static int coordinate_planes(const rot_state *r) {
    return r->kd->frame == ROT_FRAME_NONE || (r->kd->frame == ROT_FRAME_BASIS && r->cfg.basis_folded);
}

// ---------------------------------------------------------------------------------------------------------
// Workspace. A call carves its table and scratch from one block, planned with grape_arena (a NULL base only sizes
// it). The block lives in rot_state, sized by grape_pe_reserve; a call that does not fit grows it (one allocation,
// kept), so repeated calls of one shape allocate nothing. One call holds it at a time: a call that finds it held
// (another thread on the same encoding) allocates a private block for its duration.

// The unfolded basis is dense in the rotary dims: it runs through GEMMs over all rows (grape_m_basis.c).
static int basis_unfolded(const rot_state *r) { return r->kd->frame == ROT_FRAME_BASIS && !r->cfg.basis_folded; }

static int frame_grads(const rot_state *r, const float *dparams) {
    return dparams && r->n_skew && !r->cfg.basis_folded;
}

// Tokens per block of the backward's token loop. grape-m-nc keeps the frame-gradient coefficients of a block's
// token-heads and turns them into dEᵀ at its end: register tiles summed over the block's rows, then added into
// double (so a float sum runs over at most TOKEN_BLOCK·H rows however long the call).
#define TOKEN_BLOCK 16

// n elements of elem bytes from a; *ov flags a size that overflows.
static void *take(grape_arena *a, int *ov, size_t n, size_t elem) {
    size_t bytes;
    if (!size_mul(&bytes, n, elem) || bytes > SIZE_MAX / 16) *ov = 1;
    return *ov ? NULL : arena_take(a, bytes);
}

typedef struct {
    rot_table tb;
    float *scratch; // (threads, ROT_SCRATCH(R)) frame heads
    float *V;       // (B·T·H, R) unfolded basis rows, else NULL
} fwd_work;

static void fwd_plan(fwd_work *w, grape_arena *a, int *ov, const rot_state *r, int B, int T, int nt) {
    rot_table_plan(&w->tb, a, ov, r, B, T);
    w->scratch = take(a, ov, (size_t)nt, ROT_SCRATCH(r->R) * sizeof(float));
    w->V = basis_unfolded(r) ? take(a, ov, (size_t)B * (size_t)T * (size_t)r->H, (size_t)r->R * sizeof(float)) : NULL;
}

typedef struct {
    rot_table tb;
    size_t n_acc;   // doubles per thread: dθ (nset·npair)
    size_t n_float; // floats per thread: dφ (npair), Σ_h dφ (nset·npair), frame scratch
    size_t n_frame; // frame-gradient entries per thread: nset·frame·R when frame gradients are wanted, else 0
    size_t n_coef;  // grape-m-nc: floats per thread of a token block's frame-gradient coefficients, else 0
    double *acc;    // (threads, n_acc)
    float *ws;      // (threads, n_float)
    float *coef;    // (threads, TOKEN_BLOCK·H, 2·fpad) grape-m-nc: [u − v | gv − g] of the block's token-heads
    double *dF;     // (threads, n_frame) grape-m-nc: sums over the blocks; (n_frame) unfolded basis: GEMM result
    float *fu, *fg; // unfolded basis: (B·T·H, R) rows v = Bᵀx → u and g = Bᵀdy → gv that dx and dB are GEMMs of
    float *c;       // unfolded basis: (R, R) float GEMM output
    double *chain;  // ROT_CHAIN_WORK(R) doubles for the Cayley chain
} bwd_work;

static void bwd_plan(bwd_work *w, grape_arena *a, int *ov, const rot_state *r, int want_frame, int B, int T,
                     int nt) {
    size_t rows = (size_t)B * (size_t)T * (size_t)r->H, fr = (size_t)r->frame * (size_t)r->R, n = (size_t)nt;
    int basis = basis_unfolded(r);
    rot_table_plan(&w->tb, a, ov, r, B, T);
    w->n_acc = (size_t)r->nset * (size_t)r->npair;
    w->n_float = (size_t)r->npair * (1 + (size_t)r->nset) + ROT_SCRATCH(r->R);
    w->n_frame = want_frame ? (size_t)r->nset * fr : 0;
    w->n_coef = want_frame && !basis ? (size_t)TOKEN_BLOCK * (size_t)r->H * 2 * (size_t)r->fpad : 0;
    w->acc = take(a, ov, n * w->n_acc, sizeof(double));
    w->ws = take(a, ov, n * w->n_float, sizeof(float));
    w->coef = w->n_coef ? take(a, ov, n * w->n_coef, sizeof(float)) : NULL;
    w->dF = want_frame ? take(a, ov, (basis ? 1 : n) * w->n_frame, sizeof(double)) : NULL;
    w->fu = basis ? take(a, ov, rows, (size_t)r->R * sizeof(float)) : NULL;
    w->fg = basis ? take(a, ov, rows, (size_t)r->R * sizeof(float)) : NULL;
    w->c = want_frame && basis ? take(a, ov, fr, sizeof(float)) : NULL;
    w->chain = want_frame ? take(a, ov, ROT_CHAIN_WORK(r->nset, r->R), sizeof(double)) : NULL;
}

// Bytes of the workspace of forward and backward calls (with frame gradients) of B × T tokens on nt threads.
static size_t reserve_bytes(const rot_state *r, int B, int T, int nt, int *ov) {
    fwd_work fw;
    bwd_work bw;
    grape_arena af = {0}, ab = {0};
    fwd_plan(&fw, &af, ov, r, B, T, nt);
    bwd_plan(&bw, &ab, ov, r, r->n_skew > 0, B, T, nt);
    size_t bytes = af.used > ab.used ? af.used : ab.used, fold = basis_fold_work_bytes(r);
    return r->kind == GRAPE_ROT_GRAPE_M_BASIS && fold > bytes ? fold : bytes;
}

// A block of `bytes` for a call of B × T tokens: the encoding's when free (grown to reserve B × T when too small,
// so the other direction of the same shape fits too), else a private one of `bytes` (*own = 0).
static void *work_acquire(rot_state *r, size_t bytes, int B, int T, int nt, int *own) {
    rot_workspace *ws = &r->work;
    *own = !atomic_flag_test_and_set_explicit(&ws->busy, memory_order_acquire);
    if (*own && bytes <= ws->bytes) return ws->mem;
    int ov = 0;
    size_t keep = *own ? reserve_bytes(r, B, T, nt, &ov) : bytes;
    if (ov || keep < bytes) keep = bytes;
    atomic_fetch_add_explicit(&ws->allocs, 1, memory_order_relaxed);
    void *mem = mem_alloc(keep);
    if (!*own) return mem;
    if (!mem) {
        atomic_flag_clear_explicit(&ws->busy, memory_order_release);
        return NULL;
    }
    mem_free(ws->mem);
    ws->mem = mem, ws->bytes = keep;
    return mem;
}

static void work_release(rot_state *r, void *mem, int own) {
    if (own) atomic_flag_clear_explicit(&r->work.busy, memory_order_release);
    else mem_free(mem);
}

static grape_status plan_overflow(int B, int T) {
    return error_fail(GRAPE_ERR_NOMEM, "rotation workspace size overflows (B=%d T=%d)", B, T);
}

grape_status rot_reserve(rot_state *r, int max_B, int max_T) {
    if (!r->kd->turns) return GRAPE_OK;
    int nt = omp_get_max_threads(), ov = 0, own;
    size_t bytes = reserve_bytes(r, max_B, max_T, nt, &ov);
    if (ov) return plan_overflow(max_B, max_T);
    void *mem = work_acquire(r, bytes, max_B, max_T, nt, &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    if (!own) {
        mem_free(mem);
        return error_fail(GRAPE_ERR_ARG, "grape_pe_reserve: a rotation call on this encoding is running");
    }
    work_release(r, mem, own);
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Forward: y = G(n) x for every (b, t, h); threads over tokens.

static void head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                         float *scratch) {
    if (coordinate_planes(r)) {
        rot_pairs_forward(y, x, cs, sn, r->npair, r->cfg.interleaved);
        if (y != x) memcpy(y + r->R, x + r->R, (size_t)(r->D - r->R) * sizeof(float));
    } else
        nc_head_forward(y, x, cs, sn, r, set, scratch);
}

static void forward_tokens(float *y, const float *x, const fwd_work *w, const rot_state *r, int B, int T) {
    int ctx = r->kd->phase;
    const rot_table *tb = &w->tb;
#pragma omp parallel for schedule(static) if ((int64_t)B * T >= ROT_PAR_MIN_TOKENS)
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++) {
        float *ws = w->scratch + (size_t)omp_get_thread_num() * ROT_SCRATCH(r->R);
        size_t row = (ctx ? (size_t)bt : (size_t)(bt % T)) * tb->st;
        for (int h = 0; h < r->H; h++) {
            size_t off = ((size_t)bt * (size_t)r->H + (size_t)h) * (size_t)r->D;
            size_t toff = row + (tb->head_varies ? (size_t)h * tb->sh : 0);
            head_forward(y + off, x + off, tb->cs + toff, tb->sn + toff, r, r->nset > 1 ? h : 0, ws);
        }
    }
}

grape_status grape_rot_forward(float *y, const float *x, const grape_pe *pe, const grape_positions *pos,
                               grape_side side, int B, int T) {
    grape_status st = check_call(pe, pos, side, y, x, B, T);
    if (st) return st;
    const rot_state *r = pe->rot;
    size_t n = (size_t)B * (size_t)T * (size_t)r->H * (size_t)r->D;
    if (!r->kd->turns) {
        if (y != x) memmove(y, x, n * sizeof(float));
        return GRAPE_OK;
    }
    if (!n) return GRAPE_OK;
    int nt = omp_get_max_threads(), ov = 0, own;
    fwd_work w;
    grape_arena a = {0};
    fwd_plan(&w, &a, &ov, r, B, T, nt);
    if (ov) return plan_overflow(B, T);
    void *mem = work_acquire(pe->rot, a.used, B, T, nt, &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    a = (grape_arena){mem, a.used, 0};
    fwd_plan(&w, &a, &ov, r, B, T, nt);
    rot_table_fill(&w.tb, r, pos, side, B, T);
    if (basis_unfolded(r)) st = basis_forward(y, w.V, x, &w.tb, r, B, T);
    else forward_tokens(y, x, &w, r, B, T);
    work_release(pe->rot, mem, own);
    return st;
}

// ---------------------------------------------------------------------------------------------------------
// Backward: dx += G(n)ᵀ dy; dφ per pair chains into dθ (Σ n·dφ, or Σ Φ·dφ) and dΦ (Σ θ·dφ); frames chain
// their dF into the skew parameters through the Cayley backward: grape-m-nc sums dEᵀ per thread as it goes, the
// unfolded basis forms dBᵀ with two GEMMs over its rows.

// coef: the head's frame-gradient coefficients (grape-m-nc) or NULL; frow: the head's row in the basis buffers.
static void head_backward(float *dx, float *dphi, float *coef, const bwd_work *w, size_t frow, const float *dy,
                          const float *x, const float *cs, const float *sn, const rot_state *r, int set, float *ws) {
    if (coordinate_planes(r)) {
        rot_pairs_backward(dx, dphi, dy, x, cs, sn, r->npair, r->cfg.interleaved);
        for (int i = r->R; i < r->D; i++) dx[i] += dy[i];
    } else if (basis_unfolded(r))
        basis_head_backward(dx, dphi, w->fu + frow, w->fg + frow, dy, cs, sn, r, ws);
    else
        nc_head_backward(dx, dphi, coef, dy, x, cs, sn, r, set, ws);
}

// dBᵀ (nset, R, R) = Σ_rows U_rowᵀ dy_row + G_rowᵀ x_row over the (token, head) rows of each set: two GEMMs per set
// (K = tokens·heads sharing it).
static grape_status frame_grad_gemm(double *dF, float *c, const bwd_work *w, const float *dy, const float *x,
                                    const rot_state *r, size_t ntok) {
    size_t F = (size_t)r->frame, R = (size_t)r->R, H = (size_t)r->H, D = (size_t)r->D;
    grape_status st = GRAPE_OK;
    int shared = r->nset == 1;
    int64_t K = (int64_t)(shared ? ntok * H : ntok), ldu = (int64_t)(shared ? F : H * F), ldx = (int64_t)(shared ? D : H * D);
    for (size_t s = 0; s < (size_t)r->nset && !st; s++) {
        st = gemm_ld(c, (int64_t)R, w->fu + s * F, ldu, dy + s * D, ldx, (int64_t)F, (int64_t)R, K, 1, 0, 1.0f, 0.0f);
        if (!st) st = gemm_ld(c, (int64_t)R, w->fg + s * F, ldu, x + s * D, ldx, (int64_t)F, (int64_t)R, K, 1, 0, 1.0f, 1.0f);
        for (size_t i = 0; i < F * R; i++) dF[s * F * R + i] = c[i];
    }
    return st;
}

// dθ_p += m·dφ_p with m the token's position or phase.
static inline void accumulate_dtheta(double *acc, const float *dphi, double m, size_t np) {
#pragma omp simd
    for (size_t p = 0; p < np; p++) acc[p] += m * dphi[p];
}

// dΦ = Σ_p θ_p·dφ_p (grape-m-ctx: the angle is Φ·θ).
static inline double dot_theta(const double *theta, const float *dphi, size_t np) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t p = 0; p < np; p++) s += theta[p] * dphi[p];
    return s;
}

// One token (b, t), every head. dφ of heads sharing a set and a multiplier is summed first, so dθ += m·Σ_h dφ and
// (grape-m-ctx) dΦ += θ·Σ_h dφ run once per token (per head only for per-head phases). ws: dφ (npair) | Σ dφ
// (nset·npair) | frame scratch; coef: the token's (H, 2·fpad) frame-gradient coefficients (grape-m-nc) or NULL.
static void token_backward(float *dx, double *dphase, double *acc, float *ws, float *coef, const bwd_work *w,
                           const float *dy, const float *x, const rot_state *r, const grape_positions *pos,
                           int want_dtheta, int b, int t, int T) {
    const rot_table *tb = &w->tb;
    size_t np = (size_t)r->npair, bt = (size_t)b * (size_t)T + (size_t)t, ns = (size_t)r->nset;
    int ctx = r->kd->phase, head_mult = r->phase_heads > 1, want_dphase = ctx && dphase;
    int sum = !head_mult && (want_dtheta || want_dphase);
    float *dphi = ws, *tok = ws + np, *scratch = tok + ns * np;
    size_t row = (ctx ? bt : (size_t)t) * tb->st;
    if (sum) memset(tok, 0, ns * np * sizeof(float));
    for (int h = 0; h < r->H; h++) {
        size_t set = ns > 1 ? (size_t)h : 0, off = (bt * (size_t)r->H + (size_t)h) * (size_t)r->D;
        size_t toff = row + (tb->head_varies ? (size_t)h * tb->sh : 0);
        size_t frow = (bt * (size_t)r->H + (size_t)h) * (size_t)r->frame;
        head_backward(dx + off, dphi, coef ? coef + (size_t)h * 2 * (size_t)r->fpad : NULL, w, frow, dy + off, x + off,
                      tb->cs + toff, tb->sn + toff, r, (int)set, scratch);
        if (sum) {
#pragma omp simd
            for (size_t p = 0; p < np; p++) tok[set * np + p] += dphi[p];
            continue;
        }
        if (want_dphase) dphase[bt * (size_t)r->phase_heads + (size_t)h] += dot_theta(r->tab.theta, dphi, np);
        if (want_dtheta) accumulate_dtheta(acc, dphi, rot_token_mult(r, pos, b, t, h, T), np);
    }
    if (!sum) return;
    if (want_dphase) dphase[bt] += dot_theta(r->tab.theta, tok, np); // grape-m-ctx has one set
    if (!want_dtheta) return;
    double m = rot_token_mult(r, pos, b, t, 0, T);
    for (size_t s = 0; s < ns; s++) accumulate_dtheta(acc + s * np, tok + s * np, m, np);
}

static void backward_tokens(float *dx, double *dphase, const bwd_work *w, const float *dy, const float *x,
                            const rot_state *r, const grape_positions *pos, int want_dtheta, int B, int T) {
    int64_t ntok = (int64_t)B * T, nblk = (ntok + TOKEN_BLOCK - 1) / TOKEN_BLOCK;
    size_t ltok = (size_t)r->H * 2 * (size_t)r->fpad;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
        size_t tid = (size_t)omp_get_thread_num();
        float *coef = w->coef ? w->coef + tid * w->n_coef : NULL;
        int64_t bt0 = blk * TOKEN_BLOCK, end = bt0 + TOKEN_BLOCK < ntok ? bt0 + TOKEN_BLOCK : ntok;
        for (int64_t bt = bt0; bt < end; bt++)
            token_backward(dx, dphase, w->acc + tid * w->n_acc, w->ws + tid * w->n_float,
                           coef ? coef + (size_t)(bt - bt0) * ltok : NULL, w, dy, x, r, pos, want_dtheta,
                           (int)(bt / T), (int)(bt % T), T);
        if (coef) nc_frame_grad_tokens(w->dF + tid * w->n_frame, coef, dy, x, r, bt0, (int)(end - bt0));
    }
}

// Sum the per-thread accumulators (dθ; grape-m-nc's dF) into thread 0's slot.
static void bwd_reduce(bwd_work *w, int nt) {
    for (size_t k = 1; k < (size_t)nt; k++) {
        for (size_t i = 0; i < w->n_acc; i++) w->acc[i] += w->acc[k * w->n_acc + i];
        for (size_t i = 0; w->coef && i < w->n_frame; i++) w->dF[i] += w->dF[k * w->n_frame + i];
    }
}

static grape_status chain_params(float *dparams, const rot_state *r, const bwd_work *w, const float *dy,
                                 const float *x, size_t ntok) {
    if (!dparams || !r->n_params) return GRAPE_OK;
    rot_log_freq_backward(r, dparams, w->acc);
    if (!w->dF) return GRAPE_OK;
    grape_status st = basis_unfolded(r) ? frame_grad_gemm(w->dF, w->c, w, dy, x, r, ntok) : GRAPE_OK;
    if (!st) rot_frame_chain(dparams + (size_t)r->nset * r->n_freq, w->dF, r, w->chain);
    return st;
}

// The sums the token loop adds into start at 0 (a reused workspace holds the last call's values).
static void bwd_zero(bwd_work *w, int nt) {
    memset(w->acc, 0, (size_t)nt * w->n_acc * sizeof(double));
    if (w->coef) memset(w->dF, 0, (size_t)nt * w->n_frame * sizeof(double));
}

grape_status grape_rot_backward(float *dx, float *dparams, double *dphase, const float *dy, const float *x,
                                const grape_pe *pe, const grape_positions *pos, grape_side side, int B, int T) {
    grape_status st = check_call(pe, pos, side, dx, dy, B, T);
    if (st) return st;
    const rot_state *r = pe->rot;
    if (!x && r->kd->turns) return error_fail(GRAPE_ERR_ARG, "grape_rot_backward: x is NULL");
    size_t ntok = (size_t)B * (size_t)T, R = (size_t)r->R, D = (size_t)r->D;
    if (!r->kd->turns) {
        size_t n = ntok * (size_t)r->H * D;
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return GRAPE_OK;
    }
    if (!ntok) return GRAPE_OK;
    int nt = omp_get_max_threads(), ov = 0, own;
    bwd_work w;
    grape_arena a = {0};
    bwd_plan(&w, &a, &ov, r, frame_grads(r, dparams), B, T, nt);
    if (ov) return plan_overflow(B, T);
    void *mem = work_acquire(pe->rot, a.used, B, T, nt, &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    a = (grape_arena){mem, a.used, 0};
    bwd_plan(&w, &a, &ov, r, frame_grads(r, dparams), B, T, nt);
    bwd_zero(&w, nt);
    rot_table_fill(&w.tb, r, pos, side, B, T);
    if (basis_unfolded(r) && !(st = basis_rows(w.fu, R, x, D, r, ntok, 0, 0.0f))) // rows v = Bᵀx, g = Bᵀdy
        st = basis_rows(w.fg, R, dy, D, r, ntok, 0, 0.0f);
    backward_tokens(dx, dphase, &w, dy, x, r, pos, dparams && r->n_freq, B, T);
    bwd_reduce(&w, nt);
    if (!st && basis_unfolded(r)) st = basis_rows(dx, D, w.fg, R, r, ntok, 1, 1.0f); // dx_R += B gv
    if (!st) st = chain_params(dparams, r, &w, dy, x, ntok);
    work_release(pe->rot, mem, own);
    return st;
}

// ---------------------------------------------------------------------------------------------------------
// grape-m-basis folded into the projections: the fold's backward runs on the same reserved block, so a training
// step with basis_folded allocates nothing either (tests/test_alloc.c).

grape_status grape_basis_fold_backward(float *dw, float *dparams, const float *dw_folded, const float *w,
                                       const grape_pe *pe, int C) {
    grape_status st = basis_fold_check(pe, dw, dw_folded, C);
    if (st) return st;
    if (!w || !dparams) return error_fail(GRAPE_ERR_ARG, "grape_basis_fold_backward: NULL argument");
    int own;
    void *mem = work_acquire(pe->rot, basis_fold_work_bytes(pe->rot), 1, 1, omp_get_max_threads(), &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    st = basis_fold_backward(dw, dparams, dw_folded, w, pe->rot, C, mem);
    work_release(pe->rot, mem, own);
    return st;
}
