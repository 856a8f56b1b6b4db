// train.h — the trainer's internals; its API is grape.h's "Training" section (grape_trainer_*), whose step is
//   zero grads -> micro-batches (forward, backward, grads +=) -> [group sum] -> clip -> AdamW -> tables.
// Everything that determines the trajectory is in grape_train_config and grape_train_state, and both go into
// every checkpoint, so a resumed run continues bit-exactly (same thread count; docs/TRAINING.md).
#ifndef GRAPE_TRAIN_TRAIN_H
#define GRAPE_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"
#include "train/adamw.h"
#include "train/task_mix.h"

// Impossible values -> GRAPE_ERR_ARG with a message naming the `grape train` flag.
grape_status train_config_check(const grape_train_config *cfg);

// Mean cross-entropy over the first n_batches*B fixed validation windows, in bits per byte.
typedef struct data_corpus data_corpus;
grape_status train_eval_bpb(double *bpb, grape_model *m, const data_corpus *c, uint8_t *tokens, uint8_t *targets, int B,
                            int T, int64_t n_batches);

#endif
