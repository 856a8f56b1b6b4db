// rmsnorm.c — RMSNorm forward/backward and its double reference (Zhang & Sennrich 2019, arXiv 1910.07467; as in the
// official GRAPE code).
#include <math.h>

#include "core/prof.h"
#include "model/layers.h"

// out = g ⊙ x · rstd, rstd = 1/sqrt(mean(x²) + eps). out, x: (N,C); rstd: (N); g: (C)
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *g, int64_t N, int C, float eps) {
    prof_op prof_prev = prof_enter(PROF_NORM);
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)C))
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * (size_t)C;
        float *on = out + (size_t)n * (size_t)C;
        float ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += xn[c] * xn[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[n] = r;
#pragma omp simd
        for (int c = 0; c < C; c++) on[c] = g[c] * xn[c] * r;
    }
    prof_leave(prof_prev);
}

// Columns per dg task: one 64-byte line of floats, so threads own disjoint lines of dg and of each row.
#define DG_CHUNK 16

// dg_c += sum_n dout_nc x_nc rstd_n, split by column chunks so threads never write the same dg entry.
static void rmsnorm_dg(float *dg, const float *dout, const float *x, const float *rstd, int64_t N, int C) {
    int chunks = (C + DG_CHUNK - 1) / DG_CHUNK;
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)C))
    for (int ch = 0; ch < chunks; ch++) {
        int c0 = ch * DG_CHUNK, c1 = c0 + DG_CHUNK < C ? c0 + DG_CHUNK : C;
        float acc[DG_CHUNK] = {0};
        for (int64_t n = 0; n < N; n++) {
            size_t row = (size_t)n * (size_t)C;
            for (int c = c0; c < c1; c++) acc[c - c0] += dout[row + c] * x[row + c] * rstd[n];
        }
        for (int c = c0; c < c1; c++) dg[c] += acc[c - c0];
    }
}

// With x̂ = x rstd and u = g ⊙ dout:  dx = rstd (u - x̂ mean(u ⊙ x̂)),  dg = sum_n dout ⊙ x̂.
void rmsnorm_backward(float *dx, float *dg, const float *dout, const float *x, const float *g, const float *rstd,
                      int64_t N, int C) {
    prof_op prof_prev = prof_enter(PROF_NORM);
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)C))
    for (int64_t n = 0; n < N; n++) {
        size_t row = (size_t)n * (size_t)C;
        const float *xn = x + row, *dn = dout + row;
        float r = rstd[n], dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += g[c] * dn[c] * xn[c];
        float m = dot * r * r / (float)C; // mean(u ⊙ x̂) / rstd, folded so x is used unscaled
#pragma omp simd
        for (int c = 0; c < C; c++) dx[row + c] += r * (g[c] * dn[c] - xn[c] * m);
    }
    rmsnorm_dg(dg, dout, x, rstd, N, C);
    prof_leave(prof_prev);
}
