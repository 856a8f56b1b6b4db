// layers.h — the model's layer kernels (RMSNorm, SwiGLU, embedding, fused softmax + cross-entropy).
// Each fast float kernel has a double-precision reference twin, the test oracle (tests/ref/layers_ref.h).
// Backward kernels ACCUMULATE (+=) into every gradient they are given.
#ifndef GRAPE_MODEL_LAYERS_H
#define GRAPE_MODEL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

// Thread an elementwise loop only when it has this many elements: below it a parallel region's wake-up and
// barrier cost more than the loop (decode steps run these kernels on one row per sequence).
#define PAR_MIN_ELEMS 32768
#define PAR(n) ((n) >= PAR_MIN_ELEMS)

// --- RMSNorm (as the official GRAPE code, model/llama-mha-*.py): out = g ⊙ x / sqrt(mean(x²) + eps), over rows of
// width C. out, x: (N,C); rstd: (N) saved for the backward; g: (C)
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *g, int64_t N, int C, float eps);
// dx += d/dx, dg += d/dg. dx, dout, x: (N,C); dg, g: (C); rstd: (N)
void rmsnorm_backward(float *dx, float *dg, const float *dout, const float *x, const float *g, const float *rstd,
                      int64_t N, int C);

// --- SwiGLU (Shazeer 2020; as the official GRAPE code): y = silu(a) ⊙ b with h = [a | b] = x [W1; W2]^T.
// y: (N,F); h: (N,2F), a in columns [0,F), b in [F,2F)
void swiglu_forward(float *y, const float *h, int64_t N, int F);
// dh += d/dh. dh, h: (N,2F); dy: (N,F)
void swiglu_backward(float *dh, const float *dy, const float *h, int64_t N, int F);

// --- Token embedding: x_n = wte[token_n]. x: (N,C); tokens: (N); wte: (V,C)
void embedding_forward(float *x, const uint8_t *tokens, const float *wte, int64_t N, int C);
// dwte[token_n] += dx_n. dwte: (V,C); dx: (N,C)
void embedding_backward(float *dwte, const float *dx, const uint8_t *tokens, int64_t N, int C);

// --- Fused softmax + cross-entropy: loss = mean_n (lse(z_n) - z_n[y_n]). Only the per-row log-sum-exp is kept;
// the backward recomputes softmax from the logits, so no (N,V) probabilities are ever stored.
// loss: scalar; lse: (N); logits: (N,V); targets: (N)
void cross_entropy_forward(double *loss, float *lse, const float *logits, const uint8_t *targets, int64_t N, int V);
// dlogits += dloss (softmax(z) - onehot(y)) / N. dlogits, logits: (N,V); lse, targets: (N)
void cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const uint8_t *targets,
                            float dloss, int64_t N, int V);

#endif
