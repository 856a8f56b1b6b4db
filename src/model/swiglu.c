// swiglu.c — SwiGLU gate y = silu(a) ⊙ b (Shazeer 2020, "GLU Variants", arXiv 2002.05202; the MLP of
// github.com/model-architectures/GRAPE model/llama-mha-*.py).
#include <math.h>

#include "core/mathx.h"
#include "core/prof.h"
#include "core/simd.h"
#include "model/layers.h"

// y = a σ(a) b. y: (N,F); h: (N,2F) = [a | b]
void swiglu_forward(float *y, const float *h, int64_t N, int F) {
    prof_op prof_prev = prof_enter(PROF_SWIGLU);
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)F))
    for (int64_t n = 0; n < N; n++) {
        const float *a = h + (size_t)n * 2 * (size_t)F, *b = a + F;
        float *yn = y + (size_t)n * (size_t)F;
#pragma omp simd
        for (int i = 0; i < F; i++) yn[i] = a[i] / (1.0f + f1_exp(-a[i])) * b[i];
    }
    prof_leave(prof_prev);
}

// da = dy b σ(a)(1 + a(1 - σ(a))),  db = dy silu(a). dh, h: (N,2F); dy: (N,F)
void swiglu_backward(float *dh, const float *dy, const float *h, int64_t N, int F) {
    prof_op prof_prev = prof_enter(PROF_SWIGLU);
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)F))
    for (int64_t n = 0; n < N; n++) {
        size_t row = (size_t)n * 2 * (size_t)F;
        const float *a = h + row, *b = a + F, *dyn = dy + (size_t)n * (size_t)F;
        float *da = dh + row, *db = da + F;
#pragma omp simd
        for (int i = 0; i < F; i++) {
            float s = 1.0f / (1.0f + f1_exp(-a[i]));
            da[i] += dyn[i] * b[i] * s * (1.0f + a[i] * (1.0f - s));
            db[i] += dyn[i] * a[i] * s;
        }
    }
    prof_leave(prof_prev);
}
