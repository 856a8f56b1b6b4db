// layers_ref.c — the double-precision twins of the model's layer kernels and of gemm (layers_ref.h): the test
// oracles of src/model/{rmsnorm,swiglu,embedding,cross_entropy,linear}.c and src/core/gemm.c, written the plain way.
#include <math.h>
#include <stddef.h>

#include "core/mathx.h"
#include "layers_ref.h"

// c[i][j] = sum_k op(a)[i][k] op(b)[k][j] + beta c[i][j], accumulated in double.
void gemm_ref(double *c, const double *a, const double *b, int64_t M, int64_t N, int64_t K, int trans_a,
              int trans_b, double beta) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                double x = trans_a ? a[k * M + i] : a[i * K + k];
                double y = trans_b ? b[j * K + k] : b[k * N + j];
                s += x * y;
            }
            c[i * N + j] = s + (beta != 0 ? beta * c[i * N + j] : 0);
        }
}

void rmsnorm_forward_ref(double *out, const double *x, const double *g, int64_t N, int C, double eps) {
    for (int64_t n = 0; n < N; n++) {
        const double *xn = x + (size_t)n * (size_t)C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += xn[c] * xn[c];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * (size_t)C + c] = g[c] * xn[c] * r;
    }
}

void swiglu_forward_ref(double *y, const double *h, int64_t N, int F) {
    for (int64_t n = 0; n < N; n++) {
        const double *a = h + (size_t)n * 2 * (size_t)F, *b = a + F;
        for (int i = 0; i < F; i++) y[(size_t)n * (size_t)F + i] = a[i] * sigmoid_d(a[i]) * b[i];
    }
}

void embedding_forward_ref(double *x, const uint8_t *tokens, const double *wte, int64_t N, int C) {
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) x[(size_t)n * (size_t)C + c] = wte[(size_t)tokens[n] * (size_t)C + c];
}

double cross_entropy_forward_ref(const double *logits, const uint8_t *targets, int64_t N, int V) {
    double total = 0;
    for (int64_t n = 0; n < N; n++) {
        const double *z = logits + (size_t)n * (size_t)V;
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, z[v]);
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        total += mx + log(s) - z[targets[n]];
    }
    return total / (double)N;
}

void linear_forward_ref(double *y, const double *x, const double *w, int64_t N, int in, int out) {
    gemm_ref(y, x, w, N, out, in, 0, 1, 0.0);
}
