// linear.c — bias-free linear layer y = x W^T (W stored (out,in) as nn.Linear), through the GEMM of core/gemm.h.
#include "core/gemm.h"
#include "model/layers.h"

// y: (N,out); x: (N,in); w: (out,in)
grape_status linear_forward(float *y, const float *x, const float *w, int64_t N, int in, int out) {
    return gemm(y, x, w, N, out, in, 0, 1, 0.0f);
}

// dx += dy W; dw += dy^T x. dx, x: (N,in); dw, w: (out,in); dy: (N,out)
grape_status linear_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int64_t N,
                             int in, int out) {
    grape_status st = gemm(dw, dy, x, out, in, N, 1, 0, 1.0f);
    if (st || !dx) return st;
    return gemm(dx, dy, w, N, in, out, 0, 0, 1.0f);
}
