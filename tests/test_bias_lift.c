// test_bias_lift.c — the framework identities of additive GRAPE (GRAPE, arXiv 2512.07805 §4–5), proved numerically with
// the unipotent group elements themselves: the GL(d+4) lift equals ALiBi and GRAPE-A-K/Q/QK, the path product of
// unipotent edges equals GRAPE-AP and (endpoint-independent) FoX, ALiBi ⊂ FoX, and a dictionary of components
// with A_r A_s = 0 adds its biases.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/dmat.h"
#include "test_bias_fixture.h"

#define NMAX 16

static double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

// --- the group element: exp(nωA) = I + nωA, unipotent, a one-parameter group

static void test_group_element(void) {
    int n = 10;
    double A[NMAX * NMAX] = {0}, A2[NMAX * NMAX], G[NMAX * NMAX], Gi[NMAX * NMAX], Gj[NMAX * NMAX],
           Gij[NMAX * NMAX], P[NMAX * NMAX];
    t_rng r = t_seed(3);
    for (int c = 0; c < n - 1; c++) A[(n - 1) * n + c] = t_normal(&r); // A = e_{n-1} wᵀ with w_{n-1} = 0
    dmat_mul(A2, A, A, n);
    t_check("lift: A^2 = 0 (max abs)", max_abs(A2, (size_t)n * n), 0.0);
    lift_component c = {A, -0.37};
    lift_group_element(G, &c, 1, n, 123.0);
    double err = 0;
    for (int e = 0; e < n * n; e++) err = fmax(err, fabs(G[e] - ((e % (n + 1) == 0) + 123.0 * -0.37 * A[e])));
    t_check("lift: exp(n omega A) = I + n omega A", err, 1e-13);
    for (int e = 0; e < n * n; e++) P[e] = G[e] - (e % (n + 1) == 0); // (G - I)^2 = 0: all eigenvalues 1
    dmat_mul(A2, P, P, n);
    t_check("lift: G_add - I is nilpotent (unipotent element)", max_abs(A2, (size_t)n * n), 1e-12);
    lift_group_element(Gi, &c, 1, n, 7.0);
    lift_group_element(Gj, &c, 1, n, -19.0);
    lift_group_element(Gij, &c, 1, n, 7.0 - 19.0);
    dmat_mul(P, Gi, Gj, n);
    for (int e = 0; e < n * n; e++) P[e] -= Gij[e];
    t_check("lift: G(i) G(j) = G(i + j)", max_abs(P, (size_t)n * n), 1e-12);
}

// --- every kind through the lift vs the closed forms (reference and fast factors)

// The lift forms i·ω − j·ω, so at absolute positions near pos0 it loses ~ε·pos0 to cancellation: tol scales with it.
static void test_kind(grape_bias_kind kind, int paper, int64_t pos0, const char *label) {
    double tol = 1e-12 * (1.0 + (double)pos0 * 1e-3);
    bias_fx fx;
    char name[160];
    if (!fx_make(&fx, kind, paper, 2, 9, 3, 8, 4, pos0, 17)) {
        t_true(label, 0);
        return;
    }
    size_t n = (size_t)fx.B * fx.H * fx.T * fx.T;
    double *lift = malloc(n * sizeof(double)), *ref = malloc(n * sizeof(double));
    float *fast = malloc(n * sizeof(float));
    bias_ref_inputs in = fx_ref(&fx, fx.x);
    snprintf(name, sizeof name, "%s: D + 4 fits the lift", label);
    t_true(name, lift_bias_dense(lift, &in));
    bias_ref_dense(ref, &in);
    snprintf(name, sizeof name, "%s: lift vs closed form (double)", label);
    double num = 0, den = 0;
    int pattern = 1;
    for (size_t i = 0; i < n; i++) {
        pattern &= isinf(lift[i]) == isinf(ref[i]);
        if (isfinite(ref[i])) num = fmax(num, fabs(lift[i] - ref[i])), den = fmax(den, fabs(ref[i]));
    }
    t_check(name, pattern ? num / den : 1.0, tol);
    grape_bias_factors *f;
    fx_factors(&f, &fx);
    fx_dense(fast, f);
    snprintf(name, sizeof name, "%s: lift vs library factors", label);
    t_check(name, fx_bias_err(fast, lift, n), 1e-5);
    free(lift), free(ref), free(fast);
    fx_free(&fx);
}

