// layers_ref.h — reference twins in double of the model's layer kernels (model/layers.h) and of gemm
// (core/gemm.h): same contracts, all operands in double, no threads or vectors. The test oracles.
#ifndef GRAPE_REF_LAYERS_REF_H
#define GRAPE_REF_LAYERS_REF_H

#include <stdint.h>

// c[i][j] = sum_k op(a)[i][k] op(b)[k][j] + beta c[i][j]: gemm's contract (core/gemm.h).
void gemm_ref(double *c, const double *a, const double *b, int64_t M, int64_t N, int64_t K, int trans_a,
              int trans_b, double beta);
// out = g ⊙ x / sqrt(mean(x²) + eps) over rows of width C. out, x: (N,C); g: (C)
void rmsnorm_forward_ref(double *out, const double *x, const double *g, int64_t N, int C, double eps);
// y = silu(a) ⊙ b. y: (N,F); h: (N,2F) = [a | b]
void swiglu_forward_ref(double *y, const double *h, int64_t N, int F);
// x_n = wte[token_n]. x: (N,C); tokens: (N); wte: (V,C)
void embedding_forward_ref(double *x, const uint8_t *tokens, const double *wte, int64_t N, int C);
// mean_n (lse(z_n) - z_n[y_n]). logits: (N,V); targets: (N)
double cross_entropy_forward_ref(const double *logits, const uint8_t *targets, int64_t N, int V);
// y = x W^T, the model's bias-free linear layer. y: (N,out); x: (N,in); w: (out,in)
void linear_forward_ref(double *y, const double *x, const double *w, int64_t N, int in, int out);

#endif
