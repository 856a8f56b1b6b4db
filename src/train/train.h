// train.h — the training loop: configuration, resumable state, progress reports and the step
//   zero grads -> micro-batches (forward, backward, grads +=) -> [reduce hook] -> clip -> AdamW -> tables.
// Everything that determines the trajectory is in train_config and train_state, and both go into every
// checkpoint, so `--resume` continues bit-exactly (same thread count; docs/TRAINING.md).
#ifndef GRAPE_TRAIN_TRAIN_H
#define GRAPE_TRAIN_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "grape.h"
#include "train/adamw.h"
#include "train/task_mix.h"

#define TRAIN_PATH_MAX 1024

typedef struct {
    char preset[16];          // "tiny" / "small": where the model shape came from
    char pe_name[GRAPE_PE_NAME_MAX]; // canonical encoding name with its options
    grape_model_config model; // max_batch = batch, max_seq = seq
    char data[TRAIN_PATH_MAX];
    char doc_sep[64]; // document separator for a single-file corpus ("" = none); no NUL bytes
    char task_mix[TASK_MIX_MAX]; // synthetic rows mixed into training, canonical (train/task_mix.h; "" = none)
    int batch, seq, grad_accum;
    int accum_mean; // 0: sum micro-batch mean losses (official GRAPE code); 1: average them
    int64_t steps;  // total optimizer steps of the run
    adamw_hparams opt;
    uint64_t seed;         // model init and data order
    int64_t eval_interval; // steps between validations (0: only at the end)
    int64_t eval_batches;  // validation batches of `batch` windows (capped by the windows available)
    int64_t log_interval;  // steps between metrics.jsonl lines
    int64_t save_interval; // steps between checkpoints (0: only at the end and on a signal)
    int threads;           // OpenMP threads (recorded; a different count may change the last bits)
    // A non-finite loss or gradient norm: 0 stops the run (GRAPE_ERR_NUMERIC naming the step; the checkpoint
    // on disk stays the last good one); 1 skips the step (its batch is consumed, no update is applied, no
    // metrics line is written). Not stored in the checkpoint: a choice of each run.
    int skip_nonfinite;
} train_config;

typedef struct {
    int64_t step;                   // optimizer steps completed
    uint64_t rng;                   // data sampler state
    int64_t tokens;                 // training tokens consumed
    double elapsed;                 // seconds of training so far (all runs; not in the checkpoint: metrics.jsonl)
    double last_val;                // last validation BPB (NaN before the first)
    uint64_t data_bytes, data_docs; // identity of the corpus, checked on resume
} train_state;

// Filled by train_config_default and the CLI; validated by train_config_check.
void train_config_default(train_config *cfg);
// Impossible values -> GRAPE_ERR_ARG with a message naming the flag.
grape_status train_config_check(const train_config *cfg);
// Fill cfg->model from cfg->preset and cfg->pe_name (and the batch/seq it must plan for); n_layer, n_embd,
// n_head already set (> 0) in cfg->model override the preset's. cfg->pe_name becomes the canonical name.
grape_status train_config_model(train_config *cfg);

typedef struct {
    int64_t step, steps;
    double loss;          // mean micro-batch loss of this step (nats)
    double lr, grad_norm; // grad_norm before clipping
    double tokens_per_s;  // since the previous logged step
    double elapsed, eta;  // seconds
    double val_bpb;       // this step's validation, NaN if none ran
    double last_val_bpb;  // latest validation so far, NaN if none
    int logged;           // this step wrote a metrics.jsonl line
    int skipped;          // non-finite loss or gradient, skipped (train_config.skip_nonfinite)
} train_report;

// Data parallelism (docs/DISTRIBUTED.md): the processes that train one model together, each on a disjoint share
// of every micro-batch (rows [rank*B/size, (rank+1)*B/size) of the same sampled windows; size must divide B).
// Each collective returns the same bits on every rank, fixed by the rank count alone (never by timing).
// src/cli/dist_mpi.c implements it on MPI; a library user may implement it on anything.
typedef struct train_group {
    int rank, size;
    void *impl;
    grape_status (*sum_f32)(float *v, size_t n, void *impl);  // v: (n) -> element-wise sum over the ranks
    grape_status (*sum_f64)(double *v, size_t n, void *impl); // v: (n) -> element-wise sum over the ranks
    grape_status (*gather_u64)(uint64_t v, uint64_t *all, void *impl); // all: (size), rank r's v in all[r]
} train_group;

typedef struct {
    void (*on_step)(const train_report *r, void *ctx); // after every step (rank 0 only); may be NULL
    void *ctx;
    // Called with the gradient vector before clipping, after the group's sum (tests inject faults here).
    grape_status (*reduce_grads)(float *grads, size_t n, void *ctx);
    volatile sig_atomic_t *stop; // set by a signal handler: save a checkpoint after the current step and stop
    // NULL or size 1: one process. Otherwise only rank 0 validates and writes the checkpoint, metrics and
    // progress; every checkpoint first checks that the ranks hold the same parameters and AdamW moments
    // (GRAPE_ERR_NUMERIC naming the ranks when not); a stop requested on any rank stops all after the step.
    const train_group *group;
} train_hooks;

// Train into out_dir (created if missing): out_dir/model.safetensors and out_dir/metrics.jsonl. With resume,
// the configuration and state come from the checkpoint (cfg->steps, the intervals and threads may change).
// Returns GRAPE_ERR_INTERRUPTED (checkpoint saved) when *hooks->stop was set.
grape_status train_run(const train_config *cfg, const char *out_dir, int resume, const train_hooks *hooks,
                       train_state *final_state);

// Mean cross-entropy over the first n_batches*B fixed validation windows, in bits per byte.
typedef struct data_corpus data_corpus;
grape_status train_eval_bpb(double *bpb, grape_model *m, const data_corpus *c, uint8_t *tokens, uint8_t *targets, int B,
                            int T, int64_t n_batches);

#endif