// --- ALiBi: the lift (ω = -m), the textbook -m(t-j) and fairseq's +m·j (a row constant apart) give one softmax

static void test_alibi_softmax(void) {
    int T = 12, H = 5, n = 4 + 4;
    double A[NMAX * NMAX] = {0}, qh[NMAX] = {0}, kh[NMAX] = {0}, worst = 0, worst_fs = 0;
    A[(4 + 1) * n + 4] = 1; // e_{d+1} e_dᵀ with q̂ = [q; 1; 0; ...], k̂ = [k; 0; 1; ...]
    t_rng r = t_seed(9);
    float slopes[5];
    grape_alibi_slopes(slopes, H);
    for (int h = 0; h < H; h++) {
        double m = slopes[h];
        lift_component c = {A, -m};
        for (int t = 0; t < T; t++) {
            double l_lift[16], l_alibi[16], l_fs[16];
            for (int j = 0; j <= t; j++) {
                t_fill_d(qh, 4, 1.0, &r);
                t_fill_d(kh, 4, 1.0, &r);
                qh[4] = 1, kh[5] = 1;
                double qk = qh[0] * kh[0] + qh[1] * kh[1] + qh[2] * kh[2] + qh[3] * kh[3];
                l_lift[j] = lift_logit(qh, kh, &c, 1, n, 1000.0 + t, 1000.0 + j);
                l_alibi[j] = qk - m * (t - j);
                l_fs[j] = qk + m * j;
            }
            double z[3] = {0, 0, 0}, mx[3] = {-INFINITY, -INFINITY, -INFINITY};
            for (int j = 0; j <= t; j++)
                mx[0] = fmax(mx[0], l_lift[j]), mx[1] = fmax(mx[1], l_alibi[j]), mx[2] = fmax(mx[2], l_fs[j]);
            for (int j = 0; j <= t; j++)
                z[0] += exp(l_lift[j] - mx[0]), z[1] += exp(l_alibi[j] - mx[1]), z[2] += exp(l_fs[j] - mx[2]);
            for (int j = 0; j <= t; j++) {
                double p0 = exp(l_lift[j] - mx[0]) / z[0], p1 = exp(l_alibi[j] - mx[1]) / z[1];
                double p2 = exp(l_fs[j] - mx[2]) / z[2];
                worst = fmax(worst, fabs(p0 - p1)), worst_fs = fmax(worst_fs, fabs(p2 - p1));
            }
        }
    }
    t_check("alibi: softmax of the GL(d+4) lift logits = softmax of q.k - m(t-j)", worst, 1e-13);
    t_check("alibi: fairseq +m*j form gives the same softmax (row constant)", worst_fs, 1e-13);
}

// --- ALiBi ⊂ FoX: a constant forget gate f_h = e^{-m_h} is ALiBi

static void test_alibi_in_fox(void) {
    bias_fx fox, ali;
    if (!fx_make(&fox, GRAPE_BIAS_FOX, 0, 1, 11, 6, 8, 8, 0, 1) ||
        !fx_make(&ali, GRAPE_BIAS_ALIBI, 0, 1, 11, 6, 8, 8, 0, 1))
        return;
    float m[6];
    grape_alibi_slopes(m, 6);
    for (int t = 0; t < 11; t++)
        for (int h = 0; h < 6; h++) fox.xf[fox.off_gate + t * 6 + h] = (float)-log(expm1(m[h])); // log σ = -m
    size_t n = 6 * 11 * 11;
    float *bf = malloc(n * sizeof(float)), *ba = malloc(n * sizeof(float));
    grape_bias_factors *f;
    fx_factors(&f, &fox);
    fx_dense(bf, f);
    fx_factors(&f, &ali);
    fx_dense(ba, f);
    double *bad = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) bad[i] = ba[i];
    t_check("alibi = fox with constant gate log f_h = -m_h", fx_bias_err(bf, bad, n), 1e-5);
    free(bf), free(ba), free(bad);
    fx_free(&fox);
    fx_free(&ali);
}

