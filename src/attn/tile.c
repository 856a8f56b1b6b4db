// tile.c — see tile.h. The block sizes keep RB*NV accumulators plus NV loaded rows in registers
// (AVX-512: 4x4 of 32 zmm; AVX2: 2x4 of 16 ymm) so each broadcast feeds NV FMAs and each load RB FMAs.
#include "attn/tile.h"

#include "core/simd.h"

#if VW == 16
#define RB 4
#define NV 4
#elif VW == 8
#define RB 2
#define NV 4
#else
#define RB 4
#define NV 4
#endif

// One rb x (nv*VW) block of C over the whole K; rb, nv are compile-time constants at every call site, so the
// accumulator array is scalarised into registers.
static inline __attribute__((always_inline)) void mk_block(float *C, size_t ldc, const float *A, size_t ars,
                                                          size_t aks, const float *Bm, size_t ldb, int K,
                                                          const int rb, const int nv) {
    vf acc[RB][NV];
    for (int r = 0; r < rb; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = vf_load(C + (size_t)r * ldc + (size_t)v * VW);
    for (int k = 0; k < K; k++) {
        const float *b = Bm + (size_t)k * ldb;
        const float *a = A + (size_t)k * aks;
        vf bv[NV];
        for (int v = 0; v < nv; v++) {
            bv[v] = vf_load(b + (size_t)v * VW);
            VF_PIN(bv[v]); // one load per row of Bm, used rb times
        }
        for (int r = 0; r < rb; r++) {
            vf ar = vf_set1(a[(size_t)r * ars]);
            for (int v = 0; v < nv; v++) acc[r][v] = vf_fma(ar, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < rb; r++)
        for (int v = 0; v < nv; v++) vf_store(C + (size_t)r * ldc + (size_t)v * VW, acc[r][v]);
}

// Columns [n0, n0 + nv*VW) for every row: full row blocks, then single rows.
static inline __attribute__((always_inline)) void mk_columns(float *C, size_t ldc, const float *A, size_t ars,
                                                            size_t aks, const float *Bm, size_t ldb, int R, int K,
                                                            const int nv) {
    int r = 0;
    for (; r + RB <= R; r += RB)
        mk_block(C + (size_t)r * ldc, ldc, A + (size_t)r * ars, ars, aks, Bm, ldb, K, RB, nv);
    for (; r < R; r++) mk_block(C + (size_t)r * ldc, ldc, A + (size_t)r * ars, ars, aks, Bm, ldb, K, 1, nv);
}

void tile_mk(float *C, size_t ldc, const float *A, size_t ars, size_t aks, const float *Bm, size_t ldb, int R, int N,
             int K) {
    int n = 0;
    for (; n + NV * VW <= N; n += NV * VW) mk_columns(C + n, ldc, A, ars, aks, Bm + n, ldb, R, K, NV);
    for (; n + VW <= N; n += VW) mk_columns(C + n, ldc, A, ars, aks, Bm + n, ldb, R, K, 1);
    for (; n < N; n++) // fewer than VW columns left (odd head dims, narrow probes)
        for (int r = 0; r < R; r++) {
            float s = 0;
            for (int k = 0; k < K; k++) s += A[(size_t)r * ars + (size_t)k * aks] * Bm[(size_t)k * ldb + n];
            C[(size_t)r * ldc + n] += s;
        }
}

void tile_dot_lanes(float *C, size_t ldc, const float *A, size_t lda, const float *Bm, size_t ldb, int R, int N,
                    int K) {
    for (int r = 0; r < R; r++) {
        const float *a = A + (size_t)r * lda;
        for (int n = 0; n < N; n++) {
            const float *b = Bm + (size_t)n * ldb;
            vf acc = vf_set1(0.0f);
            for (int k = 0; k < K; k += VW) acc = vf_fma(vf_load(a + k), vf_load(b + k), acc);
            C[(size_t)r * ldc + n] += vf_hsum(acc);
        }
    }
}
