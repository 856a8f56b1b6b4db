// fuzz_ckpt.c — libFuzzer target: the input is DIR/model.safetensors; grape_model_load (the safetensors reader,
// the metadata and config checks, the tensor checks) and ckpt_check_resumable (the checks `grape train --resume`
// makes before sizing anything from the file) must return a status and never crash, leak or allocate from a bad
// value; the tensors of a file that opens are read too.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (!fuzz_file(GRAPE_CHECKPOINT_FILE, data, n)) return 0;
    grape_model *m = NULL;
    if (!grape_model_load(&m, fuzz_dir, 1, 1)) grape_model_free(m);
    ckpt_check_resumable(fuzz_dir);
    char path[160];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir, GRAPE_CHECKPOINT_FILE);
    st_file *f = NULL;
    if (st_open(&f, path)) return 0;
    for (int i = 0; i < st_num_tensors(f); i++) { // every byte range was checked against the file: bounded
        const st_info *t = st_tensor_at(f, i);
        size_t k = (size_t)(t->end - t->begin) / 4;
        float *buf = malloc(k ? k * 4 : 4);
        if (buf) st_read_f32(f, t->name, buf, k);
        free(buf);
    }
    st_close(f);
    return 0;
}
