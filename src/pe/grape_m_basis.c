// grape_m_basis.c — GRAPE-M with a learned commuting basis (GRAPE, arXiv 2512.07805 §3.1):
//   G(n) = B R(nθ) Bᵀ on the rotary dims, B = Cayley(A) ∈ SO(R), A = S − Sᵀ, S strictly lower-triangular
//   (packed row-major, R(R−1)/2 params "basis_skew", init 0 ⇒ B = I: the encoding starts as grape-m = RoPE).
// Because q̃ᵀk̃ = (R_i Bᵀq)ᵀ(R_j Bᵀk), the outer B cancels in every logit; grape_basis_fold moves Bᵀ into the
// q/k projection weights so that, with cfg.basis_folded, the rotation is only R(nθ) (O(R) per token).
#include <string.h>

#include "core/error.h"
#include "core/gemm.h"
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

// Rows (token, head) of one call through B in one GEMM per set: out = in·B_s (trans 0: the rows of v = Bᵀx) or
// out = in·B_sᵀ + beta·out (trans 1: the rows of y = B u). in/out rows have strides ld_in/ld_out floats; a per-head
// set takes every H-th row.
grape_status basis_rows(float *out, size_t ld_out, const float *in, size_t ld_in, const rot_state *r, size_t ntok,
                        int trans, float beta) {
    size_t R = (size_t)r->R, H = (size_t)r->H, ns = (size_t)r->nset;
    int64_t M = (int64_t)(ns > 1 ? ntok : ntok * H), lda = (int64_t)(ns > 1 ? H * ld_in : ld_in);
    int64_t ldc = (int64_t)(ns > 1 ? H * ld_out : ld_out);
    grape_status st = GRAPE_OK;
    for (size_t s = 0; s < ns && !st; s++)
        st = gemm_ld(out + s * ld_out, ldc, in + s * ld_in, lda, r->fb + s * R * R, (int64_t)R, M, (int64_t)R,
                     (int64_t)R, 0, trans, 1.0f, beta);
    return st;
}

// y = B R(nθ) Bᵀ x for a whole call: V = X_R B, rotate V's rows by the table, Y_R = V Bᵀ. y == x allowed.
grape_status basis_forward(float *y, float *V, const float *x, const rot_table *tb, const rot_state *r, int B, int T) {
    size_t ntok = (size_t)B * (size_t)T, H = (size_t)r->H, D = (size_t)r->D, R = (size_t)r->R;
    grape_status st = basis_rows(V, R, x, D, r, ntok, 0, 0.0f);
#pragma omp parallel for schedule(static) if (ntok >= ROT_PAR_MIN_TOKENS)
    for (int64_t bt = 0; bt < (int64_t)ntok; bt++)
        for (size_t h = 0; h < H; h++) {
            size_t toff = (size_t)(bt % T) * tb->st + (tb->head_varies ? h * tb->sh : 0), row = (size_t)bt * H + h;
            rot_pairs_forward(V + row * R, V + row * R, tb->cs + toff, tb->sn + toff, r->npair, r->cfg.interleaved);
            if (y != x) memcpy(y + row * D + R, x + row * D + R, (D - R) * sizeof(float));
        }
    if (!st) st = basis_rows(y, D, V, R, r, ntok, 1, 0.0f);
    return st;
}

// One head of the backward, in place on its rows: v = Bᵀx becomes u = R(nθ) v and g = Bᵀdy becomes gv = R(nθ)ᵀ g
// (the GEMM operands of dx += B gv and dB = Σ dy uᵀ + x gvᵀ); dφ; the tail dims pass dy. scratch: R floats.
void basis_head_backward(float *dx, float *dphi, float *vrow, float *grow, const float *dy, const float *cs,
                         const float *sn, const rot_state *r, float *scratch) {
    memcpy(scratch, grow, (size_t)r->R * sizeof(float));
    memset(grow, 0, (size_t)r->R * sizeof(float));
    rot_pairs_backward(grow, dphi, scratch, vrow, cs, sn, r->npair, r->cfg.interleaved);
    rot_pairs_forward(vrow, vrow, cs, sn, r->npair, r->cfg.interleaved);
    for (int i = r->R; i < r->D; i++) dx[i] += dy[i];
}

// ---------------------------------------------------------------------------------------------------------
// Folding Bᵀ into a per-head projection W (H·D × C): W' = blockdiag(B_hᵀ) W on each head's rotary rows.

grape_status basis_fold_check(const grape_pe *pe, const void *a, const void *b, int C) {
    if (!pe || !a || !b) return error_fail(GRAPE_ERR_ARG, "grape_basis_fold: NULL argument");
    if (pe->rot->kind != GRAPE_ROT_GRAPE_M_BASIS)
        return error_fail(GRAPE_ERR_ARG, "grape_basis_fold: encoding is not grape-m-basis");
    if (C < 1) return error_fail(GRAPE_ERR_ARG, "grape_basis_fold: C must be >= 1, got %d", C);
    if (a == b) return error_fail(GRAPE_ERR_ARG, "grape_basis_fold: output must not alias the input");
    if (!pe->rot->prepared) return error_fail(GRAPE_ERR_ARG, "grape_basis_fold: call grape_pe_prepare first");
    return GRAPE_OK;
}

// w_folded, w: (H·D, C). Rotary rows of head h: W'_h = B_hᵀ W_h (one GEMM per head); rows R..D copied.
grape_status grape_basis_fold(float *w_folded, const float *w, const grape_pe *pe, int C) {
    grape_status st = basis_fold_check(pe, w_folded, w, C);
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

size_t basis_fold_work_bytes(const rot_state *r) {
    size_t RR = (size_t)r->R * (size_t)r->R, ns = (size_t)r->nset;
    return ns * RR * sizeof(float) + (ns * RR + ROT_CHAIN_WORK(ns, r->R)) * sizeof(double);
}

// dw += blockdiag(B_h) dw_folded; dparams(basis_skew) += Cayley chain of dB_h = W_h dW'_hᵀ, computed as its
// transpose dFᵀ = dW'_h W_hᵀ (the row layout cayley_frames_backward reads), summed over heads that share B.
// work: basis_fold_work_bytes(r), double-aligned: dF | dA | Cayley scratch (doubles), then dF in float.
grape_status basis_fold_backward(float *dw, float *dparams, const float *dw_folded, const float *w, const rot_state *r,
                                 int C, void *work) {
    size_t R = (size_t)r->R, D = (size_t)r->D, Cs = (size_t)C, RR = R * R, ns = (size_t)r->nset;
    double *dF = work;
    float *dFf = (float *)(dF + ns * RR + ROT_CHAIN_WORK(ns, r->R));
    grape_status st = GRAPE_OK;
    for (size_t h = 0; h < (size_t)r->H && !st; h++) {
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
    for (size_t i = 0; !st && i < ns * RR; i++) dF[i] = dFf[i];
    if (!st) {
        double *dA = dF + ns * RR;
        cayley_frames_backward(dA, dF, r->tab.cay_m, r->nset, r->R, r->R, dA + ns * RR);
        float *dskew = dparams + ns * r->n_freq;
        for (size_t s = 0; s < ns; s++) basis_skew_backward(dskew + s * r->n_skew, dA + s * RR, r->R);
    }
    return st;
}
