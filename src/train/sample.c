// sample.c — see sample.h.
#include "train/sample.h"

#include <math.h>

#include "core/error.h"
#include "core/mem.h"
#include "train/data.h"

static int argmax(const float *x, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// The k-th largest logit (k in [1, V]): the smallest x_i with fewer than k larger entries. V is 256, so the
// O(V^2) count is cheap and needs no scratch or sort.
static float kth_largest(const float *x, int V, int k) {
    float kth = INFINITY;
    for (int i = 0; i < V; i++) {
        int above = 0;
        for (int j = 0; j < V; j++) above += x[j] > x[i];
        if (above < k && x[i] < kth) kth = x[i];
    }
    return kth;
}

int sample_token(const float *logits, float *probs, int V, const sample_opts *o, uint64_t *rng) {
    if (o->temperature <= 0) return argmax(logits, V);
    float cut = o->top_k > 0 && o->top_k < V ? kth_largest(logits, V, o->top_k) : -INFINITY;
    float mx = logits[argmax(logits, V)];
    double total = 0;
    for (int i = 0; i < V; i++) {
        probs[i] = logits[i] >= cut ? expf((float)((logits[i] - mx) / o->temperature)) : 0.0f;
        total += probs[i];
    }
    double u = (double)(data_rng_next(rng) >> 11) * 0x1.0p-53 * total, acc = 0;
    for (int i = 0; i < V; i++)
        if ((acc += probs[i]) > u && probs[i] > 0) return i;
    return argmax(logits, V);
}

grape_status sample_generate(uint8_t *out, grape_model *m, const uint8_t *prompt, size_t prompt_len, size_t n,
                             const sample_opts *o, void (*on_byte)(uint8_t byte, void *ctx), void *ctx) {
    if (prompt_len == 0) return error_fail(GRAPE_ERR_ARG, "the prompt must have at least one byte");
    if (prompt_len + n > (size_t)1 << 30) return error_fail(GRAPE_ERR_ARG, "prompt + n is too long");
    int V = grape_model_get_config(m)->vocab_size;
    grape_decoder *d = NULL;
    float *logits = mem_alloc((size_t)V * 2 * sizeof(float));
    if (!logits) return GRAPE_ERR_NOMEM;
    grape_status s = grape_decoder_create(&d, m, 1, (int)(prompt_len + n));
    uint64_t rng = data_rng_seed(o->seed);
    for (size_t i = 0; i < prompt_len && !s; i++) s = grape_model_decode_step(m, d, &prompt[i], logits);
    for (size_t i = 0; i < n && !s; i++) {
        out[i] = (uint8_t)sample_token(logits, logits + V, V, o, &rng);
        if (on_byte) on_byte(out[i], ctx);
        if (i + 1 < n) s = grape_model_decode_step(m, d, &out[i], logits);
    }
    grape_decoder_free(d);
    mem_free(logits);
    return s;
}
