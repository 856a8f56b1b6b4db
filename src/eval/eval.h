// eval.h — the evaluation protocol of `grape eval` (docs/EVALUATION.md): bits per byte at a window length over the
// non-overlapping windows of the validation documents (the training split of train/data.h, never a training byte).
// Window w of a validation document d (bytes d[0..n)) reads tokens d[wL .. wL+L) and predicts d[wL+1 .. wL+L+1),
// so it needs wL + L + 1 <= n; windows start at each document's first byte, documents with fewer than L + 1 bytes
// are skipped, every window is scored from an empty context. doc_bytes > 0 keeps only each document's first
// doc_bytes + 1 bytes (LEX §4.1 scores the first 4096 tokens of each document), so that every length that divides
// doc_bytes scores the same bytes.
#ifndef GRAPE_EVAL_EVAL_H
#define GRAPE_EVAL_EVAL_H

#include <stdint.h>

#include "grape.h"
#include "train/data.h"

typedef struct {
    int length;
    int64_t windows, bytes; // windows scored, bytes predicted (= windows * length)
    double nats;            // summed cross-entropy
    double bpb;             // nats / bytes / ln 2
    double seconds, tokens_per_s;
    double *pos_nats;       // (length) summed loss at each position inside the window, when asked for
} eval_result;

// Windows of length L the protocol scores in c's validation documents.
int64_t eval_count_windows(const data_corpus *c, int L, int64_t doc_bytes);
// Longest validation document in bytes (for the message when a length has no window).
uint64_t eval_longest_val_doc(const data_corpus *c);

// Called after every window with windows done and the total.
typedef void (*eval_progress)(void *ctx, int64_t done, int64_t total);

// Score length L (the evaluator planned for at least L tokens). max_windows > 0 scores only that many of the
// windows, evenly spaced over all of them in document order (window i of n is taken when
// floor((i+1) max / n) > floor(i max / n)); 0 scores every window. pos_nats: (L) doubles to accumulate the
// per-position loss into (zeroed here), or NULL. No window at L is GRAPE_ERR_ARG naming the length.
grape_status eval_length(eval_result *r, grape_evaluator *e, const data_corpus *c, int L, int64_t doc_bytes,
                         int64_t max_windows, double *pos_nats, eval_progress cb, void *ctx);

#endif
