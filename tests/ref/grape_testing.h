// grape_testing.h — the test oracles: functions the tests (C, and tests/torch through ctypes) check the library
// against or drive it with, that users of grape.h do not need. They live in libgrape_testing.a / .so (tests/ref/),
// never in the installed libgrape; the rest of tests/ref/ (lift_*_ref.h, attention_ref.h) is the reference path in
// double that the C tests call directly.
#ifndef GRAPE_TESTING_H
#define GRAPE_TESTING_H

#include "grape.h"

// Exported from libgrape_testing.so (the library is built with -fvisibility=hidden).
#define GRAPE_TESTING_API __attribute__((visibility("default")))

// General rank-2 GRAPE-M plane (GRAPE §2 / App. I Rodrigues): G(n) = exp(n omega L), L = a b^T - b a^T, applied in
// O(D) without forming G: y = x + f1 (a v - b u) + f2 [gamma (a v + b u) - beta a u - alpha b v], u = a.x, v = b.x,
// alpha = |a|^2, beta = |b|^2, gamma = a.b, s^2 = alpha beta - gamma^2, z = n omega s, f1 = sin z / s,
// f2 = (1 - cos z)/s^2 (series in z^2 below |z| = 1e-2, so s -> 0 is exact and smooth). Scalars in double.
// y, x: (N,D); a, b: (D); pos: (N) positions n (any real). y == x is allowed.
GRAPE_TESTING_API grape_status grape_plane_forward(float *y, const float *x, const float *a, const float *b,
                                                   float omega, const double *pos, int N, int D);
// dx += G(n)^T dy; da, db (D) and *domega accumulate. Any of dx, da, db, domega may be NULL.
GRAPE_TESTING_API grape_status grape_plane_backward(float *dx, float *da, float *db, float *domega, const float *dy,
                                                    const float *x, const float *a, const float *b, float omega,
                                                    const double *pos, int N, int D);

// Materialise the bias of batch b, head h for queries [t0, t0+Tq) and keys [j0, j0+Tk) (indices into T): the closed
// forms of the kind table in double. bias: (Tq,Tk); -INFINITY where key > query.
GRAPE_TESTING_API void grape_bias_block(float *bias, const grape_bias_factors *f, int b, int h, int t0, int Tq, int j0,
                                        int Tk);
// g += d/dfactors of sum(dbias * bias) for the same block.
GRAPE_TESTING_API void grape_bias_block_backward(grape_bias_grads *g, const float *dbias, const grape_bias_factors *f,
                                                 int b, int h, int t0, int Tq, int j0, int Tk);

#endif
