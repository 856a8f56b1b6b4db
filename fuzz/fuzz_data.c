// fuzz_data.c — libFuzzer target: the input's first byte picks the window length T (1..64) and whether "@@"
// separates documents; the rest is a corpus file. data_open must return a status and never crash; a corpus that
// opens is sampled (training and validation windows).
#include <stdint.h>

#include "fuzz_util.h"
#include "train/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n == 0) return 0;
    int T = 1 + data[0] % 64, sep = data[0] & 64;
    const char *path = fuzz_file("corpus", data + 1, n - 1);
    data_corpus *c = NULL;
    if (!path || data_open(&c, path, sep ? "@@" : NULL, 2, T)) return 0;
    uint8_t tok[4 * 64], tgt[4 * 64];
    uint64_t rng = data_rng_seed(n);
    data_sample_batch(tok, tgt, c, &rng, 4);
    int64_t w = data_num_val_windows(c);
    data_val_batch(tok, tgt, c, 0, w < 4 ? w : 4, w < 4 ? (int)w : 4);
    data_close(c);
    return 0;
}
