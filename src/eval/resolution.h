// resolution.h — LEX attention resolution (arXiv 2212.10554 §2.4, docs/EVALUATION.md):
//   R(s) = sum_{i=0}^{N-2} e^{s[i]} (e^{s[i]} - e^{s[i+1]}) / (sum_{i=0}^{N-1} e^{s[i]})^2          (Eq. 3)
// with s[n] the expected pre-softmax score (q.k scaled, plus the additive bias) at distance n, estimated as the
// mean of the scores e_{i,i-n} of every query i that has a key at distance n (Eq. 11: (1/(N-n)) sum_{i=n}^{N-1}
// e_{i,i-n} for full attention; under BCA only in-window pairs exist and N is the largest distance seen + 1).
// Boundary: Eq. 3 sums i = 0..N with an s[N+1] that does not exist; grape sums the numerator over i = 0..N-2
// (the pairs (i, i+1) inside the profile) and the denominator over i = 0..N-1. Heads: R per head from that
// head's profile, then the mean over heads (a layer's R), then the mean over layers.
#ifndef GRAPE_EVAL_RESOLUTION_H
#define GRAPE_EVAL_RESOLUTION_H

#include <stdint.h>

#include "grape.h"

// R of a profile s[0..N), N >= 2 (NaN otherwise). Invariant to adding a constant to s (computed as such).
double resolution_R(const double *s, int N);

typedef struct {
    int L, H, D, max_T;
    float scale;       // the attention's logit scale
    int window;        // BCA window, 0 = full
    double *sum;       // (L, H, max_T) summed scores at distance n
    int64_t *count;    // (L, max_T) pairs at distance n (the same for every head)
    float *qh, *kh;    // (max_T, D) one head's queries and keys, contiguous
    float *S, *bias;   // (RES_ROWS, max_T) a block of score rows and their bias
    double *prof;      // (max_T) one head's profile s
} resolution_acc;

// Plan for model m and windows up to max_T. The attention options (scale, BCA window) are m's at this call:
// grape_model_set_attn_opts first.
grape_status resolution_create(resolution_acc *r, const grape_model *m, int max_T);
void resolution_free(resolution_acc *r);
// A grape_eval_observer: ctx is a resolution_acc; adds one window's scores of layer `layer`.
grape_status resolution_observe(void *ctx, int layer, const float *q, const float *k, const grape_bias_factors *bias,
                                int T);
// R of layer l (mean over heads) and the mean over layers.
double resolution_layer(const resolution_acc *r, int l);
double resolution_mean(const resolution_acc *r);

#endif
