// embedding.c — token embedding lookup x_n = wte[token_n] and its scatter-add backward (tied with lm_head).
#include <string.h>

#include "core/prof.h"
#include "model/layers.h"

// x: (N,C); tokens: (N); wte: (V,C)
void embedding_forward(float *x, const uint8_t *tokens, const float *wte, int64_t N, int C) {
    prof_op prof_prev = prof_enter(PROF_EMBED);
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)C))
    for (int64_t n = 0; n < N; n++)
        memcpy(x + (size_t)n * (size_t)C, wte + (size_t)tokens[n] * (size_t)C, (size_t)C * sizeof(float));
    prof_leave(prof_prev);
}

// Columns per task; threads own disjoint column ranges, so the scatter-add needs no atomics.
#define EMB_CHUNK 16

// dwte[token_n] += dx_n. dwte: (V,C); dx: (N,C)
void embedding_backward(float *dwte, const float *dx, const uint8_t *tokens, int64_t N, int C) {
    prof_op prof_prev = prof_enter(PROF_EMBED);
    int chunks = (C + EMB_CHUNK - 1) / EMB_CHUNK;
#pragma omp parallel for schedule(static) if (PAR((size_t)N * (size_t)C))
    for (int ch = 0; ch < chunks; ch++) {
        int c0 = ch * EMB_CHUNK, c1 = c0 + EMB_CHUNK < C ? c0 + EMB_CHUNK : C;
        for (int64_t n = 0; n < N; n++) {
            float *dst = dwte + (size_t)tokens[n] * (size_t)C;
            const float *src = dx + (size_t)n * (size_t)C;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
    prof_leave(prof_prev);
}
