// test_resolution.c — LEX attention resolution R(s) (src/eval/resolution.h) on profiles with a known answer:
// a flat profile has R = 0, a geometric decay s[n] = -a n has the closed form below (-> 1 for a steep decay),
// R is invariant to a constant shift and negative for a rising profile; the accumulator recovers an ALiBi bias
// profile exactly (with and without BCA, where only in-window distances exist) and matches a brute-force double
// computation of Eq. 11 + Eq. 3 on random queries and keys.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/resolution.h"
#include "grape.h"
#include "pe/bias_kinds.h"
#include "util.h"

// Geometric profile e^{s[n]} = r^n: numerator (1-r) sum_{i<N-1} r^{2i}, denominator ((1-r^N)/(1-r))^2.
static double geometric_R(double r, int N) {
    double num = (1 - r) * (1 - pow(r, 2.0 * (N - 1))) / (1 - r * r), den = (1 - pow(r, N)) / (1 - r);
    return num / (den * den);
}

static void test_profiles(void) {
    enum { N = 64 };
    double s[N];
    for (int n = 0; n < N; n++) s[n] = 0;
    t_check("flat profile: R = 0", fabs(resolution_R(s, N)), 0);
    for (int n = 0; n < N; n++) s[n] = -0.1 * n;
    t_check("decay a=0.1: R = closed form (relative)", fabs(resolution_R(s, N) / geometric_R(exp(-0.1), N) - 1), 1e-12);
    for (int n = 0; n < N; n++) s[n] = -5.0 * n + 1000; // a huge constant: exp would overflow without the shift
    double steep = resolution_R(s, N);
    t_check("steep decay a=5 (+1000): R = closed form (relative)", fabs(steep / geometric_R(exp(-5.0), N) - 1), 1e-12);
    t_true("steep decay: R > 0.97 (high)", steep > 0.97);
    for (int n = 0; n < N; n++) s[n] = 0.05 * n;
    t_true("rising profile: R < 0", resolution_R(s, N) < 0);
    t_true("N < 2: NaN", isnan(resolution_R(s, 1)));
}

static grape_model *make(int H, int D) {
    grape_model_config cfg;
    grape_model_preset(&cfg, "tiny");
    cfg.n_layer = 1, cfg.n_embd = H * D, cfg.n_head = H, cfg.max_batch = cfg.max_seq = 1;
    grape_model *m = NULL;
    return grape_model_create(&m, &cfg) ? NULL : m;
}

// q = k = 0 and an ALiBi bias: every score is -slope_h (t - j), so s[n] = -slope_h n exactly.
static void test_alibi(int window) {
    enum { H = 2, D = 4, T = 100 };
    char label[128];
    grape_model *m = make(H, D);
    grape_attn_opts o = {0.0f, window};
    resolution_acc r;
    float q[T * H * D] = {0}, slope[H] = {0.5f, 0.125f};
    grape_bias_factors f = {.kind = GRAPE_BIAS_ALIBI, .B = 1, .T = T, .H = H, .ch = {[BF_SLOPE] = slope}};
    int ok = m && !grape_model_set_attn_opts(m, &o) && !resolution_create(&r, m, T) &&
             !resolution_observe(&r, 0, q, q, &f, T) && !resolution_observe(&r, 0, q, q, &f, T);
    int N = window ? window : T; // BCA: a query sees keys up to W - 1 back
    double want = 0.5 * (geometric_R(exp(-0.5), N) + geometric_R(exp(-0.125), N));
    snprintf(label, sizeof label, "alibi profile, %s: R = mean over heads of the closed form", window ? "BCA" : "full");
    t_check(label, ok ? fabs(resolution_layer(&r, 0) - want) : INFINITY, 1e-9);
    snprintf(label, sizeof label, "alibi, %s: distances seen = %d, pairs at distance n = windows x queries", 
             window ? "BCA" : "full", N);
    t_true(label, ok && r.count[N - 1] > 0 && (N == T || r.count[N] == 0) && r.count[0] == 2 * T &&
                      (window || r.count[T - 1] == 2));
    if (ok) resolution_free(&r);
    grape_model_free(m);
}

// Random q, k, no bias: the accumulator's R equals Eq. 11 + Eq. 3 computed directly in double.
static void test_random(void) {
    enum { H = 2, D = 8, T = 150 };
    t_rng rng = t_seed(3);
    grape_model *m = make(H, D);
    float *q = malloc(sizeof(float) * T * H * D), *k = malloc(sizeof(float) * T * H * D);
    t_fill(q, T * H * D, 1.0, &rng);
    t_fill(k, T * H * D, 1.0, &rng);
    resolution_acc r;
    int ok = m && !resolution_create(&r, m, T) && !resolution_observe(&r, 0, q, k, NULL, T);
    double want = 0, scale = 1 / sqrt((double)D), s[T];
    for (int h = 0; h < H; h++) {
        for (int n = 0; n < T; n++) {
            double acc = 0;
            for (int i = n; i < T; i++)
                for (int d = 0; d < D; d++) acc += (double)q[(i * H + h) * D + d] * k[((i - n) * H + h) * D + d];
            s[n] = scale * acc / (T - n);
        }
        want += resolution_R(s, T) / H;
    }
    t_check("random q, k: R == brute-force Eq. 11 + Eq. 3 (abs)", ok ? fabs(resolution_layer(&r, 0) - want) : INFINITY,
            1e-5);
    t_check("one layer: mean over layers == the layer", ok ? fabs(resolution_mean(&r) - resolution_layer(&r, 0)) : 1, 0);
    if (ok) resolution_free(&r);
    free(q);
    free(k);
    grape_model_free(m);
}

int main(void) {
    test_profiles();
    test_alibi(0);
    test_alibi(16);
    test_random();
    return t_finish();
}
