// test_kv_shift.c — KV-shift (official GRAPE code, kv_shift_torch.py): forward vs the double twin kv_shift_ref,
// backward vs finite differences, streaming one token at a time, and the two limits α → 0 (identity) and α → 1
// (pure shift).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"
#include "ref/lift_bias_ref.h"
#include "util.h"

enum { B = 2, T = 7, H = 3, D = 5 };
#define N4 ((size_t)B * T * H * D)
#define N3 ((size_t)B * T * H)

typedef struct {
    const double *W;
} loss_ctx;

// L(x) = Σ W ⊙ y with x = [o | logit].
static double loss(const double *x, void *ctx) {
    static double y[N4];
    kv_shift_ref(y, x, x + N4, B, T, H, D);
    double s = 0;
    for (size_t i = 0; i < N4; i++) s += ((loss_ctx *)ctx)->W[i] * y[i];
    return s;
}

int main(void) {
    static float o[N4], logit[N3], y[N4], dy[N4], dx[N4 + N3];
    static double x[N4 + N3], yr[N4], W[N4], fd[N4 + N3], gd[N4 + N3];
    t_rng r = t_seed(8);
    t_fill(o, N4, 1.0, &r);
    t_fill(logit, N3, 2.0, &r);
    t_fill(dy, N4, 1.0, &r);
    for (size_t i = 0; i < N4; i++) x[i] = o[i], W[i] = dy[i];
    for (size_t i = 0; i < N3; i++) x[N4 + i] = logit[i];

    t_true("forward ok", grape_kv_shift_forward(y, o, logit, B, T, H, D) == GRAPE_OK);
    kv_shift_ref(yr, x, x + N4, B, T, H, D);
    t_check("forward vs double reference", t_rel_err(y, yr, N4), 1e-6);

    for (size_t i = 0; i < N4 + N3; i++) dx[i] = 0.5f; // the backward accumulates
    t_true("backward ok", grape_kv_shift_backward(dx, dx + N4, dy, o, logit, B, T, H, D) == GRAPE_OK);
    for (size_t i = 0; i < N4 + N3; i++) gd[i] = dx[i] - 0.5;
    loss_ctx c = {W};
    t_fd_grad(fd, loss, x, N4 + N3, 1e-3, &c);
    t_check("backward do vs finite differences", t_rel_err_dd(gd, fd, N4), 1e-4);
    t_check("backward dlogit vs finite differences", t_rel_err_dd(gd + N4, fd + N4, N3), 1e-4);

    // Streaming: one token per call, y written over a copy of o (aliasing allowed), prev carried across calls.
    static float prev[B * H * D], tok[B * H * D], ys[N4], lt[B * H];
    memset(prev, 0, sizeof prev);
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) {
            memcpy(tok + (size_t)b * H * D, o + ((size_t)b * T + t) * H * D, sizeof(float) * H * D);
            memcpy(lt + (size_t)b * H, logit + ((size_t)b * T + t) * H, sizeof(float) * H);
        }
        grape_kv_shift_step(tok, prev, tok, lt, B, H, D);
        for (int b = 0; b < B; b++)
            memcpy(ys + ((size_t)b * T + t) * H * D, tok + (size_t)b * H * D, sizeof(float) * H * D);
    }
    t_check("streaming one token at a time equals the full forward", t_rel_err_ff(ys, y, N4), 1e-7);

    // α → 0 keeps o; α → 1 shifts by one token with o_{-1} = 0.
    static float lo[N3], hi[N3], ya[N4], yb[N4];
    for (size_t i = 0; i < N3; i++) lo[i] = -INFINITY, hi[i] = INFINITY;
    grape_kv_shift_forward(ya, o, lo, B, T, H, D);
    grape_kv_shift_forward(yb, o, hi, B, T, H, D);
    double e0 = 0, e1 = 0;
    for (size_t i = 0; i < N4; i++) {
        size_t row = i / ((size_t)H * D);
        e0 = fmax(e0, fabs(ya[i] - o[i]));
        e1 = fmax(e1, fabs(yb[i] - (row % T ? o[i - (size_t)H * D] : 0.0f)));
    }
    t_check("alpha = 0: identity (max abs)", e0, 0.0);
    t_check("alpha = 1: previous token, zero at t = 0 (max abs)", e1, 0.0);
    t_true("NULL input rejected", grape_kv_shift_forward(y, NULL, logit, B, T, H, D) == GRAPE_ERR_ARG);
    t_true("T = 0 rejected", grape_kv_shift_backward(dx, NULL, dy, o, logit, B, 0, H, D) == GRAPE_ERR_ARG);
    return t_finish();
}
