// train_util.h — shared pieces of the training tests: a small RoPE training configuration on a corpus, and what a
// run directory's checkpoint holds.
#ifndef GRAPE_TESTS_TRAIN_UTIL_H
#define GRAPE_TESTS_TRAIN_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "train/checkpoint.h"
#include "train/train.h"

// n_layer layers of C = 32, H = 2, RoPE; batch B x seq T, `steps` steps, a checkpoint every step, validation only
// at the end (1 batch), one thread, no warmup.
static inline train_config t_train_config(const char *corpus, int n_layer, int B, int T, int64_t steps) {
    train_config c;
    train_config_default(&c);
    snprintf(c.data, sizeof c.data, "%s", corpus);
    c.model = (grape_model_config){.n_layer = n_layer, .n_embd = 32, .n_head = 2, .vocab_size = 256, .max_batch = B,
                                   .max_seq = T};
    grape_pe_config_default(&c.model.pe, 2, 16);
    if (grape_pe_parse(&c.model.pe, "rope")) exit(2);
    snprintf(c.preset, sizeof c.preset, "custom");
    grape_pe_name(c.pe_name, sizeof c.pe_name, &c.model.pe);
    c.batch = B, c.seq = T, c.steps = steps, c.save_interval = 1, c.eval_interval = 0, c.eval_batches = 1;
    c.threads = 1, c.opt.warmup = 0, c.opt.decay_steps = steps;
    return c;
}

// The step of dir's checkpoint, -1 when its metadata cannot be read.
static inline int64_t t_saved_step(const char *dir) {
    train_config c;
    train_state st;
    return ckpt_read_meta(dir, &c, &st) ? -1 : st.step;
}

// Does grape_model_load load dir's checkpoint?
static inline int t_loads(const char *dir) {
    grape_model *m = NULL;
    grape_status s = grape_model_load(&m, dir, 0, 0);
    grape_model_free(m);
    return s == GRAPE_OK;
}

#endif
