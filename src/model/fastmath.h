// fastmath.h — a branch-free float exp that compilers vectorize inside the model's elementwise loops (libm's
// expf is a call, so loops around it stay scalar: SwiGLU and softmax spent ~8% of a training step there).
#ifndef GRAPE_MODEL_FASTMATH_H
#define GRAPE_MODEL_FASTMATH_H

#include <stdint.h>

// e^x for float x, max relative error ~2e-7 on [-87, 88] (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6
// polynomial for e^r, 2^n put into the exponent bits). Finite inputs are clamped, so the result is finite and
// > 0; NaN is returned as NaN (the clamp sends it to -87 first, so the float-to-int conversion below never sees a
// NaN, which would be undefined behaviour) and the callers' non-finite checks see it.
static inline float exp_fast(float xin) {
    float x = xin > -87.0f ? xin : -87.0f; // NaN compares false: -87
    x = x < 88.0f ? x : 88.0f;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; // round(x / ln2) via the 1.5*2^23 trick
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;             // Cody-Waite: ln2 split in two parts
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } s = {.i = ((int32_t)n + 127) << 23};
    return xin == xin ? p * s.f : xin;
}

#endif
