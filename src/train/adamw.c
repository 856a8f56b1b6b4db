// adamw.c — see adamw.h.
#include "train/adamw.h"

#include <math.h>

#include "core/prof.h"

#define NORM_CHUNKS 256

double adamw_lr(const grape_adamw_config *h, int64_t step) {
    if (step < h->warmup) return h->lr * (double)(step + 1) / (double)h->warmup;
    double floor_lr = h->lr * h->min_lr_ratio, span = (double)(h->decay_steps - h->warmup);
    double progress = span > 0 ? fmin(1.0, (double)(step - h->warmup) / span) : 1.0;
    return floor_lr + (h->lr - floor_lr) * 0.5 * (1.0 + cos(M_PI * progress));
}

double grad_global_norm(const float *g, size_t n) {
    double part[NORM_CHUNKS];
    size_t chunk = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
        part[c] = s;
    }
    double total = 0;
    for (int c = 0; c < NORM_CHUNKS; c++) total += part[c];
    return sqrt(total);
}

double grad_clip_scale(double norm, double clip) {
    if (clip <= 0) return 1.0;
    double s = clip / (norm + 1e-6);
    return s < 1.0 ? s : 1.0;
}

// p, m, v, g: (n) — torch.optim.AdamW (PyTorch 1.13 _single_tensor_adamw), gradient pre-scaled by gscale:
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
static void adamw_range(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                        double lr, double wd, double gscale, int64_t t, const grape_adamw_config *h) {
    const float decay = (float)(1.0 - lr * wd), b1 = (float)h->beta1, b2 = (float)h->beta2;
    const float step = (float)(lr / (1.0 - pow(h->beta1, (double)t)));
    const float inv_bc2 = (float)(1.0 / sqrt(1.0 - pow(h->beta2, (double)t))), eps = (float)h->eps, gs = (float)gscale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) * inv_bc2 + eps);
    }
}

void adamw_step(float *p, float *m, float *v, const float *g, const adamw_group *groups, int n_groups, double lr,
                double gscale, int64_t t, const grape_adamw_config *h) {
    prof_op prof_prev = prof_enter(PROF_ADAMW);
    for (int k = 0; k < n_groups; k++) {
        size_t o = groups[k].offset;
        adamw_range(p + o, m + o, v + o, g + o, groups[k].n, lr, groups[k].decay ? h->weight_decay : 0.0, gscale, t, h);
    }
    prof_leave(prof_prev);
}
