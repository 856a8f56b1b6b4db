// train_util.h — shared pieces of the training tests: a small RoPE training configuration on a corpus, a whole run
// through the public trainer, and what a run directory's checkpoint holds.
#ifndef GRAPE_TESTS_TRAIN_UTIL_H
#define GRAPE_TESTS_TRAIN_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "train/checkpoint.h"
#include "train/train.h"

// n_layer layers of C = 32, H = 2, RoPE; batch B x seq T, `steps` steps, a checkpoint every step, validation only
// at the end (1 batch), one thread, no warmup.
static inline grape_train_config t_train_config(const char *corpus, int n_layer, int B, int T, int64_t steps) {
    grape_train_config c;
    grape_train_config_default(&c);
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

// A fresh (resume 0) or resumed (resume 1) run of c into dir to c->steps through the public trainer, fn (may be
// NULL) after every step; *st (may be NULL): the state where it ended, also after a failure.
static inline grape_status t_train(const grape_train_config *c, const char *dir, int resume, grape_train_callback fn,
                                   void *ctx, grape_train_state *st) {
    grape_trainer *t = NULL;
    grape_status s = resume ? grape_trainer_resume(&t, dir, c, NULL) : grape_trainer_create(&t, c, dir, NULL);
    if (!s) s = grape_trainer_run(t, fn, ctx);
    if (st && t) *st = *grape_trainer_state(t);
    grape_trainer_free(t);
    return s;
}

// One process as a group of one (grape_train_group): sum_f32 is the caller's, to observe or alter the gradient;
// the loss sum and the checksum gather are the identity.
static inline grape_status t_sum_f64_one(double *v, size_t n, void *ctx) {
    (void)v, (void)n, (void)ctx;
    return GRAPE_OK;
}
static inline grape_status t_gather_one(uint64_t v, uint64_t *all, void *ctx) {
    (void)ctx;
    all[0] = v;
    return GRAPE_OK;
}
static inline grape_train_group t_group_one(grape_status (*sum_f32)(float *g, size_t n, void *ctx), void *ctx) {
    return (grape_train_group){.rank = 0, .size = 1, .ctx = ctx, .sum_f32 = sum_f32, .sum_f64 = t_sum_f64_one,
                               .gather_u64 = t_gather_one};
}

// The step of dir's checkpoint, -1 when its metadata cannot be read.
static inline int64_t t_saved_step(const char *dir) {
    grape_train_config c;
    grape_train_state st;
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
