// rodrigues.c — a general rank-2 GRAPE-M plane (GRAPE, arXiv 2512.07805 §2 and App. I):
//   G(n) = exp(n ω L),  L = a bᵀ − b aᵀ,  α = ‖a‖², β = ‖b‖², γ = aᵀb,  κ = s² = αβ − γ²,  m = n ω,
//   G x = x + m S1(w) (a v − b u) + m² S2(w) [γ(a v + b u) − β a u − α b v],  u = aᵀx, v = bᵀx,
// with w = z² = m² κ, S1 = sin z / z and S2 = (1 − cos z)/z² written as functions of w. This is the paper's
// f1 = sin z / s, f2 = (1 − cos z)/s² without dividing by s, so s → 0 needs no special case and the chain rule
// runs through κ (∂κ = β∂α + α∂β − 2γ∂γ) instead of ∂s = ∂κ/(2s). Series below |z| = 1e-2 (w < 1e-4).
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "grape_testing.h"
#include "rodrigues.h"

void rodrigues_coeffs(double w, double c[4]) {
    if (w < 1e-4) { // Taylor in w to w³: truncation < w⁴/9! ≈ 3e-22
        c[0] = 1 - w / 6 * (1 - w / 20 * (1 - w / 42));
        c[1] = 0.5 - w / 24 * (1 - w / 30 * (1 - w / 56));
        c[2] = -1.0 / 6 + w / 60 - w * w / 1680 + w * w * w / 90720;
        c[3] = -1.0 / 24 + w / 360 - w * w / 13440 + w * w * w / 907200;
        return;
    }
    double z = sqrt(w), sz = sin(z), cz = cos(z), h = sin(0.5 * z), omc = 2 * h * h; // 1 − cos z without cancellation
    c[0] = sz / z;
    c[1] = omc / w;
    c[2] = (z * cz - sz) / (2 * w * z);
    c[3] = (z * sz - 2 * omc) / (2 * w * w);
}

static void rodrigues_scalars(double sc[3], const float *a, const float *b, int D) {
    double al = 0, be = 0, ga = 0;
#pragma omp simd reduction(+ : al, be, ga)
    for (int i = 0; i < D; i++) {
        al += (double)a[i] * a[i];
        be += (double)b[i] * b[i];
        ga += (double)a[i] * b[i];
    }
    sc[0] = al;
    sc[1] = be;
    sc[2] = ga;
}

static void dot2(double *u, double *v, const float *a, const float *b, const float *x, int D) {
    double su = 0, sv = 0;
#pragma omp simd reduction(+ : su, sv)
    for (int i = 0; i < D; i++) {
        su += (double)a[i] * x[i];
        sv += (double)b[i] * x[i];
    }
    *u = su;
    *v = sv;
}

static grape_status check_plane(const void *p0, const void *p1, const float *a, const float *b, const double *pos,
                                int N, int D) {
    if (!p0 || !p1 || !a || !b || !pos) return error_fail(GRAPE_ERR_ARG, "grape_plane: NULL argument");
    if (N < 0 || D < 1) return error_fail(GRAPE_ERR_ARG, "grape_plane: bad shape N=%d D=%d", N, D);
    return GRAPE_OK;
}

// y, x: (N,D); a, b: (D); pos: (N).
grape_status grape_plane_forward(float *y, const float *x, const float *a, const float *b, float omega,
                                 const double *pos, int N, int D) {
    grape_status st = check_plane(y, x, a, b, pos, N, D);
    if (st) return st;
    double sc[3];
    rodrigues_scalars(sc, a, b, D);
    double al = sc[0], be = sc[1], ga = sc[2], kappa = fmax(0.0, al * be - ga * ga);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < N; t++) {
        const float *xt = x + (size_t)t * D;
        float *yt = y + (size_t)t * D;
        double u, v, c[4], m = pos[t] * (double)omega;
        dot2(&u, &v, a, b, xt, D);
        rodrigues_coeffs(m * m * kappa, c);
        double c1 = m * c[0], c2 = m * m * c[1];
        float ca = (float)(c1 * v + c2 * (ga * v - be * u)), cb = (float)(-c1 * u + c2 * (ga * u - al * v));
#pragma omp simd
        for (int i = 0; i < D; i++) yt[i] = xt[i] + ca * a[i] + cb * b[i];
    }
    return GRAPE_OK;
}

