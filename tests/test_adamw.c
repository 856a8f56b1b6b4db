// test_adamw.c — AdamW against a hand-written double reference (torch.optim.AdamW's update), no decay on
// RMSNorm-like groups, the warmup + cosine schedule at hand-computed points, and global-norm clipping.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/adamw.h"
#include "util.h"

static const grape_adamw_config H = {.lr = 1e-3,
                                .min_lr_ratio = 0.1,
                                .warmup = 10,
                                .decay_steps = 100,
                                .beta1 = 0.9,
                                .beta2 = 0.95,
                                .eps = 1e-8,
                                .weight_decay = 0.1,
                                .clip = 1.0};

static void test_schedule(void) {
    // Hand values: warmup (s+1)/10 * 1e-3; cosine from 1e-3 at s=10 to 1e-4 at s=100; the midpoint s=55 is
    // 5.5e-4; at s=25 the progress is 15/90 = 1/6, so lr = 1e-4 + 9e-4 (1 + cos(pi/6)) / 2.
    static const struct {
        int64_t step;
        double lr;
    } want[] = {{0, 1e-4},    {4, 5e-4},   {9, 1e-3},    {10, 1e-3},
                {55, 5.5e-4}, {100, 1e-4}, {1000, 1e-4}, {25, 1e-4 + 9e-4 * 0.5 * (1 + 0.86602540378443865)}};
    double worst = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        worst = fmax(worst, fabs(adamw_lr(&H, want[i].step) - want[i].lr) / want[i].lr);
    t_check("schedule: warmup and cosine at hand-computed steps", worst, 1e-14);
    grape_adamw_config flat = H;
    flat.decay_steps = flat.warmup;
    t_check("schedule: decay_steps == warmup goes straight to the floor", fabs(adamw_lr(&flat, 10) - 1e-4), 1e-18);
}

// Double reference of one step on one range (torch.optim.AdamW, PyTorch 1.13).
static void ref_step(double *p, double *m, double *v, const double *g, size_t n, double lr, double wd, double gs,
                     int64_t t) {
    double bc1 = 1 - pow(H.beta1, (double)t), bc2 = 1 - pow(H.beta2, (double)t);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * gs;
        p[i] *= 1 - lr * wd;
        m[i] = H.beta1 * m[i] + (1 - H.beta1) * gi;
        v[i] = H.beta2 * v[i] + (1 - H.beta2) * gi * gi;
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + H.eps);
    }
}

static void test_step_vs_reference(void) {
    enum { N = 1000, GAIN = 64 }; // [0, 64): an RMSNorm gain (no decay); [64, N): a weight matrix (decay)
    const adamw_group groups[2] = {{0, GAIN, 0}, {GAIN, N - GAIN, 1}};
    float p[N], m[N] = {0}, v[N] = {0}, g[N];
    double pd[N], md[N] = {0}, vd[N] = {0}, gd[N];
    t_rng r = t_seed(5);
    t_fill(p, N, 1.0, &r);
    for (int i = 0; i < N; i++) pd[i] = p[i];
    double worst_p = 0, worst_m = 0, worst_v = 0, scale_err = 0;
    for (int64_t t = 1; t <= 5; t++) {
        t_fill(g, N, t == 3 ? 0.01 : 0.5, &r); // step 3 is below the clip threshold, the others above
        for (int i = 0; i < N; i++) gd[i] = g[i];
        double norm = grad_global_norm(g, N), ref_norm = 0;
        for (int i = 0; i < N; i++) ref_norm += gd[i] * gd[i];
        ref_norm = sqrt(ref_norm);
        double gs = grad_clip_scale(norm, H.clip), ref_gs = ref_norm > 1.0 ? 1.0 / (ref_norm + 1e-6) : 1.0;
        scale_err = fmax(scale_err, fabs(gs - ref_gs) / ref_gs);
        double lr = adamw_lr(&H, t - 1);
        adamw_step(p, m, v, g, groups, 2, lr, gs, t, &H);
        ref_step(pd, md, vd, gd, GAIN, lr, 0.0, ref_gs, t);
        ref_step(pd + GAIN, md + GAIN, vd + GAIN, gd + GAIN, N - GAIN, lr, H.weight_decay, ref_gs, t);
        worst_p = fmax(worst_p, t_rel_err(p, pd, N));
        worst_m = fmax(worst_m, t_rel_err(m, md, N));
        worst_v = fmax(worst_v, t_rel_err(v, vd, N));
    }
    t_check("step: clip scale vs double (clipped and unclipped steps)", scale_err, 1e-12);
    t_check("step: params vs double reference over 5 steps", worst_p, 2e-6);
    t_check("step: first moment vs double reference", worst_m, 2e-6);
    t_check("step: second moment vs double reference", worst_v, 2e-6);
}

static void test_decay_groups(void) {
    // With zero gradient and zero moments only the decoupled decay acts: gains stay, weights shrink by 1-lr*wd.
    float p[8] = {1, 2, 3, 4, 1, 2, 3, 4}, m[8] = {0}, v[8] = {0}, g[8] = {0};
    const adamw_group groups[2] = {{0, 4, 0}, {4, 4, 1}};
    adamw_step(p, m, v, g, groups, 2, 0.01, 1.0, 1, &H);
    double err = 0;
    for (int i = 0; i < 4; i++) err = fmax(err, fabs(p[i] - (i + 1.0)));
    t_check("decay: no decay on the norm group (bit-exact)", err, 0);
    err = 0;
    for (int i = 4; i < 8; i++) err = fmax(err, fabs(p[i] - (i - 3.0) * (1 - 0.01 * 0.1)) / (i - 3.0));
    t_check("decay: decayed group shrinks by 1 - lr*wd", err, 1e-7);
}

static void test_norm(void) {
    float g2[2] = {3, 4};
    t_check("clip: norm of (3,4) is 5", fabs(grad_global_norm(g2, 2) - 5), 1e-15);
    t_check("clip: scale to norm 1", fabs(grad_clip_scale(5, 1.0) - 1.0 / (5 + 1e-6)), 1e-15);
    t_check("clip: no scaling below the limit", fabs(grad_clip_scale(0.5, 1.0) - 1), 0);
    t_check("clip: disabled when clip <= 0", fabs(grad_clip_scale(50, 0) - 1), 0);
    size_t n = 3000001;
    float *g = malloc(n * sizeof *g);
    t_rng r = t_seed(9);
    t_fill(g, n, 1.0, &r);
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    double one = grad_global_norm(g, n);
    omp_set_num_threads(threads > 1 ? threads : 2);
    double many = grad_global_norm(g, n);
    omp_set_num_threads(threads);
    t_check("norm: 3M floats vs sequential double sum", fabs(many - sqrt(ref)) / sqrt(ref), 1e-12);
    t_check("norm: bit-identical for 1 and several threads", fabs(one - many), 0);
    free(g);
}

int main(void) {
    test_schedule();
    test_step_vs_reference();
    test_decay_groups();
    test_norm();
    return t_finish();
}
