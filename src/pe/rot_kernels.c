// rot_kernels.c — the shared pair kernels of every rotation (rot_kernels.h): the pair rotation and its transpose,
// the frame's row combination, and the cos/sin of a row of angles (GRAPE §3.1, arXiv 2512.07805: G(n) = exp(n ω L)
// acts on each plane as the 2×2 rotation by n ω).
#include <math.h>
#include <stdint.h>

#include "core/mathx.h"
#include "core/simd.h"
#include "pe/rot_kernels.h"

// ---------------------------------------------------------------------------------------------------------
// Pair kernels. cs/sn carry any scale (xPos, YaRN mscale). y == x is allowed.
// Half-split pairs (i, i+P), the official GRAPE sign: y_a = a c + b s, y_b = −a s + b c (sg = +1).
// Interleaved pairs (2i, 2i+1), the sign of torchscale's xPos, GPT-J and llama.cpp's NORMAL rope:
// y_a = a c − b s, y_b = a s + b c (sg = −1), so their weights port unchanged. Either way q̃·k̃ depends on t − j only.

// Pair p is (st·p, st·p + off): half-split st = 1, off = npair; interleaved st = 2, off = 1. The wrappers pass
// literal strides and signs so each layout gets its own vectorised specialisation.
static inline void pairs_forward(float *y, const float *x, const float *cs, const float *sn, int npair, int st,
                                 int off, float sg) {
#pragma omp simd
    for (int p = 0; p < npair; p++) {
        int i0 = st * p, i1 = i0 + off;
        float a = x[i0], b = x[i1], s = sg * sn[p];
        y[i0] = a * cs[p] + b * s;
        y[i1] = b * cs[p] - a * s;
    }
}

void rot_pairs_forward(float *y, const float *x, const float *cs, const float *sn, int npair, int interleaved) {
    if (interleaved) pairs_forward(y, x, cs, sn, npair, 2, 1, -1.0f);
    else pairs_forward(y, x, cs, sn, npair, 1, npair, 1.0f);
}

// The transpose (same kernel, angle negated) accumulated into dx, and dφ = sg (dy_a·y_b − dy_b·y_a) from the
// forward output y recomputed from x (the pair turns by sg·φ: ∂y_a/∂(sg φ) = y_b, ∂y_b/∂(sg φ) = −y_a).
static inline void pairs_backward(float *dx, float *dphi, const float *dy, const float *x, const float *cs,
                                  const float *sn, int npair, int st, int off, float sg) {
#pragma omp simd
    for (int p = 0; p < npair; p++) {
        int i0 = st * p, i1 = i0 + off;
        float a = x[i0], b = x[i1], ga = dy[i0], gb = dy[i1], s = sg * sn[p];
        float ya = a * cs[p] + b * s, yb = b * cs[p] - a * s;
        dphi[p] = sg * (ga * yb - gb * ya);
        dx[i0] += ga * cs[p] - gb * s;
        dx[i1] += ga * s + gb * cs[p];
    }
}

void rot_pairs_backward(float *dx, float *dphi, const float *dy, const float *x, const float *cs, const float *sn,
                        int npair, int interleaved) {
    if (interleaved) pairs_backward(dx, dphi, dy, x, cs, sn, npair, 2, 1, -1.0f);
    else pairs_backward(dx, dphi, dy, x, cs, sn, npair, 1, npair, 1.0f);
}

// out[0..n) = base + add + Σ_k coef[k]·M[k][0..n) (M: (nrows, n) row-major; add may be NULL; out may alias base).
// Tiled over out so a tile of ROWS_VECS vectors stays in registers across all rows (instead of a load and a store of
// out per row), with two accumulators over alternate rows so consecutive FMAs do not wait on each other; then single
// vectors, then scalars.
#define ROWS_VECS 4

