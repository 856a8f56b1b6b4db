// cayley.c — Cayley map onto SO(n), in double (GRAPE §3.1: keep B orthogonal by construction):
//   B = (I + A)^-1 (I − A) = 2M − I with M = (I + A)^-1, A skew (I + A is invertible: eigenvalues 1 ± iλ).
//   Backward: δB = −M δA (B + I) = −2 M δA M, so dA = −2 Mᵀ dB Mᵀ.
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "pe/rot_kernels.h"

// M = (I + A)^-1 by Gauss–Jordan with partial pivoting on the n×2n block [I + A | I].
static grape_status invert_i_plus(double *M, const double *A, int n, double *work) {
    size_t N = (size_t)n, W = 2 * N;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            work[i * W + j] = A[i * N + j] + (i == j);
            work[i * W + N + j] = (i == j);
        }
    for (size_t c = 0; c < N; c++) {
        size_t piv = c;
        for (size_t i = c + 1; i < N; i++)
            if (fabs(work[i * W + c]) > fabs(work[piv * W + c])) piv = i;
        if (!(fabs(work[piv * W + c]) > 1e-300)) return error_fail(GRAPE_ERR_NUMERIC, "Cayley: I + A singular");
        for (size_t j = 0; j < W && piv != c; j++) {
            double t = work[c * W + j];
            work[c * W + j] = work[piv * W + j];
            work[piv * W + j] = t;
        }
        double inv = 1.0 / work[c * W + c];
        for (size_t j = 0; j < W; j++) work[c * W + j] *= inv;
        for (size_t i = 0; i < N; i++) {
            double f = work[i * W + c];
            if (i == c || f == 0.0) continue;
            for (size_t j = 0; j < W; j++) work[i * W + j] -= f * work[c * W + j];
        }
    }
    for (size_t i = 0; i < N; i++) memcpy(M + i * N, work + i * W + N, N * sizeof(double));
    return GRAPE_OK;
}

grape_status cayley_forward_ws(double *B, double *M, const double *A, int n, double *work) {
    size_t N = (size_t)n;
    grape_status st = invert_i_plus(M, A, n, work);
    if (st) return st;
    for (size_t i = 0; i < N * N; i++) B[i] = 2.0 * M[i] - (i % (N + 1) == 0);
    return GRAPE_OK;
}

grape_status cayley_forward(double *B, double *M, const double *A, int n) {
    double *work = mem_alloc(2 * (size_t)n * (size_t)n * sizeof(double));
    if (!work) return GRAPE_ERR_NOMEM;
    grape_status st = cayley_forward_ws(B, M, A, n, work);
    mem_free(work);
    return st;
}

void cayley_backward(double *dA, const double *dB, const double *M, int n, double *work) {
    size_t N = (size_t)n;
    double *t = work;
    // t = Mᵀ dB, then dA −= 2 t Mᵀ
    memset(t, 0, N * N * sizeof(double));
    for (size_t k = 0; k < N; k++)
        for (size_t i = 0; i < N; i++) {
            double m = M[k * N + i];
            for (size_t j = 0; j < N; j++) t[i * N + j] += m * dB[k * N + j];
        }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
#pragma omp simd reduction(+ : s)
            for (size_t k = 0; k < N; k++) s += t[i * N + k] * M[j * N + k];
            dA[i * N + j] -= 2.0 * s;
        }
}

// Per set: dB = the frame gradient placed in B's first F columns (the other columns do not act), then the Cayley
// backward.
void cayley_frames_backward(double *dA, const double *dF, const double *M, int nset, int n, int F, double *work) {
    size_t N = (size_t)n, NN = N * N;
    double *dB = work;
    for (size_t s = 0; s < (size_t)nset; s++) {
        memset(dB, 0, NN * sizeof(double));
        memset(dA + s * NN, 0, NN * sizeof(double));
        for (size_t c = 0; c < (size_t)F; c++)
            for (size_t i = 0; i < N; i++) dB[i * N + c] = dF[(s * (size_t)F + c) * N + i];
        cayley_backward(dA + s * NN, dB, M + s * NN, n, dB + NN);
    }
}
