// alibi.c — ALiBi slopes for any head count (Press et al., ICLR 2022, arXiv 2108.12409;
// github.com/ofirpress/attention_with_linear_biases).
#include <math.h>

#include "core/error.h"
#include "pe/bias_internal.h"

// m_h = 2^(-8(h+1)/n') for h < n' = 2^floor(log2 H); the remaining heads take every other slope of the 2n' set,
// extra_j = 2^(-(8/n')(j - 1/2)), j = 1..H-n' (fairseq, x-transformers; llama.cpp's m0/m1 form is the same).
double alibi_slope(int h, int H) {
    int n = 1;
    while (2 * n <= H) n *= 2;
    if (h < n) return exp2(-8.0 * (h + 1) / n);
    int j = h - n + 1;
    return exp2(-(8.0 / n) * (j - 0.5));
}

// slope: (H)
grape_status grape_alibi_slopes(float *slope, int H) {
    if (!slope || H < 1) return error_fail(GRAPE_ERR_ARG, "grape_alibi_slopes: need H >= 1 and a buffer (H=%d)", H);
    for (int h = 0; h < H; h++) slope[h] = (float)alibi_slope(h, H);
    return GRAPE_OK;
}
