// adamw.h — AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch's torch.optim.AdamW update),
// linear warmup then cosine decay to a floor, and global-norm gradient clipping. The step works on one flat
// parameter vector split into groups, so a data-parallel run can all-reduce the gradient vector first.
#ifndef GRAPE_TRAIN_ADAMW_H
#define GRAPE_TRAIN_ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

// The hyper-parameters: grape_adamw_config (grape.h).

// A contiguous range of the parameter vector and whether it is decayed (RMSNorm gains are not).
typedef struct {
    size_t offset, n;
    int decay;
} adamw_group;

// Learning rate of optimizer step `step` (0-based):
//   step < warmup:  lr * (step+1) / warmup
//   otherwise:      floor + (lr - floor) * (1 + cos(pi * min(1, (step-warmup) / (decay_steps-warmup)))) / 2
double adamw_lr(const grape_adamw_config *h, int64_t step);

// sqrt(sum g^2) in double; the summation order depends only on n (fixed chunks), never on the thread count,
// so a resumed run reproduces it bit for bit.
double grad_global_norm(const float *g, size_t n);
// Factor that scales the gradient to norm `clip` when it is larger: min(1, clip / (norm + 1e-6)), as
// torch.nn.utils.clip_grad_norm_.
double grad_clip_scale(double norm, double clip);

// One AdamW step (t = 1-based step count for the bias corrections) on every group; the gradient is used as
// gscale * g. p, m, v, g: the full vectors, indexed by group offsets.
void adamw_step(float *p, float *m, float *v, const float *g, const adamw_group *groups, int n_groups, double lr,
                double gscale, int64_t t, const grape_adamw_config *h);

#endif
