// cmd_eval.c — `grape eval`: bits per byte at several lengths over the validation windows (docs/EVALUATION.md).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_eval_util.h"
#include "eval/effctx.h"
#include "eval/eval.h"
#include "core/atomic_file.h"
#include "core/textbuf.h"

static const char *const known[] = {"--ckpt", "--data", "--lengths", "--per-position", "--doc-bytes", "--threads",
                                    "--max-windows", NULL};
static const char *const booleans[] = {"--bca", "--json", NULL};
static const int default_mults[] = {1, 2, 4, 8, 16};

static void usage(void) {
    printf("usage: grape eval --ckpt DIR [options]\n\n"
           "Bits per byte of a checkpoint at several window lengths over the non-overlapping windows of the\n"
           "validation documents (the training split), each window scored from an empty context.\n\n"
           "  --ckpt DIR            run directory of grape train\n"
           "  --data PATH           corpus [the one the checkpoint was trained on]\n"
           "  --lengths L1,L2,...   window lengths [1x,2x,4x,8x,16x the training length]\n"
           "  --bca                 LEX blockwise causal attention, window = training length [full causal]\n"
           "  --json                one JSON object per length: length, bpb, windows, bytes, tokens_per_s, mode\n"
           "  --per-position FILE   mean loss by position inside the window, CSV\n"
           "  --doc-bytes N         score only the first N bytes of each validation document, 0 = all [0]\n"
           "  --max-windows N       score N windows per length, evenly spaced over all of them, 0 = all [0]\n"
           "  --threads N           OpenMP threads [all cores]\n");
}

// Rows length,mode,position,windows,loss_nats,loss_bits of every length into FILE, atomically.
static int write_per_position(const char *path, const eval_result *r, int n, const char *mode) {
    textbuf b = {0};
    tb_printf(&b, "length,mode,position,windows,loss_nats,loss_bits\n");
    for (int i = 0; i < n; i++)
        for (int p = 0; p < r[i].length; p++) {
            double mean = r[i].pos_nats[p] / (double)r[i].windows;
            tb_printf(&b, "%d,%s,%d,%lld,%.6f,%.6f\n", r[i].length, mode, p, (long long)r[i].windows, mean,
                      mean / M_LN2);
        }
    grape_status s = tb_status(&b);
    if (!s) s = atomic_write_file(path, b.p, b.len);
    tb_free(&b);
    return s ? !cli_error("eval: --per-position %s: %s", path, grape_last_error()) : 1;
}

// effective_context of each length's per-position curve (effctx.h); pos: (n, max_L) summed nats.
static int effective_contexts(int *eff, const eval_result *r, int n, const double *pos, int max_L) {
    double *scratch = malloc((2 * (size_t)max_L + 1) * sizeof *scratch);
    if (!scratch) return !cli_error("eval: out of memory");
    for (int i = 0; i < n; i++)
        eff[i] = effctx_from_sums(pos + (size_t)i * max_L, r[i].windows, r[i].length, EFFCTX_MARGIN_BITS, scratch);
    free(scratch);
    return 1;
}

static void print_results(const eval_result *r, const int *eff, int n, const char *mode, int json) {
    if (json) {
        printf("[\n");
        for (int i = 0; i < n; i++)
            printf("{\"length\": %d, \"bpb\": %.6f, \"windows\": %lld, \"bytes\": %lld, \"tokens_per_s\": %.1f, "
                   "\"mode\": \"%s\", \"effective_context\": %d}%s\n",
                   r[i].length, r[i].bpb, (long long)r[i].windows, (long long)r[i].bytes, r[i].tokens_per_s, mode,
                   eff[i], i + 1 < n ? "," : "");
        printf("]\n");
        return;
    }
    printf("%8s  %-4s  %8s  %8s  %10s  %10s  %8s\n", "length", "mode", "bpb", "windows", "bytes", "tokens/s",
           "eff_ctx");
    for (int i = 0; i < n; i++)
        printf("%8d  %-4s  %8.4f  %8lld  %10lld  %10.0f  %8d\n", r[i].length, mode, r[i].bpb,
               (long long)r[i].windows, (long long)r[i].bytes, r[i].tokens_per_s, eff[i]);
    printf("eff_ctx: longest context whose mean loss is below that of every shorter context by >= %.2f bits "
           "(octave bands of the per-position curve; docs/EVALUATION.md)\n",
           EFFCTX_MARGIN_BITS);
}

static int run(eval_ckpt *k, const int *lengths, int n, int bca, long doc_bytes, long max_windows, const char *pos_path,
               int json) {
    const char *mode = bca ? "bca" : "full";
    int max_L = 0;
    for (int i = 0; i < n; i++) max_L = lengths[i] > max_L ? lengths[i] : max_L;
    for (int i = 0; i < n; i++) // every length has a window before any work starts
        if (eval_count_windows(k->data, lengths[i], doc_bytes) == 0)
            return !cli_error("eval: no validation document has the %d bytes a window of length %d needs "
                              "(longest: %llu bytes)",
                              lengths[i] + 1, lengths[i], (unsigned long long)eval_longest_val_doc(k->data));
    grape_evaluator *e = NULL;
    if (!eval_set_bca(k, "eval", bca)) return 0;
    if (grape_evaluator_create(&e, k->m, max_L)) return !cli_error("eval: %s", grape_last_error());
    eval_result r[EVAL_MAX_LENGTHS];
    double *pos = calloc((size_t)n * (size_t)max_L, sizeof(double)); // the curves behind effective_context
    int eff[EVAL_MAX_LENGTHS], ok = pos ? 1 : !cli_error("eval: out of memory");
    for (int i = 0; i < n && ok; i++) {
        eval_bar bar = {mode, lengths[i], eval_now()};
        grape_status s = eval_length(&r[i], e, k->data, lengths[i], doc_bytes, max_windows, pos + (size_t)i * max_L,
                                     eval_bar_update, &bar);
        eval_bar_clear();
        if (s) ok = !cli_error("eval: length %d: %s", lengths[i], grape_last_error());
    }
    if (ok) ok = effective_contexts(eff, r, n, pos, max_L);
    if (ok) print_results(r, eff, n, mode, json);
    if (ok && pos_path) ok = write_per_position(pos_path, r, n, mode);
    free(pos);
    grape_evaluator_free(e);
    return ok;
}

int cmd_eval(int argc, char **argv) {
    cli_args a = {argc, argv, known};
    if (args_flag(&a, "--help") || args_flag(&a, "-h")) return usage(), 0;
    if (!args_check(&a, booleans)) return 1;
    eval_ckpt k;
    long doc_bytes;
    int lengths[EVAL_MAX_LENGTHS], n;
    if (!eval_cli_open(&k, &doc_bytes, lengths, &n, &a, "eval", default_mults, 5)) return 1;
    int json = args_flag(&a, "--json");
    long max_windows = 0;
    if (!args_long(&a, "--max-windows", 0, 1L << 40, &max_windows)) return eval_ckpt_close(&k), 1;
    if (!json)
        printf("grape eval: %s (%s, trained at %d for %lld steps), %s attention, validation of %s\n",
               args_str(&a, "--ckpt"), k.cfg.pe_name, k.cfg.seq, (long long)k.st.step,
               args_flag(&a, "--bca") ? "LEX blockwise causal" : "full causal",
               args_str(&a, "--data") ? args_str(&a, "--data") : k.cfg.data);
    int ok = run(&k, lengths, n, args_flag(&a, "--bca"), doc_bytes, max_windows, args_str(&a, "--per-position"), json);
    eval_ckpt_close(&k);
    return ok ? 0 : 1;
}
