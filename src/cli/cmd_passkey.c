// cmd_passkey.c — `grape passkey`: exact-match passkey retrieval by context length x depth (docs/EVALUATION.md).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_eval_util.h"
#include "core/atomic_file.h"
#include "eval/passkey.h"
#include "train/task_mix.h"

#define MAX_DEPTHS 32

static const char *const known[] = {"--ckpt", "--data",  "--lengths", "--depths", "--trials",
                                    "--seed", "--key",   "--png",     "--threads", NULL};
static const char *const booleans[] = {"--bca", "--json", NULL};
static const int default_mults[] = {1, 2, 4, 8, 16};

static void usage(void) {
    printf("usage: grape passkey --ckpt DIR [options]\n\n"
           "Passkey retrieval: a random key of digits stated once ('#' then the key) at a depth inside filler from\n"
           "the validation documents, asked for at the end ('#'); exact match of the whole key (argmax at every\n"
           "key byte). Accuracy by context length x depth with a Wilson 95%% interval, and effective_context =\n"
           "the longest length whose accuracy stays >= 0.9 x the accuracy at the training length.\n\n"
           "  --ckpt DIR            run directory of grape train (ideally trained with --task-mix passkey:F)\n"
           "  --data PATH           corpus for the filler [the one the checkpoint was trained on]\n"
           "  --lengths L1,L2,...   context lengths [1x,2x,4x,8x,16x the training length]\n"
           "  --depths D1,D2,...    needle depths in [0, 1] of the filler [0,0.25,0.5,0.75,1]\n"
           "  --trials N            samples per length x depth [20]\n"
           "  --key N               digits in the key [the checkpoint's task mix, else 1]\n"
           "  --seed S              fillers and keys [1]\n"
           "  --bca                 LEX blockwise causal attention, window = training length [full causal]\n"
           "  --json                one JSON object: cells, lengths, effective_context\n"
           "  --png FILE            heat-map of accuracy (length x depth) through gnuplot\n"
           "  --threads N           OpenMP threads [all cores]\n");
}

static int parse_depths(double *d, int *n, const char *s) {
    *n = 0;
    if (!s) {
        for (int i = 0; i < PASSKEY_DEFAULT_DEPTHS; i++) d[(*n)++] = (double)i / (PASSKEY_DEFAULT_DEPTHS - 1);
        return 1;
    }
    for (const char *p = s; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0 && v <= 1) || (*end && *end != ','))
            return !cli_error("passkey: --depths wants comma-separated fractions in [0, 1], got '%s'", s);
        if (*n == MAX_DEPTHS) return !cli_error("passkey: at most %d depths", MAX_DEPTHS);
        d[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    return *n > 0 ? 1 : !cli_error("passkey: --depths is empty");
}

typedef struct {
    eval_bar bar;
    int64_t done, total;
} progress;

static void tick(void *ctx) {
    progress *p = ctx;
    eval_bar_update(&p->bar, ++p->done, p->total);
}

// Accuracy at the training length, or -1 when it was not evaluated.
static double accuracy_at(const int *lengths, const double *acc, int nl, int T) {
    for (int j = 0; j < nl; j++)
        if (lengths[j] == T) return acc[j];
    return -1;
}

static void print_results(const passkey_cell *c, const int *lengths, int nl, const double *depths, int nd,
                          const double *acc, int eff, int T, int key_len, const char *mode, int json) {
    if (json) {
        printf("{\"training_length\": %d, \"key_len\": %d, \"mode\": \"%s\", \"effective_context\": %d,\n"
               " \"lengths\": [",
               T, key_len, mode, eff);
        for (int j = 0; j < nl; j++)
            printf("%s{\"length\": %d, \"accuracy\": %.6f}", j ? ", " : "", lengths[j], acc[j]);
        printf("],\n \"cells\": [\n");
        for (int i = 0; i < nl * nd; i++)
            printf("  {\"length\": %d, \"depth\": %.6g, \"trials\": %d, \"hits\": %d, \"accuracy\": %.6f, "
                   "\"ci_low\": %.6f, \"ci_high\": %.6f}%s\n",
                   c[i].length, c[i].depth, c[i].trials, c[i].hits, (double)c[i].hits / c[i].trials, c[i].lo,
                   c[i].hi, i + 1 < nl * nd ? "," : "");
        printf(" ]}\n");
        return;
    }
    printf("%8s", "length");
    for (int k = 0; k < nd; k++) printf("  depth %-13.2f", depths[k]);
    printf("  %8s\n", "all");
    for (int j = 0; j < nl; j++) {
        printf("%8d", lengths[j]);
        for (int k = 0; k < nd; k++) {
            const passkey_cell *x = &c[j * nd + k];
            printf("  %5.2f [%4.2f,%4.2f] ", (double)x->hits / x->trials, x->lo, x->hi);
        }
        printf("  %8.3f\n", acc[j]);
    }
    printf("accuracy: exact-match share of %d trials per cell, [95%% Wilson interval]\n", c[0].trials);
    printf("effective_context: %d (training length %d, accuracy there %.3f; longest length keeping >= %.1f x it)\n",
           eff, T, accuracy_at(lengths, acc, nl, T), PASSKEY_EFFECTIVE_RATIO);
}

