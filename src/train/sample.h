// sample.h — text generation from a trained model through the streaming decoder (KV cache): feed the prompt
// one byte at a time, then draw each next byte from softmax(logits / temperature) restricted to the top k.
#ifndef GRAPE_TRAIN_SAMPLE_H
#define GRAPE_TRAIN_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

typedef struct {
    double temperature; // 0: greedy (argmax)
    int top_k;          // 0: all V
    uint64_t seed;
} sample_opts;

// Index drawn from logits (V); probs: (V) scratch. rng: splitmix64 state (data_rng_next).
int sample_token(const float *logits, float *probs, int V, const sample_opts *o, uint64_t *rng);

// Generate n bytes after prompt (prompt_len >= 1) into out (n). on_byte (may be NULL) sees each byte as it
// is produced, for streaming output.
grape_status sample_generate(uint8_t *out, grape_model *m, const uint8_t *prompt, size_t prompt_len, size_t n,
                             const sample_opts *o, void (*on_byte)(uint8_t byte, void *ctx), void *ctx);

#endif
