// kv_shift.c — KV-shift (official GRAPE code, kv_shift_torch.py; FoX-Pro ShiftLinear):
// k'_t = α_t o_{t−1} + (1 − α_t) o_t with o_{−1} = 0 and α_t = σ(logit_t) per head, in fp32.
#include "core/error.h"
#include "core/mathx.h"
#include "grape.h"

#define SHIFT_PAR_MIN 65536

static grape_status check_dims(const char *fn, const void *a, const void *b, const void *c, int B, int T, int H,
                               int D) {
    if (!a || !b || !c) return error_fail(GRAPE_ERR_ARG, "%s: NULL argument", fn);
    if (B < 1 || T < 1 || H < 1 || D < 1)
        return error_fail(GRAPE_ERR_ARG, "%s: dims must be >= 1 (B=%d T=%d H=%d D=%d)", fn, B, T, H, D);
    return GRAPE_OK;
}

// y_t = o_t + α_t (o_{t−1} − o_t), o_{−1} = 0. prev: o_{t−1} or NULL at t = 0; y, o: (D)
static inline void shift_row(float *y, const float *prev, const float *o, float alpha, int D) {
#pragma omp simd
    for (int d = 0; d < D; d++) y[d] = (1.0f - alpha) * o[d] + (prev ? alpha * prev[d] : 0.0f);
}

// y, o: (B,T,H,D); shift_logit: (B,T,H)
grape_status grape_kv_shift_forward(float *y, const float *o, const float *shift_logit, int B, int T, int H, int D) {
    grape_status st = check_dims("grape_kv_shift_forward", y, o, shift_logit, B, T, H, D);
    if (st) return st;
    size_t HD = (size_t)H * (size_t)D, rows = (size_t)B * (size_t)T;
#pragma omp parallel for if (rows * HD > SHIFT_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *prev = r % (size_t)T ? o + (r - 1) * HD : NULL;
        for (int h = 0; h < H; h++) {
            size_t off = r * HD + (size_t)h * (size_t)D;
            shift_row(y + off, prev ? prev + (size_t)h * (size_t)D : NULL, o + off,
                      sigmoid_f(shift_logit[r * (size_t)H + (size_t)h]), D);
        }
    }
    return GRAPE_OK;
}

// do_t += (1 − α_t) dy_t + α_{t+1} dy_{t+1}; dα_t = Σ_d dy_t (o_{t−1} − o_t); dlogit_t += α_t (1 − α_t) dα_t.
// do_, dy, o: (B,T,H,D); dshift_logit, shift_logit: (B,T,H)
grape_status grape_kv_shift_backward(float *do_, float *dshift_logit, const float *dy, const float *o,
                                     const float *shift_logit, int B, int T, int H, int D) {
    grape_status st = check_dims("grape_kv_shift_backward", dy, o, shift_logit, B, T, H, D);
    if (st) return st;
    size_t HD = (size_t)H * (size_t)D, rows = (size_t)B * (size_t)T;
#pragma omp parallel for if (rows * HD > SHIFT_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        int has_prev = r % (size_t)T != 0, has_next = (r + 1) % (size_t)T != 0;
        for (int h = 0; h < H; h++) {
            size_t off = r * HD + (size_t)h * (size_t)D, ih = r * (size_t)H + (size_t)h;
            float a = sigmoid_f(shift_logit[ih]), an = has_next ? sigmoid_f(shift_logit[ih + (size_t)H]) : 0.0f;
            const float *g = dy + off, *gn = dy + off + (has_next ? HD : 0), *op = o + off - (has_prev ? HD : 0);
            float da = 0;
#pragma omp simd reduction(+ : da)
            for (int d = 0; d < D; d++) {
                if (do_) do_[off + d] += (1.0f - a) * g[d] + an * gn[d];
                da += g[d] * ((has_prev ? op[d] : 0.0f) - o[off + d]);
            }
            if (dshift_logit) dshift_logit[ih] += a * (1.0f - a) * da;
        }
    }
    return GRAPE_OK;
}

// y, o, prev: (B,H,D); shift_logit: (B,H)
grape_status grape_kv_shift_step(float *y, float *prev, const float *o, const float *shift_logit, int B, int H,
                                 int D) {
    grape_status st = check_dims("grape_kv_shift_step", y, prev, o, B, 1, H, D);
    if (st || !shift_logit) return st ? st : error_fail(GRAPE_ERR_ARG, "grape_kv_shift_step: shift_logit NULL");
    size_t n = (size_t)B * (size_t)H;
    for (size_t i = 0; i < n; i++) {
        float a = sigmoid_f(shift_logit[i]);
        for (size_t d = i * (size_t)D; d < (i + 1) * (size_t)D; d++) {
            float cur = o[d]; // read before y (which may alias o) is written
            y[d] = (1.0f - a) * cur + a * prev[d];
            prev[d] = cur;
        }
    }
    return GRAPE_OK;
}
