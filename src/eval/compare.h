// compare.h — the results of `grape compare` (docs/EVALUATION.md): one record per trained run (encoding x seed),
// kept next to its checkpoint in DIR/runs/NAME/eval.txt so an interrupted or extended compare re-reads finished
// runs instead of redoing them, and the report files built from all records: results.md (encodings x lengths,
// mean ± std over seeds, best per column in bold, training tokens/s relative to nope, R at 1x and 2x),
// results.csv (one row per encoding x seed x length x mode), results.json, and the gnuplot scripts of
// bpb_vs_length.png, loss_curves.png and effective_context.png.
#ifndef GRAPE_EVAL_COMPARE_H
#define GRAPE_EVAL_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "eval/effctx.h"
#include "grape.h"

#define CMP_MAX_EVALS 64
#define CMP_MAX_CURVE 256
#define CMP_NAME 64

typedef struct {
    int length;
    int bca; // 0 full causal, 1 LEX BCA (window = training length)
    double bpb, tokens_per_s;
    int64_t windows, bytes;
} cmp_eval;

#define CMP_MAX_PK_CELLS 256

typedef struct {
    int length;
    double depth;
    int hits, trials;
} cmp_pk_cell;

typedef struct {
    char pe[CMP_NAME];
    int seed;
    double train_tokens_per_s; // median of the run's metrics.jsonl log intervals (validation excluded)
    double r1, r2;             // LEX attention resolution at 1x and 2x the training length, full attention
    int n_eval;
    cmp_eval ev[CMP_MAX_EVALS];
    // Effective context from natural text (eval/effctx.h): the per-position curve of its own full-attention pass
    // at eff_length over eff_windows validation windows (every one, or the budget's effctx_windows evenly spaced).
    int eff_text, eff_length; // eff_length 0: not measured
    int64_t eff_windows;
    int n_band;               // the curve's octave band means in bits (effctx_bands), 0 in older records
    double band[EFFCTX_MAX_BANDS];
    int n_curve; // validation BPB vs step from metrics.jsonl
    double curve_step[CMP_MAX_CURVE], curve_bpb[CMP_MAX_CURVE];
    int n_pk;    // passkey cells (full attention), 0 when passkey was not measured
    int pk_eff;  // passkey effective context (eval/passkey.h)
    cmp_pk_cell pk[CMP_MAX_PK_CELLS];
} cmp_run;

// DIR/runs/NAME/eval.txt: write (atomically) and read back (GRAPE_ERR_IO when absent, FORMAT when malformed).
grape_status cmp_run_save(const cmp_run *r, const char *path);
grape_status cmp_run_load(cmp_run *r, const char *path);
// Fill the training speed and validation curve of r from a run's metrics.jsonl.
grape_status cmp_read_metrics(cmp_run *r, const char *metrics_path);

// The budget every run of a directory shares (a second compare into it must match).
typedef struct {
    char preset[16], data[1024];
    char task_mix[GRAPE_TASK_MIX_MAX]; // train/task_mix.h spec every run trains with ("" none)
    int batch, seq;
    int64_t steps, doc_bytes, eval_interval;
    double lr;
    int passkey_trials; // > 0: grape passkey on every run with this many trials per cell
    int64_t effctx_windows; // windows of the effective-context pass at the longest length, 0 = every one
} cmp_budget;

// Write results.md, results.csv, results.json, bpb_vs_length.gp, loss_curves.gp, effective_context.gp (when a
// run has the octave bands) and, for runs with passkey cells,
// passkey_NAME.gp (NAME: the encoding with every byte outside [A-Za-z0-9.-] as '_'; accuracy mean over seeds) into dir from runs in the order
// of pes (every run of an encoding, any seed). lengths: the evaluated lengths (columns).
// "passkey_NAME.EXT" of encoding pe into buf (n bytes).
void cmp_heatmap_name(char *buf, size_t n, const char *pe, const char *ext);

// Whether any run has the effective-context bands (cmp_write_reports then writes effective_context.gp).
int cmp_any_bands(const cmp_run *runs, int n_runs);

grape_status cmp_write_reports(const char *dir, const cmp_budget *b, const char (*pes)[CMP_NAME], int n_pes,
                               const cmp_run *runs, int n_runs, const int *lengths, int n_lengths);

#endif
