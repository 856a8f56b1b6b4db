// fuzz_data.c — libFuzzer target: the input's first byte picks the window length T (1..64), whether "@@"
// separates documents, and whether the file is memory-mapped (GRAPE_DATA_COPY_MAX=0) rather than copied; the rest
// is a corpus file. data_open must return a status and never crash; a corpus that opens is sampled (training and
// validation windows), and as nothing truncates the file the samplers must report success.
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "train/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n == 0) return 0;
    int T = 1 + data[0] % 64, sep = data[0] & 64, mapped = data[0] & 128;
    const char *path = fuzz_file("corpus", data + 1, n - 1);
    data_corpus *c = NULL;
    if (mapped) setenv("GRAPE_DATA_COPY_MAX", "0", 1);
    grape_status s = path ? data_open(&c, path, sep ? "@@" : NULL, 2, T) : GRAPE_ERR_IO;
    if (mapped) unsetenv("GRAPE_DATA_COPY_MAX");
    if (s) return 0;
    uint8_t tok[4 * 64], tgt[4 * 64];
    uint64_t rng = data_rng_seed(n);
    int64_t w = data_num_val_windows(c);
    if (data_sample_batch(tok, tgt, c, &rng, 4) || data_val_batch(tok, tgt, c, 0, w < 4 ? w : 4, w < 4 ? (int)w : 4))
        abort(); // the file did not change: a failure here is a bug
    data_close(c);
    return 0;
}
