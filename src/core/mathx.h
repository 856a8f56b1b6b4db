// mathx.h — numerically safe scalar functions shared by every kernel (double and float forms).
#ifndef GRAPE_CORE_MATHX_H
#define GRAPE_CORE_MATHX_H

#include <math.h>

static inline double sigmoid_d(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static inline float sigmoid_f(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
// log sigmoid(x) = -softplus(-x), without overflow for large |x|.
static inline double log_sigmoid_d(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static inline float log_sigmoid_f(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }
// softplus(x) = log(1 + e^x).
static inline double softplus_d(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static inline float softplus_f(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

// sin and cos of n*theta with the product formed and range-reduced in double, so angles at positions
// near 1e6 keep full float precision (fp32 n*theta would lose ~0.06 rad there).
static inline void angle_sincos(double n, double theta, double *s, double *c) {
    double a = remainder(n * theta, 2.0 * M_PI);
    *s = sin(a);
    *c = cos(a);
}

#endif