// --- FoX ⊂ GRAPE-AP: ψ(t,l) = log f_l independent of the endpoint t; the path product collapses to c_t - c_j

static void test_fox_in_ap(void) {
    int T = 10;
    double psi[10 * 10], path[10 * 10], logf[10];
    t_rng r = t_seed(21);
    for (int l = 0; l < T; l++) logf[l] = -fabs(t_normal(&r));
    for (int t = 0; t < T; t++)
        for (int l = 0; l < T; l++) psi[t * T + l] = l <= t ? logf[l] : 0.0;
    lift_path_bias(path, psi, T);
    double err = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j <= t; j++) {
            double c = 0;
            for (int l = j + 1; l <= t; l++) c += logf[l];
            err = fmax(err, fabs(path[t * T + j] - c));
        }
    t_check("fox: endpoint-independent path product = c_t - c_j", err, 1e-14);
}

// --- a dictionary of components with A_r A_s = 0 adds biases; without that condition it does not

static double dictionary_gap(int nilpotent) {
    int n = 9, R = 3;
    double A[3][NMAX * NMAX], qh[NMAX], kh[NMAX], P[NMAX * NMAX];
    memset(A, 0, sizeof A);
    t_rng r = t_seed(5);
    for (int k = 0; k < R; k++)
        for (int c = 0; c < n - 1; c++) A[k][(n - 1) * n + c] = t_normal(&r); // A_r = e_{n-1} w_rᵀ, w_r[n-1] = 0
    if (!nilpotent) A[1][(n - 2) * n + (n - 1)] = 1.0; // A_1 A_0 ≠ 0
    lift_component c[3] = {{A[0], 0.3}, {A[1], -0.2}, {A[2], 0.11}};
    double gap = 0, prod = 0;
    for (int a = 0; a < R; a++)
        for (int b = 0; b < R; b++) dmat_mul(P, A[a], A[b], n), prod = fmax(prod, max_abs(P, (size_t)n * n));
    for (int trial = 0; trial < 20; trial++) {
        t_fill_d(qh, (size_t)n, 1.0, &r);
        t_fill_d(kh, (size_t)n, 1.0, &r);
        double i = t_randint(&r, 0, 50), j = t_randint(&r, 0, 50), qk = 0;
        for (int d = 0; d < n; d++) qk += qh[d] * kh[d];
        double sum = qk;
        for (int k = 0; k < R; k++) sum += lift_logit(qh, kh, &c[k], 1, n, i, j) - qk;
        gap = fmax(gap, fabs(lift_logit(qh, kh, c, R, n, i, j) - sum));
    }
    if (nilpotent) t_check("dictionary: A_r A_s = 0 for all r, s", prod, 0.0);
    return gap;
}

static void test_dictionary(void) {
    t_check("dictionary: biases of components with A_r A_s = 0 add", dictionary_gap(1), 1e-11);
    t_true("dictionary: with A_1 A_0 != 0 they do not add (gap > 1e-3)", dictionary_gap(0) > 1e-3);
}

int main(void) {
    test_group_element();
    test_kind(GRAPE_BIAS_ALIBI, 0, 0, "alibi");
    test_kind(GRAPE_BIAS_ALIBI, 0, 1000000, "alibi at pos0 1e6");
    test_kind(GRAPE_BIAS_GRAPE_A, 0, 7, "grape-a (learned slope, one component)");
    test_kind(GRAPE_BIAS_GRAPE_A_K, 0, 7, "grape-a-k (gated lift)");
    test_kind(GRAPE_BIAS_GRAPE_A_Q, 0, 7, "grape-a-q (gated lift)");
    test_kind(GRAPE_BIAS_GRAPE_A_QK, 0, 7, "grape-a-qk (two components)");
    test_kind(GRAPE_BIAS_FOX, 0, 0, "fox (endpoint-independent path product)");
    test_kind(GRAPE_BIAS_GRAPE_AP, 0, 3, "grape-ap official (path product)");
    test_kind(GRAPE_BIAS_GRAPE_AP, 1, 3, "grape-ap paper (path product)");
    test_alibi_softmax();
    test_alibi_in_fox();
    test_fox_in_ap();
    test_dictionary();
    return t_finish();
}