// PNG's gnuplot script (PNG with .gp in place of a .png suffix) written atomically, then gnuplot run on it.
static int heatmap(const char *png, const passkey_cell *c, const int *lengths, int nl, const double *depths, int nd,
                   const char *pe, const char *mode) {
    size_t n = strlen(png);
    if (n > 1000) return !cli_error("passkey: --png path is too long");
    char script[1010], title[GRAPE_PE_NAME_MAX + 64];
    snprintf(script, sizeof script, "%.*s.gp", (int)(n > 4 && !strcmp(png + n - 4, ".png") ? n - 4 : n), png);
    snprintf(title, sizeof title, "passkey accuracy: %s, %s attention", pe, mode);
    double *acc = malloc((size_t)nl * nd * sizeof *acc);
    if (!acc) return !cli_error("passkey: out of memory");
    for (int i = 0; i < nl * nd; i++) acc[i] = (double)c[i].hits / c[i].trials;
    textbuf b = {0};
    passkey_heatmap_gp(&b, png, title, lengths, nl, depths, nd, acc);
    free(acc);
    grape_status s = tb_status(&b);
    if (!s) s = atomic_write_file(script, b.p, b.len);
    tb_free(&b);
    if (s) return !cli_error("passkey: %s: %s", script, grape_last_error());
    return cli_gnuplot(NULL, script, "passkey");
}

static int run(eval_ckpt *k, const int *lengths, int nl, const double *depths, int nd, int trials, int key_len,
               uint64_t seed, int bca, int json, const char *png) {
    const char *mode = bca ? "bca" : "full";
    int max_L = 0;
    for (int j = 0; j < nl; j++) max_L = lengths[j] > max_L ? lengths[j] : max_L;
    grape_evaluator *e = NULL;
    if (!eval_set_bca(k, "passkey", bca)) return 0;
    if (grape_evaluator_create(&e, k->m, max_L)) return !cli_error("passkey: %s", grape_last_error());
    passkey_cell *cells = calloc((size_t)nl * nd, sizeof *cells);
    uint8_t *buf = malloc(3 * (size_t)max_L);
    double acc[EVAL_MAX_LENGTHS];
    int ok = cells && buf ? 1 : !cli_error("passkey: out of memory");
    progress pr = {{"passkey", max_L, eval_now()}, 0, (int64_t)nl * nd * trials};
    if (ok && passkey_grid_run(cells, e, buf, k->data, lengths, nl, depths, nd, trials, key_len, seed, tick, &pr))
        ok = !cli_error("passkey: %s", grape_last_error());
    eval_bar_clear();
    if (ok) {
        passkey_length_accuracy(acc, cells, nl * nd, lengths, nl);
        int eff = passkey_effective_context(lengths, acc, nl, k->cfg.seq, PASSKEY_EFFECTIVE_RATIO);
        print_results(cells, lengths, nl, depths, nd, acc, eff, k->cfg.seq, key_len, mode, json);
    }
    if (ok && png) ok = heatmap(png, cells, lengths, nl, depths, nd, k->cfg.pe_name, mode);
    free(cells);
    free(buf);
    grape_evaluator_free(e);
    return ok;
}

int cmd_passkey(int argc, char **argv) {
    cli_args a = {argc, argv, known};
    if (args_flag(&a, "--help") || args_flag(&a, "-h")) return usage(), 0;
    if (!args_check(&a, booleans)) return 1;
    long trials = 20, key = 0, seed = 1;
    double depths[MAX_DEPTHS];
    int nd;
    if (!args_long(&a, "--trials", 1, 1000000, &trials) || !args_long(&a, "--key", 1, PASSKEY_MAX_KEY, &key) ||
        !args_long(&a, "--seed", 0, 1L << 62, &seed) || !parse_depths(depths, &nd, args_str(&a, "--depths")))
        return 1;
    eval_ckpt k;
    long doc_bytes;
    int lengths[EVAL_MAX_LENGTHS], nl;
    if (!eval_cli_open(&k, &doc_bytes, lengths, &nl, &a, "passkey", default_mults, 5)) return 1;
    task_mix mix;
    int ok = task_mix_parse(&mix, k.cfg.task_mix) ? !cli_error("passkey: checkpoint %s: %s", args_str(&a, "--ckpt"),
                                                                grape_last_error())
                                                  : 1;
    if (!key) key = mix.key_len;
    if (ok && passkey_check_lengths(k.data, lengths, nl, (int)key)) ok = !cli_error("passkey: %s", grape_last_error());
    if (ok && !args_flag(&a, "--json"))
        printf("grape passkey: %s (%s, trained at %d for %lld steps, task mix '%s'), %s attention, key %ld digit(s)\n",
               args_str(&a, "--ckpt"), k.cfg.pe_name, k.cfg.seq, (long long)k.st.step, k.cfg.task_mix,
               args_flag(&a, "--bca") ? "LEX blockwise causal" : "full causal", key);
    if (ok)
        ok = run(&k, lengths, nl, depths, nd, (int)trials, (int)key, (uint64_t)seed, args_flag(&a, "--bca"),
                 args_flag(&a, "--json"), args_str(&a, "--png"));
    eval_ckpt_close(&k);
    return ok ? 0 : 1;
}
