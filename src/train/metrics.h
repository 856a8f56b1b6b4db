// metrics.h — DIR/metrics.jsonl: one JSON object per logged step, e.g.
//   {"step": 100, "loss": 2.31, "lr": 0.001, "grad_norm": 0.52, "tokens_per_s": 24000, "elapsed": 41.2,
//    "val_bpb": 3.12}
// ("val_bpb" only on steps where validation ran). "tokens_per_s" and "elapsed" are wall-clock; every other field
// is the same on every run of the same command, seed and thread count (docs/TRAINING.md). A resumed run first
// drops the lines after its checkpoint, so the file always describes one trajectory, and continues "elapsed"
// from the last line it keeps (the checkpoint holds no wall-clock time, so it is byte-identical across runs).
#ifndef GRAPE_TRAIN_METRICS_H
#define GRAPE_TRAIN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "grape.h"


typedef struct {
    FILE *f;
} metrics_log;

// Open dir/metrics.jsonl: truncated for a fresh run (resume_step < 0), else cut after the last line with
// "step" <= resume_step and appended to; *elapsed: that line's "elapsed" (0 for a fresh run or none).
grape_status metrics_open(metrics_log *ml, const char *dir, int64_t resume_step, double *elapsed);
grape_status metrics_write(metrics_log *ml, const grape_train_report *r);
void metrics_close(metrics_log *ml);

#endif
