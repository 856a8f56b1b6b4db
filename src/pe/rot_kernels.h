// rot_kernels.h — the shared kernels every rotation kind is built from (rot_kernels.c, cayley.c). They know
// nothing of kinds or of rot_state: kinds (rope.c … grape_m_nc.c) call them, the dispatcher (rotation.c,
// rot_config.c, rot_table.c) calls kinds and them, and nothing here calls back up.
//
// A pair rotation R(φ) turns pairs (i, i+P) half-split or (2i, 2i+1) interleaved, with the official sign
//   y_a = a cos φ + b sin φ,  y_b = −a sin φ + b cos φ  (half-split; github.com/model-architectures/GRAPE,
//   or the sign of torchscale / GPT-J / llama.cpp NORMAL rope when interleaved: y_a = a cos φ − b sin φ).
#ifndef GRAPE_PE_ROT_KERNELS_H
#define GRAPE_PE_ROT_KERNELS_H

#include <stddef.h>

#include "grape.h"

// Columns of a frame chunk in grape-m-nc's projection layout (one 256-bit register of floats).
#define ROT_FRAME_LANES 8
// Floats of per-thread scratch a frame head needs (4 frame vectors, padded to whole lanes).
#define ROT_SCRATCH(R) (((size_t)(R) + ROT_FRAME_LANES) * 4)

// Pair (i0, i1) of pair p among npair pairs (half-split (p, p+npair) or interleaved (2p, 2p+1)).
static inline void rot_pair_index(int p, int npair, int interleaved, int *i0, int *i1) {
    *i0 = interleaved ? 2 * p : p;
    *i1 = interleaved ? 2 * p + 1 : p + npair;
}

// The cos/sin table of one call: (nb, T, nh, npair) scale·cos and scale·sin, shared across batch and heads where
// the angles are (nb = B only for contextual phases, nh = H only for per-head frequencies or phases).
typedef struct {
    float *cs, *sn;    // (nb, T, nh, npair): scale·cos, scale·sin
    size_t sb, st, sh; // strides (floats) of batch, time, head
    int head_varies;   // nh == H
} rot_table;

// y = R(φ) x on the pairs of a frame of 2·npair values; y == x allowed. cs, sn: (npair) scale·cos φ, scale·sin φ.
void rot_pairs_forward(float *y, const float *x, const float *cs, const float *sn, int npair, int interleaved);
// dx += R(φ)ᵀ dy; dphi[p] = ∂loss/∂φ_p (written), with x the forward input.
void rot_pairs_backward(float *dx, float *dphi, const float *dy, const float *x, const float *cs, const float *sn,
                        int npair, int interleaved);

// out[0..n) = base + add + Σ_k coef[k]·M[k][0..n), M (nrows, n) row-major; add may be NULL, out may alias base.
void rot_rows_axpy(float *out, const float *base, const float *add, const float *coef, const float *M, int nrows,
                   int n);

// cs[p] = g·cos(m θ_p), sn[p] = g·sin(m θ_p) for np pairs; theta_max ≥ every θ_p picks the exact path for huge angles.
void rot_sincos_row(float *cs, float *sn, double m, const double *theta, double theta_max, double g, size_t np);

// ---- cayley.c (double): B = (I + A)^-1 (I − A), A skew (n×n); M = (I + A)^-1.
grape_status cayley_forward(double *B, double *M, const double *A, int n);
// The same on a caller's work of 2 n^2 doubles.
grape_status cayley_forward_ws(double *B, double *M, const double *A, int n, double *work);
// dA += −Mᵀ dB (B + I)ᵀ = −2 Mᵀ dB Mᵀ, the adjoint of δB = −M δA (B + I). work: n² doubles.
void cayley_backward(double *dA, const double *dB, const double *M, int n, double *work);
// dA (nset, n, n), written: for each set s, the A-gradient of the first F columns of B_s = Cayley(A_s) from dF
// (nset, F, n), the rows of dFᵀ (dF[s][c][i] = ∂loss/∂(B_s)_ic); M: (nset, n, n). work: CAYLEY_FRAME_WORK(n) doubles.
#define CAYLEY_FRAME_WORK(n) (2 * (size_t)(n) * (size_t)(n))
void cayley_frames_backward(double *dA, const double *dF, const double *M, int nset, int n, int F, double *work);

#endif
