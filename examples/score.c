// score.c — load a grape checkpoint and stream-score a text with the KV-cache decoder: bits per byte, one byte at a
// time, as a server would see it. For the first window it also runs the full forward and reports the difference
// (the decoder's step-t logits equal the forward's logits at position t).
//   cc score.c $(pkg-config --cflags --libs grape) -o score && OMP_NUM_THREADS=1 ./score runs/tiny-rope text.txt
// (one thread: a one-byte decode step of a small model is far too small to share, and waiting OpenMP threads
// on a busy machine cost more than the step.)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <grape.h>

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        if ((call) != GRAPE_OK) {                                                                                  \
            fprintf(stderr, "score: %s: %s\n", #call, grape_last_error());                                         \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

// -log2 softmax(logits)[target] over V logits, in double.
static double bits(const float *logits, int V, int target) {
    double m = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) m = fmax(m, logits[i]);
    for (int i = 0; i < V; i++) z += exp(logits[i] - m);
    return (log(z) + m - logits[target]) / log(2.0);
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: score CHECKPOINT_DIR TEXT_FILE\n"), 2;
    FILE *f = fopen(argv[2], "rb");
    if (!f) return perror(argv[2]), 1;
    static uint8_t text[1 << 16];
    size_t n = fread(text, 1, sizeof text, f); // the first 64 KiB
    fclose(f);
    if (n < 2) return fprintf(stderr, "score: %s holds fewer than 2 bytes\n", argv[2]), 1;

    grape_model *m;
    CHECK(grape_model_load(&m, argv[1], 1, 0)); // batch 1, the checkpoint's sequence length
    const grape_model_config *c = grape_model_get_config(m);
    char name[GRAPE_PE_NAME_MAX];
    grape_pe_name(name, sizeof name, &c->pe);
    int V = c->vocab_size, W = (int)(n - 1 < (size_t)c->max_seq ? n - 1 : (size_t)c->max_seq);

    // Stream: feed byte t, score byte t+1. One KV cache per layer, memory planned at create.
    grape_decoder *d;
    CHECK(grape_decoder_create(&d, m, 1, (int)n));
    float *logits = malloc((size_t)V * sizeof(float));
    double total = 0, first_window = 0;
    for (size_t t = 0; t + 1 < n; t++) {
        CHECK(grape_model_decode_step(m, d, &text[t], logits));
        double b = bits(logits, V, text[t + 1]);
        total += b;
        if (t < (size_t)W) first_window += b;
    }

    // The full forward over the first window: mean cross-entropy in nats -> bits per byte.
    float loss;
    CHECK(grape_model_forward(m, text, text + 1, 1, W, &loss));
    double forward = loss / log(2.0), stream = first_window / W;
    printf("%s (L=%d C=%d H=%d): %.4f bits/byte over %zu bytes streamed; first %d bytes: decoder %.6f, "
           "forward %.6f bits/byte\n",
           name, c->n_layer, c->n_embd, c->n_head, total / (double)(n - 1), n - 1, W, stream, forward);
    free(logits);
    grape_decoder_free(d);
    grape_model_free(m);
    return fabs(stream - forward) < 1e-4 * fmax(1.0, forward) ? 0 : 1;
}
