// effctx.h — effective context length from the per-position loss curve of natural text (docs/EVALUATION.md,
// "Effective context from natural text").
//
// loss[c-1] is the mean loss (bits) of the byte predicted after c bytes of context, c = 1..L (position c-1 of
// `grape eval --per-position`). Single positions are noisy, so the curve is compared in octave bands:
//   band(c) = { c' : c/2 < c' <= c },   mean(c) = mean of loss over band(c),
// evaluated at the octaves c = 1, 2, 4, ... <= L only (each test compares whole bands, and there are only log2 L
// of them, so noise in single positions rarely decides it). The effective context is the largest octave c >= 2
// whose band is a record low by the margin, mean(c) <= min over the octaves c' < c of mean(c') - margin: the
// longest context that still lowers the loss by at least margin bits below anything a shorter context reached;
// 1 when no octave does. A plateau does not end it (a doubling that buys almost nothing followed by one that buys
// a lot: on the KJV, tiny grape-m seed 1 gains 0.001 bits from (8, 16] to (16, 32] and 0.08 from there to
// (32, 64]; docs/results/kjv/state/runs/grape-m-s1/eval.txt), and a late dip cannot extend it: a loss that explodes past
// the training length and then settles counts only if it falls below its best before the explosion.
#ifndef GRAPE_EVAL_EFFCTX_H
#define GRAPE_EVAL_EFFCTX_H

#include <stdint.h>

#include "grape.h"

#define EFFCTX_MARGIN_BITS 0.01

// The most octaves a curve has (c = 1, 2, 4, ... 2^30).
#define EFFCTX_MAX_BANDS 31

// The rule on band means already made: bands[k] = mean(2^k), k < n (effctx_bands). n >= 1.
int effctx_from_bands(const double *bands, int n, double margin);
// loss: (L) bits; prefix: (L+1) doubles of scratch. L >= 1.
int effctx_from_loss(const double *loss, int L, double margin, double *prefix);
// The octave band means the rule compares, bands[k] = mean(2^k) (band (2^(k-1), 2^k], the single position 1 for
// k = 0) for every 2^k <= L; returns their number. loss: (L) bits; bands: EFFCTX_MAX_BANDS; prefix: (L+1) scratch.
int effctx_bands(const double *loss, int L, double *bands, double *prefix);
// The same from eval_length's per-position sums: pos_nats (L) summed nats over `windows` windows;
// scratch: (2L+1) doubles, whose first L hold the curve in bits on return.
int effctx_from_sums(const double *pos_nats, int64_t windows, int L, double margin, double *scratch);
// The band means of the same curve (effctx_bands) into bands (EFFCTX_MAX_BANDS); returns their number.
// scratch: (2L+1) doubles, whose first L hold the curve in bits on return.
int effctx_bands_from_sums(const double *pos_nats, int64_t windows, int L, double *bands, double *scratch);

#endif