// Inlined at each call so nv is a literal and va, vb live in registers (a shared clone spilled them).
static inline __attribute__((always_inline)) void rows_axpy_tile(float *out, const float *base, const float *add,
                                                                 const float *coef, const float *M, int nrows, int n,
                                                                 int nv) {
    vf va[ROWS_VECS], vb[ROWS_VECS];
    for (int v = 0; v < nv; v++) va[v] = vf_load(base + v * VW), vb[v] = add ? vf_load(add + v * VW) : vf_set1(0.0f);
    int k = 0;
    for (; k + 1 < nrows; k += 2) {
        const float *m0 = M + (size_t)k * (size_t)n, *m1 = m0 + n;
        vf c0 = vf_set1(coef[k]), c1 = vf_set1(coef[k + 1]);
        for (int v = 0; v < nv; v++) {
            va[v] = vf_fma(c0, vf_load(m0 + v * VW), va[v]);
            vb[v] = vf_fma(c1, vf_load(m1 + v * VW), vb[v]);
        }
    }
    if (k < nrows) { // odd row count
        const float *m = M + (size_t)k * (size_t)n;
        for (int v = 0; v < nv; v++) va[v] = vf_fma(vf_set1(coef[k]), vf_load(m + v * VW), va[v]);
    }
    for (int v = 0; v < nv; v++) vf_store(out + v * VW, vf_add(va[v], vb[v]));
}

void rot_rows_axpy(float *out, const float *base, const float *add, const float *coef, const float *M, int nrows,
                   int n) {
    int i = 0;
    for (; i + ROWS_VECS * VW <= n; i += ROWS_VECS * VW)
        rows_axpy_tile(out + i, base + i, add ? add + i : NULL, coef, M + i, nrows, n, ROWS_VECS);
    for (; i + VW <= n; i += VW) rows_axpy_tile(out + i, base + i, add ? add + i : NULL, coef, M + i, nrows, n, 1);
    for (int j = i; j < n; j++) {
        float s = base[j] + (add ? add[j] : 0.0f);
        for (int k = 0; k < nrows; k++) s += coef[k] * M[(size_t)k * (size_t)n + j];
        out[j] = s;
    }
}

// ---------------------------------------------------------------------------------------------------------
// cos/sin of one row of angles

// sin and cos of m·θ_p for one row of pairs, times g. Range reduction in double (Cody–Waite: k = rint(a·2/π),
// r = a − k·π/2 with π/2 split in a 33-bit head, exact for |k| < 2^20), then Taylor polynomials on |r| ≤ π/4
// (truncation < 1e-11, below float rounding) and the quadrant by selects: vectorises, unlike libm's sin/cos.
// Rows whose largest angle reaches 2^19 take angle_sincos (remainder) instead.
#define PIO2_HI 1.57079632673412561417e+00
#define PIO2_LO 6.07710050650619224932e-11

void rot_sincos_row(float *cs, float *sn, double m, const double *theta, double theta_max, double g, size_t np) {
    if (fabs(m) * theta_max >= 524288.0) {
        for (size_t p = 0; p < np; p++) {
            double s, c;
            angle_sincos(m, theta[p], &s, &c);
            cs[p] = (float)(g * c), sn[p] = (float)(g * s);
        }
        return;
    }
#pragma omp simd
    for (size_t p = 0; p < np; p++) {
        double a = m * theta[p], k = nearbyint(a * (2.0 / M_PI));
        double r = (a - k * PIO2_HI) - k * PIO2_LO, r2 = r * r;
        // Horner in r² with reciprocal constants: a division per term (vdivpd) dominated the grape-m-ctx table.
        double sp = r * (1 - r2 * (1.0 / 6) * (1 - r2 * (1.0 / 20) * (1 - r2 * (1.0 / 42) * (1 - r2 * (1.0 / 72) *
                                                                                        (1 - r2 * (1.0 / 110))))));
        double cp = 1 - r2 * 0.5 * (1 - r2 * (1.0 / 12) * (1 - r2 * (1.0 / 30) * (1 - r2 * (1.0 / 56) *
                                                          (1 - r2 * (1.0 / 90) * (1 - r2 * (1.0 / 132))))));
        int q = (int)((int64_t)k & 3);
        double s = (q & 1) ? cp : sp, c = (q & 1) ? sp : cp;
        sn[p] = (float)(g * ((q & 2) ? -s : s));
        cs[p] = (float)(g * (((q + 1) & 2) ? -c : c));
    }
}
