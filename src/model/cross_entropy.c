// cross_entropy.c — fused softmax + cross-entropy: loss = mean_n (lse(z_n) - z_n[y_n]),
// dz = (softmax(z) - onehot(y)) / N. Only the row log-sum-exp is stored.
#include <math.h>

#include "core/prof.h"
#include "core/simd.h"
#include "model/layers.h"

// loss: scalar (mean over N rows, accumulated in double in row order after the parallel pass, so the sum does
// not depend on which thread finished first); lse: (N); logits: (N,V); targets: (N)
void cross_entropy_forward(double *loss, float *lse, const float *logits, const uint8_t *targets, int64_t N, int V) {
    prof_op prof_prev = prof_enter(PROF_CE);
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)V))
    for (int64_t n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * (size_t)V;
        float mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
#pragma omp simd reduction(+ : s)
        for (int v = 0; v < V; v++) s += f1_exp(z[v] - mx);
        lse[n] = mx + logf(s);
    }
    double total = 0;
    for (int64_t n = 0; n < N; n++) total += (double)lse[n] - (double)logits[(size_t)n * (size_t)V + targets[n]];
    *loss = total / (double)N;
    prof_leave(prof_prev);
}

// dlogits += dloss (exp(z - lse) - [v == y]) / N. dlogits, logits: (N,V); lse, targets: (N)
void cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const uint8_t *targets,
                            float dloss, int64_t N, int V) {
    prof_op prof_prev = prof_enter(PROF_CE);
    float scale = dloss / (float)N;
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)V))
    for (int64_t n = 0; n < N; n++) {
        size_t row = (size_t)n * (size_t)V;
        const float *z = logits + row;
        float *dz = dlogits + row, l = lse[n];
#pragma omp simd
        for (int v = 0; v < V; v++) dz[v] += scale * f1_exp(z[v] - l);
        dz[targets[n]] -= scale;
    }
    prof_leave(prof_prev);
}
