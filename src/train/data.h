// data.h — byte corpora for training and evaluation: files copied or memory-mapped (DATA_COPY_MAX), documents,
// the document-level train/validation split, a seeded window sampler and fixed validation windows
// (docs/TRAINING.md).
//
// Documents:
//   * DIR:  every regular, non-hidden file directly inside DIR, sorted by name (bytewise); one document each;
//   * FILE with a separator (--doc-sep): the pieces between separators (the separator bytes belong to no document);
//   * FILE in the format of Debian's `bible` (a line "<Book> 1" between blank lines starts a book): one per book;
//   * any other FILE: cut into max(10, ceil(size / 1 MiB)) pieces of equal size.
// Split: documents are visited in order; document i goes to validation exactly when that brings the validation
// share of the bytes seen so far (documents 0..i) closer to 10% than leaving it out would. Deterministic, whole
// documents, spread through the corpus, about 10% of the bytes (KJV: 8 books, 9.8%). If that selects nothing
// (a few large documents), the last document is validation.
#ifndef GRAPE_TRAIN_DATA_H
#define GRAPE_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

#define DATA_VAL_SHARE 0.1
// Files up to this size are copied into memory when opened, so truncating them during a run changes nothing;
// larger files are memory-mapped, and truncating one of those during a run makes the next data_check (every
// batch) fail with GRAPE_ERR_IO naming the file, never a SIGBUS (data.c installs a SIGBUS handler for the
// mappings, chaining to any earlier one). The environment variable GRAPE_DATA_COPY_MAX=N (bytes) overrides the
// limit, so tests map small files.
#define DATA_COPY_MAX ((size_t)1 << 30)
size_t data_copy_max(void);

typedef struct {
    const uint8_t *bytes;
    size_t len;
    int is_val;
} data_doc;

typedef struct data_corpus data_corpus; // opaque: mappings, documents and the window index for one T

// Map PATH (file or directory) and index its documents for windows of T+1 bytes. sep: NULL, or a separator
// of sep_len > 0 bytes for a single file. Fails with a clear message (GRAPE_ERR_IO / GRAPE_ERR_ARG) when the
// path is unreadable, empty, or has no training or no validation document of at least T+1 bytes.
grape_status data_open(data_corpus **out, const char *path, const char *sep, size_t sep_len, int T);
void data_close(data_corpus *c);

size_t data_num_docs(const data_corpus *c);
const data_doc *data_doc_at(const data_corpus *c, size_t i);
uint64_t data_total_bytes(const data_corpus *c);
uint64_t data_val_bytes(const data_corpus *c);
// Non-overlapping validation windows (starts 0, T, 2T, ... of each validation document, in document order).
int64_t data_num_val_windows(const data_corpus *c);

// The sampler's only state is one 64-bit word (splitmix64), so a checkpoint resumes it bit-exactly.
uint64_t data_rng_seed(uint64_t seed);
uint64_t data_rng_next(uint64_t *state);

// GRAPE_ERR_IO naming the file when a mapped file of c shrank since data_open (bytes read from it since then may
// be zeros); GRAPE_OK otherwise, always for copied files. A reader of data_doc bytes calls it after reading.
grape_status data_check(const data_corpus *c);

// tokens, targets: (B,T). Windows of T+1 bytes drawn uniformly over every start position inside a training
// document (longer documents are drawn proportionally more often); targets are tokens shifted by one. Each window
// takes exactly one data_rng_next draw, in row order (the trainer's per-rank shares skip draws: docs/DISTRIBUTED.md).
// Returns data_check(c).
grape_status data_sample_batch(uint8_t *tokens, uint8_t *targets, const data_corpus *c, uint64_t *rng, int B);
// tokens, targets: (B,T). Validation windows idx0 .. idx0+B-1 of n_windows chosen evenly spaced among all
// data_num_val_windows (window i of the selection is number floor(i * total / n_windows)). Returns data_check(c).
grape_status data_val_batch(uint8_t *tokens, uint8_t *targets, const data_corpus *c, int64_t idx0, int64_t n_windows,
                            int B);

#endif
