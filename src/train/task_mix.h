// task_mix.h — synthetic passkey samples mixed into training (`grape train --task-mix passkey:F`) and built the
// same way for `grape passkey` (docs/EVALUATION.md, "Passkey retrieval").
//
// A passkey sample of length L is L+1 bytes s[0..L] (tokens s[0..L-1], targets s[1..L]):
//   filler[0..a) MARK KEY filler[a..n) MARK KEY
// where KEY is key_len random digits, MARK is '#', the n = L+1 - 2(1+key_len) filler bytes come from a corpus
// window with every digit and '#' replaced by a space (so the key is the only digit run and the marker occurs only
// at the needle and the query), and a is the needle's depth in filler bytes. The answer is the final KEY: exact
// match means the argmax at each of the last key_len positions is the key byte (teacher forcing, which equals
// greedy decoding when all are right). Training rows may hold P such needle/query pairs in a row (pairs=P, each
// with its own key, the pairs one after another, the last query closing the row): P answers per row instead of
// one; evaluation always uses one pair.
#ifndef GRAPE_TRAIN_TASK_MIX_H
#define GRAPE_TRAIN_TASK_MIX_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

#define PASSKEY_MARK '#'
#define PASSKEY_MAX_KEY 16
#define PASSKEY_MAX_PAIRS 64

typedef struct {
    double frac; // fraction of training rows replaced by passkey samples, [0, 1]; 0: no mix
    int key_len; // digits in the key [1]
    int pairs;    // needle/query pairs per training row [1]
    int same_key; // 1: every pair of a row states the same key (a repeated needle), 0: a fresh key per pair [0]
} task_mix;

// "" (no mix) or "passkey:F[,key=N][,pairs=P][,same=0|1]" -> *m. Bad text is GRAPE_ERR_ARG naming the problem.
grape_status task_mix_parse(task_mix *m, const char *spec);
// The canonical spec of m into buf (n bytes): "" when m->frac == 0, options at their default left out.
void task_mix_name(char *buf, size_t n, const task_mix *m);

typedef struct {
    int at;             // filler bytes before it
    const uint8_t *key; // key_len digits
} passkey_insert;

// Filler bytes of a sample of length L with n_ins inserts ('#' + key each): L + 1 - n_ins (1 + key_len).
int passkey_filler_len(int L, int n_ins, int key_len);
// tokens, targets: (L) out, the sample's s[0..L) and s[1..L]: the filler (cleaned) with each insert placed after
// ins[i].at of its bytes, ins sorted by at, each at in [0, n] for n = passkey_filler_len(L, n_ins, key_len)
// (the query is the insert at n). filler: (n) bytes; it may be tokens itself: the sample is built from the end
// backwards, and every filler byte is read before its place is written.
void passkey_build(uint8_t *tokens, uint8_t *targets, int L, const uint8_t *filler, const passkey_insert *ins,
                   int n_ins, int key_len);
// key: key_len random digits from the splitmix64 state rng.
void passkey_random_key(uint8_t *key, int key_len, uint64_t *rng);

// tokens, targets: (n_rows,T) rows lo..lo+n_rows-1 of a batch of B windows of the sampler (each row's T+1 bytes are its
// filler). Row b becomes a passkey sample with probability m->frac; key and depth drawn from rng, so the batch is a
// function of the rng state alone (resume-safe, the same for every encoding). The draws of every row of the batch
// are taken whether or not it is held here, so a rank holding rows lo..lo+n_rows-1 (docs/DISTRIBUTED.md) builds exactly
// the rows one process would, and leaves rng where one process would.
void task_mix_apply(uint8_t *tokens, uint8_t *targets, const task_mix *m, uint64_t *rng, int B, int T, int lo,
                    int n_rows);

#endif
