// test_rot_util.h — fixture shared by the rotation tests: an encoding with random (non-init) parameters, random
// inputs in float and double, and the double reference loss Σ w·G(n)x for finite differences.
#ifndef GRAPE_TESTS_TEST_ROT_UTIL_H
#define GRAPE_TESTS_TEST_ROT_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"
#include "ref/lift_rot_ref.h"
#include "pe/pe_internal.h"
#include "util.h"

typedef struct {
    grape_pe *pe;
    int B, T;
    grape_side side;
    grape_positions pos; // pos.phase points at ph (grape-m-ctx)
    size_t nx, np, nph;
    float *xf, *pf, *wf, *yf, *dx, *dp;
    double *x, *p, *w, *y, *ph, *dph;
} rot_fix;

static const char *const rot_kind_names[GRAPE_ROT_COUNT] = {"nope",    "rope",        "xpos",         "grape-m",
                                                            "grape-m-ctx", "grape-m-basis", "grape-m-nc"};

// Learned parameters away from init so every gradient is generic: λ += N(0, 0.1·scale), skews N(0, 0.3).
static inline void rot_fix_perturb(rot_fix *f, t_rng *rng) {
    const rot_state *r = f->pe->rot;
    double scale = rot_freq_scale(r);
    size_t nf = (size_t)r->nset * r->n_freq;
    for (size_t i = 0; i < f->np; i++) f->pf[i] += (float)((i < nf ? 0.1 * scale : 0.3) * t_normal(rng));
}

// Phase Φ: exclusive running sums of ω ∈ (0, 1), as grape_phase_forward makes them.
static inline void rot_fix_phase(rot_fix *f, t_rng *rng) {
    size_t hp = (size_t)f->pe->rot->phase_heads;
    for (size_t b = 0; b < (size_t)f->B; b++)
        for (size_t h = 0; h < hp; h++) {
            double s = 0;
            for (size_t t = 0; t < (size_t)f->T; t++) {
                f->ph[(b * (size_t)f->T + t) * hp + h] = s;
                s += t_uniform(rng);
            }
        }
}

static inline int rot_fix_create(rot_fix *f, const grape_pe_config *cfg, int B, int T, int64_t pos0, grape_side side,
                          t_rng *rng) {
    memset(f, 0, sizeof *f);
    if (grape_pe_create(&f->pe, cfg)) {
        printf("# create failed: %s\n", grape_last_error());
        return 0;
    }
    f->B = B, f->T = T, f->side = side;
    f->nx = (size_t)B * T * cfg->n_heads * cfg->head_dim;
    f->np = grape_pe_num_params(f->pe);
    f->nph = (size_t)B * T * f->pe->rot->phase_heads;
    f->xf = calloc(f->nx, sizeof(float)), f->wf = calloc(f->nx, sizeof(float));
    f->yf = calloc(f->nx, sizeof(float)), f->dx = calloc(f->nx, sizeof(float));
    f->pf = calloc(f->np + 1, sizeof(float)), f->dp = calloc(f->np + 1, sizeof(float));
    f->x = calloc(f->nx, sizeof(double)), f->w = calloc(f->nx, sizeof(double)), f->y = calloc(f->nx, sizeof(double));
    f->p = calloc(f->np + 1, sizeof(double));
    f->ph = calloc(f->nph, sizeof(double)), f->dph = calloc(f->nph, sizeof(double));
    t_fill(f->xf, f->nx, 1.0, rng);
    t_fill(f->wf, f->nx, 1.0, rng);
    for (size_t i = 0; i < f->nx; i++) f->x[i] = f->xf[i], f->w[i] = f->wf[i];
    grape_pe_init_params(f->pe, f->pf, 1);
    rot_fix_perturb(f, rng);
    for (size_t i = 0; i < f->np; i++) f->p[i] = f->pf[i];
    rot_fix_phase(f, rng);
    f->pos = (grape_positions){.pos0 = pos0, .xpos_anchor = (double)(pos0 + T / 2), .phase = f->ph};
    return grape_pe_prepare(f->pe, f->pf) == GRAPE_OK;
}

static inline void rot_fix_free(rot_fix *f) {
    grape_pe_free(f->pe);
    free(f->xf), free(f->wf), free(f->yf), free(f->dx), free(f->pf), free(f->dp);
    free(f->x), free(f->w), free(f->y), free(f->p), free(f->ph), free(f->dph);
}

// Σ w·y with y the double reference of the current x, p, ph (the finite-difference objective).
static inline double rot_fix_loss(const double *v, void *ctx) {
    (void)v;
    rot_fix *f = ctx;
    lift_rot_forward_ref(f->y, f->x, f->pe, f->p, &f->pos, f->side, f->B, f->T);
    double s = 0;
    for (size_t i = 0; i < f->nx; i++) s += f->w[i] * f->y[i];
    return s;
}

// 4-point finite differences of rot_fix_loss on at most `cap` evenly spread coordinates of v (n entries);
// returns the normwise relative error of got (float gradient) against them.
static inline double rot_fix_fd_err(rot_fix *f, double *v, const float *got, size_t n, double h, size_t cap) {
    size_t step = n > cap ? (n + cap - 1) / cap : 1, m = 0;
    double *fd = calloc(cap + 1, sizeof(double));
    float *sel = calloc(cap + 1, sizeof(float));
    for (size_t i = 0; i < n; i += step, m++) {
        t_fd_grad(fd + m, rot_fix_loss, v + i, 1, h, f);
        sel[m] = got[i];
    }
    double e = t_rel_err(sel, fd, m);
    free(fd);
    free(sel);
    return e;
}

#endif
