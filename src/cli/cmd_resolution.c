// cmd_resolution.c — `grape resolution`: LEX attention resolution R(s) per layer and averaged over layers, from
// the pre-softmax scores (bias included) of every validation window (src/eval/resolution.h, docs/EVALUATION.md).
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cmd_eval_util.h"
#include "eval/eval.h"
#include "eval/resolution.h"

static const char *const known[] = {"--ckpt", "--data", "--lengths", "--doc-bytes", "--threads", NULL};
static const char *const booleans[] = {"--bca", "--json", NULL};
static const int default_mults[] = {1, 2};

static void usage(void) {
    printf("usage: grape resolution --ckpt DIR [options]\n\n"
           "LEX attention resolution R(s) (arXiv 2212.10554 Eq. 3 with the estimate of Eq. 11): the mean\n"
           "pre-softmax score (q.k scaled plus the additive bias) at each distance over the validation windows,\n"
           "R per head, averaged over heads (per layer) and over layers. Higher: attention decays monotonically.\n\n"
           "  --ckpt DIR            run directory of grape train\n"
           "  --data PATH           corpus [the one the checkpoint was trained on]\n"
           "  --lengths L1,L2       window lengths [1x,2x the training length]\n"
           "  --bca                 LEX blockwise causal attention, window = training length [full causal]\n"
           "  --json                one JSON object per length: length, mode, r, layers, windows\n"
           "  --doc-bytes N         use only the first N bytes of each validation document, 0 = all [0]\n"
           "  --threads N           OpenMP threads [all cores]\n");
}

// R at length L into r (its layers' values stay in acc); prints and returns 0 on failure.
static int measure(eval_ckpt *k, resolution_acc *acc, eval_result *res, int L, int bca, long doc_bytes) {
    grape_evaluator *e = NULL;
    int ok = eval_set_bca(k, "resolution", bca);
    if (ok && (grape_evaluator_create(&e, k->m, L) || resolution_create(acc, k->m, L)))
        ok = !cli_error("resolution: %s", grape_last_error());
    if (!ok) return grape_evaluator_free(e), 0;
    grape_evaluator_observe(e, resolution_observe, acc);
    eval_bar bar = {"resolution", L, eval_now()};
    grape_status s = eval_length(res, e, k->data, L, doc_bytes, 0, NULL, eval_bar_update, &bar);
    eval_bar_clear();
    grape_evaluator_free(e);
    if (s) {
        resolution_free(acc);
        return !cli_error("resolution: length %d: %s", L, grape_last_error());
    }
    return 1;
}

static void print_one(const resolution_acc *acc, const eval_result *res, int bca, int json, int last) {
    const char *mode = bca ? "bca" : "full";
    if (json) {
        printf("{\"length\": %d, \"mode\": \"%s\", \"r\": %.6f, \"layers\": [", res->length, mode,
               resolution_mean(acc));
        for (int l = 0; l < acc->L; l++) printf("%s%.6f", l ? ", " : "", resolution_layer(acc, l));
        printf("], \"windows\": %lld}%s\n", (long long)res->windows, last ? "" : ",");
        return;
    }
    printf("%8d  %-4s  %8.4f  ", res->length, mode, resolution_mean(acc));
    for (int l = 0; l < acc->L; l++) printf(" %7.4f", resolution_layer(acc, l));
    printf("  %8lld\n", (long long)res->windows);
}

int cmd_resolution(int argc, char **argv) {
    cli_args a = {argc, argv, known};
    if (args_flag(&a, "--help") || args_flag(&a, "-h")) return usage(), 0;
    if (!args_check(&a, booleans)) return 1;
    eval_ckpt k;
    long doc_bytes;
    int lengths[EVAL_MAX_LENGTHS], n, bca = args_flag(&a, "--bca"), json = args_flag(&a, "--json"), ok = 1;
    if (!eval_cli_open(&k, &doc_bytes, lengths, &n, &a, "resolution", default_mults, 2)) return 1;
    if (json)
        printf("[\n");
    else
        printf("grape resolution: %s (%s, trained at %d), %s attention\n%8s  %-4s  %8s  %-*s  %8s\n",
               args_str(&a, "--ckpt"), k.cfg.pe_name, k.cfg.seq, bca ? "LEX blockwise causal" : "full causal",
               "length", "mode", "R mean", 8 * k.cfg.model.n_layer, " R per layer", "windows");
    for (int i = 0; i < n && ok; i++) {
        resolution_acc acc;
        eval_result res;
        if ((ok = measure(&k, &acc, &res, lengths[i], bca, doc_bytes))) {
            print_one(&acc, &res, bca, json, i + 1 == n);
            resolution_free(&acc);
        }
    }
    if (ok && json) printf("]\n");
    eval_ckpt_close(&k);
    return ok ? 0 : 1;
}
