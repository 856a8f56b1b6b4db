// grape_m_basis.c — GRAPE-M with a learned commuting basis (GRAPE §3.1, grape_paper.md §1.1):
//   G(n) = B R(nθ) Bᵀ on the rotary dims, B = Cayley(A) ∈ SO(R), A = S − Sᵀ, S strictly lower-triangular
//   (packed row-major, R(R−1)/2 params "basis_skew", init 0 ⇒ B = I: the encoding starts as grape-m = RoPE).
// Because q̃ᵀk̃ = (R_i Bᵀq)ᵀ(R_j Bᵀk), the outer B cancels in every logit; grape_basis_fold moves Bᵀ into the
// q/k projection weights so that, with cfg.basis_folded, the rotation is only R(nθ) (O(R) per token).
#include <string.h>

#include "core/error.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "pe/pe_internal.h"
#include "pe/rot_internal.h"

void basis_skew_to_A(double *A, const double *skew, int R) {
    size_t N = (size_t)R, k = 0;
    memset(A, 0, N * N * sizeof(double));
    for (size_t i = 1; i < N; i++)
        for (size_t j = 0; j < i; j++, k++) {
            A[i * N + j] = skew[k];
            A[j * N + i] = -skew[k];
        }
}

void basis_skew_backward(float *dskew, const double *dA, int R) {
    size_t N = (size_t)R, k = 0;
    for (size_t i = 1; i < N; i++)
        for (size_t j = 0; j < i; j++, k++) dskew[k] += (float)(dA[i * N + j] - dA[j * N + i]);
}

// acc[0..n) += a · row[0..n)
static inline void axpy(float *acc, float a, const float *row, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) acc[i] += a * row[i];
}

// v = Bᵀ x = Σ_i x_i B[i,:] (rows of B); y = B u = Σ_j u_j Bᵀ[j,:] (rows of Bᵀ).
static void frame_apply(float *out, const float *coef, const float *rows, int R) {
    memset(out, 0, (size_t)R * sizeof(float));
    rot_rows_axpy(out, coef, rows, R, R);
}

// y: (D), x: (D); scratch: ROT_SCRATCH(R) floats.
void basis_head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                        float *scratch) {
    int R = r->R;
    size_t RR = (size_t)R * (size_t)R;
    frame_apply(scratch, x, r->fb + (size_t)set * RR, R);
    rot_pairs_forward(scratch, scratch, cs, sn, r->npair, r->cfg.interleaved);
    if (y != x) memcpy(y + R, x + R, (size_t)(r->D - R) * sizeof(float));
    frame_apply(y, scratch, r->ft + (size_t)set * RR, R);
}

// v = Bᵀx, u = R v, g = Bᵀ dy, gv = Rᵀ g:  dx += B gv,  dB = dy uᵀ + x gvᵀ (rows u, gv for the GEMM).
// dx, dy, x: (D); urow, grow: (R) or NULL; scratch: ROT_SCRATCH(R) floats.
void basis_head_backward(float *dx, float *dphi, float *urow, float *grow, const float *dy, const float *x,
                         const float *cs, const float *sn, const rot_state *r, int set, float *scratch) {
    int R = r->R;
    size_t RR = (size_t)R * (size_t)R;
    float *v = scratch, *u = scratch + R, *g = scratch + 2 * R, *gv = scratch + 3 * R;
    frame_apply(v, x, r->fb + (size_t)set * RR, R);
    frame_apply(g, dy, r->fb + (size_t)set * RR, R);
    memset(gv, 0, (size_t)R * sizeof(float));
    rot_pairs_backward(gv, dphi, g, v, cs, sn, r->npair, r->cfg.interleaved);
    rot_rows_axpy(dx, gv, r->ft + (size_t)set * RR, R, R);
    for (int i = R; i < r->D; i++) dx[i] += dy[i];
    if (!urow) return;
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    memcpy(urow, u, (size_t)R * sizeof(float));
    memcpy(grow, gv, (size_t)R * sizeof(float));
}

// dF: (nset, frame, R) rows of dFᵀ, i.e. dF[c][i] = ∂loss/∂F_ic for the first `frame` columns of B.
grape_status frame_chain_skew(float *dskew, const double *dF, const rot_state *r) {
    size_t N = (size_t)r->R, F = (size_t)r->frame;
    double *dB = grape_alloc(2 * N * N * sizeof(double));
    if (!dB) return GRAPE_ERR_NOMEM;
    double *dA = dB + N * N;
    grape_status st = GRAPE_OK;
    for (size_t s = 0; s < (size_t)r->nset && !st; s++) {
        memset(dB, 0, 2 * N * N * sizeof(double));
        for (size_t c = 0; c < F; c++)
            for (size_t i = 0; i < N; i++) dB[i * N + c] = dF[(s * F + c) * N + i];
        if ((st = cayley_backward(dA, dB, r->tab.cay_m + s * N * N, r->R))) break;
        if (r->kind == GRAPE_ROT_GRAPE_M_BASIS) basis_skew_backward(dskew + s * r->n_skew, dA, r->R);
        else nc_skew_backward(dskew + s * r->n_skew, dA, r->R, r->frame, r->cfg.interleaved);
    }
    grape_free(dB);
    return st;
}