// Per-thread accumulators: da, db (D each) then Dα, Dβ, Dγ, Dκ, dω.
#define PLANE_NSCAL 5

// One token's backward; g = dy. Accumulates into dx (if any), acc (da, db, scalars).
static void plane_token_backward(float *dx, double *acc, const float *g, const float *x, const float *a,
                                 const float *b, const double sc[3], double kappa, double m, double n, int D) {
    double al = sc[0], be = sc[1], ga = sc[2], u, v, gu, gv, c[4];
    dot2(&u, &v, a, b, x, D);
    dot2(&gu, &gv, a, b, g, D); // gu = aᵀg, gv = bᵀg
    double w = m * m * kappa;
    rodrigues_coeffs(w, c);
    double c1 = m * c[0], c2 = m * m * c[1];
    double dc1 = gu * v - gv * u, dc2 = ga * (gu * v + gv * u) - be * gu * u - al * gv * v;
    double dw = dc1 * m * c[2] + dc2 * m * m * c[3];
    double dm = dc1 * c[0] + dc2 * 2 * m * c[1] + dw * 2 * m * kappa;
    double du = -c1 * gv + c2 * (ga * gv - be * gu), dv = c1 * gu + c2 * (ga * gu - al * gv);
    double ca = c1 * v + c2 * (ga * v - be * u), cb = -c1 * u + c2 * (ga * u - al * v);
    double *da = acc, *db = acc + D, *s = acc + 2 * D;
    s[0] -= c2 * gv * v;
    s[1] -= c2 * gu * u;
    s[2] += c2 * (gu * v + gv * u);
    s[3] += dw * m * m;
    s[4] += dm * n;
#pragma omp simd
    for (int i = 0; i < D; i++) {
        da[i] += ca * g[i] + du * x[i];
        db[i] += cb * g[i] + dv * x[i];
    }
    if (dx) {
        float fu = (float)du, fv = (float)dv;
#pragma omp simd
        for (int i = 0; i < D; i++) dx[i] += g[i] + fu * a[i] + fv * b[i];
    }
}

// Fold the per-thread accumulators and the global chain α, β, γ, κ → a, b.
static void plane_finish(float *da, float *db, float *domega, const double *acc, const float *a, const float *b,
                         const double sc[3], int D) {
    const double *s = acc + 2 * D;
    double Dal = s[0] + s[3] * sc[1], Dbe = s[1] + s[3] * sc[0], Dga = s[2] - 2 * sc[2] * s[3];
    for (int i = 0; i < D; i++) {
        if (da) da[i] += (float)(acc[i] + 2 * Dal * a[i] + Dga * b[i]);
        if (db) db[i] += (float)(acc[D + i] + 2 * Dbe * b[i] + Dga * a[i]);
    }
    if (domega) *domega += (float)s[4];
}

grape_status grape_plane_backward(float *dx, float *da, float *db, float *domega, const float *dy, const float *x,
                                  const float *a, const float *b, float omega, const double *pos, int N, int D) {
    grape_status st = check_plane(dy, x, a, b, pos, N, D);
    if (st) return st;
    double sc[3];
    rodrigues_scalars(sc, a, b, D);
    double kappa = fmax(0.0, sc[0] * sc[1] - sc[2] * sc[2]);
    int nt = omp_get_max_threads();
    size_t per = 2 * (size_t)D + PLANE_NSCAL;
    double *acc = mem_alloc((size_t)nt * per * sizeof(double));
    if (!acc) return GRAPE_ERR_NOMEM;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < N; t++) {
        double *my = acc + (size_t)omp_get_thread_num() * per;
        plane_token_backward(dx ? dx + (size_t)t * D : NULL, my, dy + (size_t)t * D, x + (size_t)t * D, a, b, sc,
                             kappa, pos[t] * (double)omega, pos[t], D);
    }
    for (int k = 1; k < nt; k++)
        for (size_t i = 0; i < per; i++) acc[i] += acc[(size_t)k * per + i];
    plane_finish(da, db, domega, acc, a, b, sc, D);
    mem_free(acc);
    return GRAPE_OK;
}
