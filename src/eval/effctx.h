// effctx.h — effective context length from the per-position loss curve of natural text (docs/EVALUATION.md,
// "Effective context from natural text").
//
// loss[c-1] is the mean loss (bits) of the byte predicted after c bytes of context, c = 1..L (position c-1 of
// `grape eval --per-position`). Single positions are noisy, so the curve is compared in octave bands:
//   band(c) = { c' : c/2 < c' <= c },   mean(c) = mean of loss over band(c),
//   gain(c) = mean(c/2) - mean(c)        (what doubling the context from c/2 to c still buys),
// evaluated at the octaves c = 2, 4, 8, ... <= L only (each test compares two whole bands, and there are only
// log2 L tests, so noise in single positions rarely ends the run early). The effective context is the largest
// octave c such that gain(c') >= margin for every octave c' <= c: the longest context up to which each doubling
// still lowers the loss by at least margin bits; 1 when gain(2) already falls short. The first shortfall ends it,
// so a late dip (say, a loss that explodes and then settles) cannot extend it.
#ifndef GRAPE_EVAL_EFFCTX_H
#define GRAPE_EVAL_EFFCTX_H

#include <stdint.h>

#include "grape.h"

#define EFFCTX_MARGIN_BITS 0.01

// The most octaves a curve has (c = 1, 2, 4, ... 2^30).
#define EFFCTX_MAX_BANDS 31

// loss: (L) bits; prefix: (L+1) doubles of scratch. L >= 1.
int effctx_from_loss(const double *loss, int L, double margin, double *prefix);
// The octave band means the rule compares, bands[k] = mean(2^k) (band (2^(k-1), 2^k], the single position 1 for
// k = 0) for every 2^k <= L; returns their number. loss: (L) bits; bands: EFFCTX_MAX_BANDS; prefix: (L+1) scratch.
int effctx_bands(const double *loss, int L, double *bands, double *prefix);
// The same from eval_length's per-position sums: pos_nats (L) summed nats over `windows` windows;
// scratch: (2L+1) doubles, whose first L hold the curve in bits on return (for effctx_bands).
int effctx_from_sums(const double *pos_nats, int64_t windows, int L, double margin, double *scratch);

#endif
