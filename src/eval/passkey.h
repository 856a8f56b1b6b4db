// passkey.h — `grape passkey`: exact-match retrieval of a key stated once at a depth inside validation filler
// (sample layout: train/task_mix.h), by context length x depth, with Wilson intervals and the passkey effective
// context (docs/EVALUATION.md, "Passkey retrieval").
#ifndef GRAPE_EVAL_PASSKEY_H
#define GRAPE_EVAL_PASSKEY_H

#include <stdint.h>

#include "core/textbuf.h"
#include "grape.h"
#include "train/data.h"

#define PASSKEY_Z95 1.959963984540054 // two-sided 95% normal quantile

typedef struct {
    int length;
    double depth;     // needle position as a fraction of the filler, [0, 1]
    int trials, hits; // samples scored, samples whose whole key was the argmax
    double lo, hi;    // Wilson 95% interval of hits / trials
} passkey_cell;

// Wilson score interval (z: normal quantile) of k successes in n > 0 trials: [*lo, *hi] within [0, 1].
void passkey_wilson(double *lo, double *hi, int k, int n, double z);

// Score `trials` samples of length L at depth (evaluator planned for >= L; buf: 3L bytes of scratch). Trial i
// reads its filler from a validation document and its key from an RNG seeded by (seed, L, i) alone, so every
// depth of a length sees the same fillers and keys. No validation document with the filler's bytes is
// GRAPE_ERR_ARG naming the length. cb(ctx) after each trial, may be NULL.
grape_status passkey_cell_run(passkey_cell *c, grape_evaluator *e, uint8_t *buf, const data_corpus *corpus, int L,
                              double depth, int trials, int key_len, uint64_t seed, void (*cb)(void *), void *ctx);

// Every length long enough for a key of key_len digits and with a validation document holding its filler, else
// GRAPE_ERR_ARG naming the length.
grape_status passkey_check_lengths(const data_corpus *corpus, const int *lengths, int n_lengths, int key_len);

// The grid (checked first with passkey_check_lengths): cells (n_lengths x n_depths, length-major) of passkey_cell_run with one evaluator planned for the
// longest length; buf: 3 x the longest length bytes.
grape_status passkey_grid_run(passkey_cell *cells, grape_evaluator *e, uint8_t *buf, const data_corpus *corpus,
                              const int *lengths, int n_lengths, const double *depths, int n_depths, int trials,
                              int key_len, uint64_t seed, void (*cb)(void *), void *ctx);

#define PASSKEY_DEFAULT_DEPTHS 5 // 0, 0.25, 0.5, 0.75, 1
#define PASSKEY_EFFECTIVE_RATIO 0.9
// Below this accuracy at the training length the task counts as not learned there (chance is 0.1 for a one-digit
// key, and a model that copies one of the row's values without retrieving scores about 1/pairs), and no length is
// effective: a ratio of a chance-level reference would call every length effective.
#define PASSKEY_LEARNED_MIN 0.5

// Accuracy at each length: hits / trials summed over its cells. acc: (n_lengths).
void passkey_length_accuracy(double *acc, const passkey_cell *cells, int n_cells, const int *lengths, int n_lengths);

// The longest length L >= T_train such that every evaluated length in [T_train, L] keeps an accuracy
// >= ratio * acc(T_train). lengths ascending-or-not, acc per length; 0 when T_train is not among the lengths or
// its accuracy is below PASSKEY_LEARNED_MIN (the task was not learned: no context is effective).
int passkey_effective_context(const int *lengths, const double *acc, int n, int T_train, double ratio);

// A gnuplot script drawing accuracy (colour and printed value) on the length x depth grid into png.
// acc: (n_lengths, n_depths) row-major, NaN for a cell not measured.
void passkey_heatmap_gp(textbuf *b, const char *png, const char *title, const int *lengths, int n_lengths,
                        const double *depths, int n_depths, const double *acc);

#endif
