// tile.h — register-blocked tile products shared by the attention kernels (and the sgemm of `grape bench attn`).
#ifndef GRAPE_ATTN_TILE_H
#define GRAPE_ATTN_TILE_H

#include <stddef.h>

// C[r*ldc + n] += sum_{k<K} A[r*ars + k*aks] * Bm[k*ldb + n]   for r < R, n < N.
// A is read by scalar broadcast with arbitrary strides (so one routine serves K·Qᵀ, Vᵀ·P, dS·K, ...);
// Bm and C are read along n in vector lanes.
void tile_mk(float *C, size_t ldc, const float *A, size_t ars, size_t aks, const float *Bm, size_t ldb, int R, int N,
             int K);

// C[r*ldc + n] += sum_{k<K} A[r*lda + k] * Bm[n*ldb + k]   for r < R, n < N; K a multiple of 16.
// Dot products along lanes with one horizontal sum each: for narrow outputs (N = probe dim) where tile_mk's
// lanes would be mostly empty.
void tile_dot_lanes(float *C, size_t ldc, const float *A, size_t lda, const float *Bm, size_t ldb, int R, int N,
                    int K);

#endif