// ---------------------------------------------------------------------------------------------------------
// Folding Bᵀ into a per-head projection W (H·D × C): W' = blockdiag(B_hᵀ) W on each head's rotary rows.

static grape_status check_fold(const grape_pe *pe, const void *a, const void *b, int C) {
    if (!pe || !a || !b) return grape_fail(GRAPE_ERR_ARG, "grape_basis_fold: NULL argument");
    if (pe->rot->kind != GRAPE_ROT_GRAPE_M_BASIS)
        return grape_fail(GRAPE_ERR_ARG, "grape_basis_fold: encoding is not grape-m-basis");
    if (C < 1) return grape_fail(GRAPE_ERR_ARG, "grape_basis_fold: C must be >= 1, got %d", C);
    if (a == b) return grape_fail(GRAPE_ERR_ARG, "grape_basis_fold: output must not alias the input");
    if (!pe->rot->prepared) return grape_fail(GRAPE_ERR_ARG, "grape_basis_fold: call grape_pe_prepare first");
    return GRAPE_OK;
}

// w_folded, w: (H·D, C). Rotary rows of head h: W'_h = B_hᵀ W_h (one GEMM per head); rows R..D copied.
grape_status grape_basis_fold(float *w_folded, const float *w, const grape_pe *pe, int C) {
    grape_status st = check_fold(pe, w_folded, w, C);
    if (st) return st;
    const rot_state *r = pe->rot;
    size_t R = (size_t)r->R, D = (size_t)r->D, Cs = (size_t)C;
    for (size_t h = 0; h < (size_t)r->H && !st; h++) {
        const float *Bf = r->fb + (r->nset > 1 ? h : 0) * R * R;
        float *out = w_folded + h * D * Cs;
        const float *wh = w + h * D * Cs;
        st = gemm_ld(out, (int64_t)Cs, Bf, (int64_t)R, wh, (int64_t)Cs, (int64_t)R, (int64_t)Cs, (int64_t)R, 1, 0,
                     1.0f, 0.0f);
        memcpy(out + R * Cs, wh + R * Cs, (D - R) * Cs * sizeof(float));
    }
    return st;
}

// dw += blockdiag(B_h) dw_folded; dparams(basis_skew) += Cayley chain of dB_h = W_h dW'_hᵀ, computed as its
// transpose dFᵀ = dW'_h W_hᵀ (the row layout frame_chain_skew reads), summed over heads that share B.
grape_status grape_basis_fold_backward(float *dw, float *dparams, const float *dw_folded, const float *w,
                                       const grape_pe *pe, int C) {
    grape_status st = check_fold(pe, dw, dw_folded, C);
    if (st) return st;
    if (!w || !dparams) return grape_fail(GRAPE_ERR_ARG, "grape_basis_fold_backward: NULL argument");
    const rot_state *r = pe->rot;
    size_t R = (size_t)r->R, D = (size_t)r->D, Cs = (size_t)C, RR = R * R, ns = (size_t)r->nset;
    float *dFf = grape_alloc(ns * RR * sizeof(float));
    double *dF = grape_alloc(ns * RR * sizeof(double));
    for (size_t h = 0; h < (size_t)r->H && dFf && dF && !st; h++) {
        size_t set = ns > 1 ? h : 0;
        const float *wh = w + h * D * Cs, *gh = dw_folded + h * D * Cs;
        float *dwh = dw + h * D * Cs;
        st = gemm_ld(dwh, (int64_t)Cs, r->fb + set * RR, (int64_t)R, gh, (int64_t)Cs, (int64_t)R, (int64_t)Cs,
                     (int64_t)R, 0, 0, 1.0f, 1.0f);
        if (!st)
            st = gemm_ld(dFf + set * RR, (int64_t)R, gh, (int64_t)Cs, wh, (int64_t)Cs, (int64_t)R, (int64_t)R,
                         (int64_t)Cs, 0, 1, 1.0f, (ns > 1 || h > 0) ? 1.0f : 0.0f);
        for (size_t i = R; i < D; i++) axpy(dwh + i * Cs, 1.0f, gh + i * Cs, C);
    }
    if (!dFf || !dF) st = GRAPE_ERR_NOMEM;
    for (size_t i = 0; !st && i < ns * RR; i++) dF[i] = dFf[i];
    if (!st) st = frame_chain_skew(dparams + ns * r->n_freq, dF, r);
    grape_free(dFf);
    grape_free(dF);
    return st;
}
