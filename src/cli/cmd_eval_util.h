// cmd_eval_util.h — what grape eval, resolution and compare share: a checkpoint with its corpus (the validation
// split of training), length lists, a progress bar on stderr.
#ifndef GRAPE_CLI_CMD_EVAL_UTIL_H
#define GRAPE_CLI_CMD_EVAL_UTIL_H

#include <stdint.h>

#include "cli/cli.h"
#include "grape.h"
#include "train/data.h"

#define EVAL_MAX_LENGTHS 32
#define EVAL_MAX_LENGTH (1 << 20)

typedef struct {
    grape_model *m; // planned for 1 x 1: the evaluator owns the window's buffers
    grape_train_config cfg;
    grape_train_state st;
    data_corpus *data;
} eval_ckpt;

// Load DIR's checkpoint and its corpus (data_path, or the one it was trained on, with its document separator).
// Prints "grape: CMD: ..." and returns 0 on failure.
int eval_ckpt_open(eval_ckpt *k, const char *cmd, const char *dir, const char *data_path);
void eval_ckpt_close(eval_ckpt *k);
// LEX BCA with the training length as window (or full attention): prints and returns 0 on failure.
int eval_set_bca(eval_ckpt *k, const char *cmd, int bca);

// "256,512,..." into lengths (at most EVAL_MAX_LENGTHS, each in [1, EVAL_MAX_LENGTH]); NULL: T_train times each of
// mults[0..n_mults). Prints and returns 0 on failure.
int eval_parse_lengths(int *lengths, int *n, const char *s, const char *cmd, int T_train, const int *mults,
                       int n_mults);

// The start `grape eval` and `grape resolution` share: --threads, --doc-bytes, the checkpoint (--ckpt, --data) and
// --lengths (default: T_train times mults). Prints and returns 0 on failure (k is then closed).
int eval_cli_open(eval_ckpt *k, long *doc_bytes, int *lengths, int *n, const cli_args *a, const char *cmd,
                  const int *mults, int n_mults);

// Progress of one length on stderr, redrawn in place on a terminal (nothing otherwise).
typedef struct {
    const char *label;
    int length;
    double t0;
} eval_bar;
void eval_bar_update(void *ctx, int64_t done, int64_t total); // an eval_progress
void eval_bar_clear(void);
double eval_now(void);

// gnuplot SCRIPT with DIR as the working directory (NULL: the current one). Prints "grape: CMD: ..." and returns 0
// when gnuplot is missing or fails.
int cli_gnuplot(const char *dir, const char *script, const char *cmd);

#endif
