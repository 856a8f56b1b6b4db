// test_rot_plane.c — the general rank-2 plane G(n) = exp(n ω L(a, b)): float forward vs the matrix exponential
// (independent of Rodrigues), backward (dx, da, db, dω) vs finite differences of that double oracle, and the
// s → 0 guards: s = 1e-9, 1e-5, 1e-3 agree with the limit and keep gradients finite and correct.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"
#include "ref/grape_testing.h"
#include "ref/lift_rot_ref.h"
#include "ref/rodrigues.h"
#include "util.h"

enum { D = 10, N = 7 };

// Variables packed as [x (N·D) | a (D) | b (D) | ω] so one finite-difference pass covers every gradient.
// The loss is Σ w·(G − I)x: dropping the identity keeps its size (and the differences' rounding) proportional to
// the rotation, so gradients of size ~s stay resolvable when s = 1e-9; dx then adds w back.
typedef struct {
    double v[N * D + 2 * D + 1];
    double w[N * D];
    double pos[N];
} plane_ctx;

static double plane_loss(const double *v, void *vctx) {
    const plane_ctx *c = vctx;
    const double *x = v, *a = v + N * D, *b = a + D, om = b[D];
    double L[D * D], G[D * D], s = 0;
    for (int t = 0; t < N; t++) {
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) L[i * D + j] = c->pos[t] * om * (a[i] * b[j] - b[i] * a[j]);
        lift_expm(G, L, D);
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) s += c->w[t * D + i] * (G[i * D + j] - (i == j)) * x[t * D + j];
    }
    return s;
}

// sep < 0: a, b random; else |a| = 1 and b = par·a + sep·u with u ⊥ a unit, so s = sep. (Below s ≈ 1e-8·|a||b|
// the float vectors cannot hold a nearly parallel pair, so s = 1e-9 uses par = 0: a short b ⊥ a.)
static void run(const char *name, double sep, double par, t_rng *rng) {
    plane_ctx c;
    float xf[N * D], af[D], bf[D], wf[N * D], y[N * D], dx[N * D] = {0}, da[D] = {0}, db[D] = {0}, dom = 0;
    double yref[N * D], *a = c.v + N * D, *b = a + D;
    const double pos[N] = {0, 1, -3, 7.5, 100, 2, -41};
    memcpy(c.pos, pos, sizeof pos);
    t_fill(xf, N * D, 1.0, rng);
    t_fill(wf, N * D, 1.0, rng);
    t_fill(af, D, 0.6, rng);
    t_fill(bf, D, 0.6, rng);
    if (sep >= 0) { // orthonormalise: a unit, u ⊥ a unit; b = 0.8 a + sep u (in float, s recomputed below)
        double na = 0, d = 0, nu = 0;
        for (int i = 0; i < D; i++) na += (double)af[i] * af[i];
        for (int i = 0; i < D; i++) af[i] = (float)(af[i] / sqrt(na)), d += (double)af[i] * bf[i];
        for (int i = 0; i < D; i++) bf[i] -= (float)(d * af[i]), nu += (double)bf[i] * bf[i];
        for (int i = 0; i < D; i++) bf[i] = (float)(par * af[i] + sep * bf[i] / sqrt(nu));
    }
    float omega = 0.37f;
    for (int i = 0; i < N * D; i++) c.v[i] = xf[i], c.w[i] = wf[i];
    for (int i = 0; i < D; i++) a[i] = af[i], b[i] = bf[i];
    b[D] = omega;
    grape_status st = grape_plane_forward(y, xf, af, bf, omega, c.pos, N, D);
    // reference output: loss gradient wrt w is y; take it with unit w rows
    for (int t = 0; t < N; t++) {
        double L[D * D], G[D * D];
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) L[i * D + j] = pos[t] * omega * (a[i] * b[j] - b[i] * a[j]);
        lift_expm(G, L, D);
        for (int i = 0; i < D; i++) {
            double s = 0;
            for (int j = 0; j < D; j++) s += G[i * D + j] * c.v[t * D + j];
            yref[t * D + i] = s;
        }
    }
    double al = 0, be = 0, ga = 0;
    for (int i = 0; i < D; i++) al += a[i] * a[i], be += b[i] * b[i], ga += a[i] * b[i];
    printf("# plane %s: s of the float vectors = %.3e\n", name, sqrt(fmax(0.0, al * be - ga * ga)));
    char lab[128];
    snprintf(lab, sizeof lab, "plane %s: forward vs expm", name);
    t_check(lab, st ? 1.0 : t_rel_err(y, yref, N * D), 2e-6);
    if (!st) st = grape_plane_backward(dx, da, db, &dom, wf, xf, af, bf, omega, c.pos, N, D);
    size_t nv = N * D + 2 * D + 1;
    double fd[N * D + 2 * D + 1];
    t_fd_grad(fd, plane_loss, c.v, nv, 1e-4, &c);
    for (int i = 0; i < N * D; i++) fd[i] += c.w[i];
    int finite = isfinite(dom);
    for (int i = 0; i < D; i++) finite &= isfinite(da[i]) && isfinite(db[i]);
    snprintf(lab, sizeof lab, "plane %s: gradients finite", name);
    t_true(lab, !st && finite);
    snprintf(lab, sizeof lab, "plane %s: dx vs fd", name);
    t_check(lab, t_rel_err(dx, fd, N * D), 1e-4);
    snprintf(lab, sizeof lab, "plane %s: da vs fd", name);
    t_check(lab, t_rel_err(da, fd + N * D, D), 1e-4);
    snprintf(lab, sizeof lab, "plane %s: db vs fd", name);
    t_check(lab, t_rel_err(db, fd + N * D + D, D), 1e-4);
    snprintf(lab, sizeof lab, "plane %s: domega vs fd", name);
    t_check(lab, t_rel_err(&dom, fd + N * D + 2 * D, 1), 1e-4);
}

// The series and the closed forms meet at the switch |z| = 1e-2 (w = 1e-4).
static void test_switch_continuity(void) {
    double lo[4], hi[4], e = 0;
    rodrigues_coeffs(1e-4 * (1 - 1e-12), lo);
    rodrigues_coeffs(1e-4 * (1 + 1e-12), hi);
    for (int k = 0; k < 4; k++) e = fmax(e, fabs(lo[k] - hi[k]) / fabs(lo[k]));
    t_check("Rodrigues coefficients continuous at the series switch |z| = 1e-2", e, 1e-9);
    rodrigues_coeffs(0.0, lo);
    t_check("Rodrigues limits S1(0) = 1, S2(0) = 1/2, S1' = -1/6, S2' = -1/24",
            fabs(lo[0] - 1) + fabs(lo[1] - 0.5) + fabs(lo[2] + 1.0 / 6) + fabs(lo[3] + 1.0 / 24), 1e-16);
}

int main(void) {
    t_rng rng = t_seed(5);
    run("random a, b", -1, 0, &rng);
    run("s = 1e-3 (b nearly parallel to a)", 1e-3, 0.8, &rng);
    run("s = 1e-5 (b nearly parallel to a)", 1e-5, 0.8, &rng);
    run("s = 1e-9 (|b| = 1e-9, b orthogonal to a)", 1e-9, 0, &rng);
    test_switch_continuity();
    return t_finish();
}
