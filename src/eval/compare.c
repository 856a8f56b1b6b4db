// compare.c — per-run records and the report files of `grape compare` (compare.h).
#include "eval/compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "core/textbuf.h"
#include "eval/passkey.h"

#define RUN_MAGIC "grape-compare-run 1"

static const char *mode_name(int bca) { return bca ? "bca" : "full"; }

// ---------------------------------------------------------------------------------------------------------------
// Run records

grape_status cmp_run_save(const cmp_run *r, const char *path) {
    textbuf b = {0};
    tb_printf(&b, "%s\npe %s\nseed %d\ntrain_tokens_per_s %.17g\nr1 %.17g\nr2 %.17g\n", RUN_MAGIC, r->pe, r->seed,
              r->train_tokens_per_s, r->r1, r->r2);
    for (int i = 0; i < r->n_eval; i++) {
        const cmp_eval *e = &r->ev[i];
        tb_printf(&b, "eval %d %d %.17g %lld %lld %.17g\n", e->length, e->bca, e->bpb, (long long)e->windows,
                  (long long)e->bytes, e->tokens_per_s);
    }
    if (r->eff_length)
        tb_printf(&b, "effctx_text %d %d %lld\n", r->eff_text, r->eff_length, (long long)r->eff_windows);
    if (r->n_band) {
        tb_printf(&b, "effctx_bands %d", r->n_band);
        for (int k = 0; k < r->n_band; k++) tb_printf(&b, " %.17g", r->band[k]);
        tb_printf(&b, "\n");
    }
    if (r->n_pk) tb_printf(&b, "passkey_eff %d\n", r->pk_eff);
    for (int i = 0; i < r->n_pk; i++)
        tb_printf(&b, "passkey %d %.17g %d %d\n", r->pk[i].length, r->pk[i].depth, r->pk[i].hits, r->pk[i].trials);
    grape_status s = tb_status(&b);
    if (!s) s = atomic_write_file(path, b.p, b.len);
    tb_free(&b);
    return s;
}

// "effctx_bands N m1 ... mN": N in [1, EFFCTX_MAX_BANDS], N finite numbers and nothing else.
static grape_status parse_bands(cmp_run *r, const char *p) {
    char *end;
    long n = strtol(p, &end, 10);
    if (end == p || n < 1 || n > EFFCTX_MAX_BANDS) return GRAPE_ERR_FORMAT;
    for (int k = 0; k < n; k++) {
        p = end;
        r->band[k] = strtod(p, &end);
        if (end == p || !isfinite(r->band[k])) return GRAPE_ERR_FORMAT;
    }
    while (*end == ' ' || *end == '\n') end++;
    if (*end) return GRAPE_ERR_FORMAT;
    r->n_band = (int)n;
    return GRAPE_OK;
}

static grape_status parse_line(cmp_run *r, const char *line) {
    long long w, by;
    cmp_eval e = {0};
    cmp_pk_cell c;
    if (!strncmp(line, "effctx_bands ", 13)) return parse_bands(r, line + 13);
    if (!strncmp(line, "passkey ", 8)) {
        if (r->n_pk == CMP_MAX_PK_CELLS ||
            sscanf(line + 8, "%d %lf %d %d", &c.length, &c.depth, &c.hits, &c.trials) != 4 || c.trials < 1)
            return GRAPE_ERR_FORMAT;
        r->pk[r->n_pk++] = c;
        return GRAPE_OK;
    }
    if (!strncmp(line, "eval ", 5)) { // a 7th field (per-length effective context of older records) is ignored
        if (r->n_eval == CMP_MAX_EVALS || sscanf(line + 5, "%d %d %lf %lld %lld %lf", &e.length, &e.bca, &e.bpb,
                                                 &w, &by, &e.tokens_per_s) < 6)
            return GRAPE_ERR_FORMAT;
        e.windows = w, e.bytes = by;
        r->ev[r->n_eval++] = e;
        return GRAPE_OK;
    }
    int ok = sscanf(line, "pe %63s", r->pe) == 1 || sscanf(line, "seed %d", &r->seed) == 1 ||
             sscanf(line, "train_tokens_per_s %lf", &r->train_tokens_per_s) == 1 ||
             sscanf(line, "r1 %lf", &r->r1) == 1 || sscanf(line, "r2 %lf", &r->r2) == 1 ||
             sscanf(line, "passkey_eff %d", &r->pk_eff) == 1 ||
             (sscanf(line, "effctx_text %d %d %lld", &r->eff_text, &r->eff_length, &w) == 3 && (r->eff_windows = w));
    return ok ? GRAPE_OK : GRAPE_ERR_FORMAT;
}

// Passkey accuracy of one run at a length (all its depths), NaN when not measured.
static double pk_accuracy(const cmp_run *r, int length) {
    int h = 0, n = 0;
    for (int i = 0; i < r->n_pk; i++)
        if (r->pk[i].length == length) h += r->pk[i].hits, n += r->pk[i].trials;
    return n ? (double)h / n : NAN;
}

// The passkey effective context of r's cells (its shortest length is the training length, as in every compare):
// records keep the value computed when they were written, and loading recomputes it so that every record, older
// ones included, follows the current rule (eval/passkey.h).
static int pk_eff_of_cells(const cmp_run *r) {
    int lengths[CMP_MAX_PK_CELLS], n = 0, T = 0;
    double acc[CMP_MAX_PK_CELLS];
    for (int i = 0; i < r->n_pk; i++) {
        int seen = 0;
        for (int j = 0; j < n; j++) seen |= lengths[j] == r->pk[i].length;
        if (!seen) lengths[n++] = r->pk[i].length;
        if (!T || r->pk[i].length < T) T = r->pk[i].length;
    }
    for (int j = 0; j < n; j++) acc[j] = pk_accuracy(r, lengths[j]);
    return passkey_effective_context(lengths, acc, n, T, PASSKEY_EFFECTIVE_RATIO);
}

grape_status cmp_run_load(cmp_run *r, const char *path) {
    *r = (cmp_run){.r1 = NAN, .r2 = NAN};
    FILE *f = fopen(path, "r");
    if (!f) return error_fail(GRAPE_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    char line[512];
    grape_status s = fgets(line, sizeof line, f) && !strncmp(line, RUN_MAGIC, strlen(RUN_MAGIC)) ? GRAPE_OK
                                                                                               : GRAPE_ERR_FORMAT;
    while (!s && fgets(line, sizeof line, f)) s = parse_line(r, line);
    fclose(f);
    if (!s && (!r->pe[0] || !r->n_eval)) s = GRAPE_ERR_FORMAT;
    if (!s && r->n_pk) r->pk_eff = pk_eff_of_cells(r);
    if (!s && r->n_band) r->eff_text = effctx_from_bands(r->band, r->n_band, EFFCTX_MARGIN_BITS); // current rule
    return s ? error_fail(GRAPE_ERR_FORMAT, "'%s' is not a grape compare run record", path) : GRAPE_OK;
}

#define CMP_MAX_RATES 4096

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    if (!n) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

// The median interval: a run paused or sharing the machine for a few intervals keeps its typical speed.
grape_status cmp_read_metrics(cmp_run *r, const char *metrics_path) {
    FILE *f = fopen(metrics_path, "r");
    if (!f) return error_fail(GRAPE_ERR_IO, "cannot read '%s': %s", metrics_path, strerror(errno));
    char line[1024];
    double rates[CMP_MAX_RATES];
    int n = 0;
    r->n_curve = 0;
    while (fgets(line, sizeof line, f)) {
        const char *st = strstr(line, "\"step\": "), *tps = strstr(line, "\"tokens_per_s\": "),
                   *v = strstr(line, "\"val_bpb\": ");
        double rate = tps ? strtod(tps + 16, NULL) : 0;
        if (rate > 0 && n < CMP_MAX_RATES) rates[n++] = rate;
        if (st && v && r->n_curve < CMP_MAX_CURVE) {
            r->curve_step[r->n_curve] = strtod(st + 8, NULL);
            r->curve_bpb[r->n_curve++] = strtod(v + 11, NULL);
        }
    }
    fclose(f);
    r->train_tokens_per_s = median(rates, n);
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics over seeds

typedef struct {
    int n;
    double mean, std; // sample std (n - 1), 0 for one seed
} stat;

static stat stat_of(const double *x, int n) {
    stat s = {n, 0, 0};
    for (int i = 0; i < n; i++) s.mean += x[i] / n;
    for (int i = 0; n > 1 && i < n; i++) s.std += (x[i] - s.mean) * (x[i] - s.mean) / (n - 1);
    s.std = sqrt(s.std);
    if (!n) s.mean = NAN;
    return s;
}

// BPB of encoding pe at (length, bca) over its seeds.
static stat bpb_stat(const cmp_run *runs, int n_runs, const char *pe, int length, int bca) {
    double x[256];
    int n = 0;
    for (int i = 0; i < n_runs; i++)
        for (int j = 0; !strcmp(runs[i].pe, pe) && j < runs[i].n_eval && n < 256; j++)
            if (runs[i].ev[j].length == length && runs[i].ev[j].bca == bca) x[n++] = runs[i].ev[j].bpb;
    return stat_of(x, n);
}

// field 0: training tokens/s, 1: R at 1x, 2: R at 2x.
static stat run_stat(const cmp_run *runs, int n_runs, const char *pe, int field) {
    double x[256];
    int n = 0;
    for (int i = 0; i < n_runs && n < 256; i++)
        if (!strcmp(runs[i].pe, pe)) x[n++] = field == 0 ? runs[i].train_tokens_per_s : field == 1 ? runs[i].r1 : runs[i].r2;
    return stat_of(x, n);
}

// Effective context from natural text of encoding pe over its seeds (measured with full attention only).
static stat effctx_stat(const cmp_run *runs, int n_runs, const char *pe, int bca) {
    double x[256];
    int n = 0;
    for (int i = 0; i < n_runs && n < 256 && !bca; i++)
        if (!strcmp(runs[i].pe, pe) && runs[i].eff_length) x[n++] = runs[i].eff_text;
    return stat_of(x, n);
}

// field 0: passkey accuracy at length, 1: passkey effective context; over the seeds of pe that measured it.
static stat pk_stat(const cmp_run *runs, int n_runs, const char *pe, int field, int length) {
    double x[256];
    int n = 0;
    for (int i = 0; i < n_runs && n < 256; i++)
        if (!strcmp(runs[i].pe, pe) && runs[i].n_pk) x[n++] = field ? runs[i].pk_eff : pk_accuracy(&runs[i], length);
    return stat_of(x, n);
}

static int any_passkey(const cmp_run *runs, int n_runs) {
    for (int i = 0; i < n_runs; i++)
        if (runs[i].n_pk) return 1;
    return 0;
}

static int has_runs(const cmp_run *runs, int n_runs, const char *pe) {
    for (int i = 0; i < n_runs; i++)
        if (!strcmp(runs[i].pe, pe)) return 1;
    return 0;
}

static int has_bca(const cmp_run *runs, int n_runs, const char *pe) {
    for (int i = 0; i < n_runs; i++)
        for (int j = 0; !strcmp(runs[i].pe, pe) && j < runs[i].n_eval; j++)
            if (runs[i].ev[j].bca) return 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// results.md

static void md_cell(textbuf *b, stat s, int bold) {
    if (s.n == 0) {
        tb_printf(b, " — |");
        return;
    }
    const char *m = bold ? "**" : "";
    if (s.n > 1)
        tb_printf(b, " %s%.4f ± %.4f%s |", m, s.mean, s.std, m);
    else
        tb_printf(b, " %s%.4f%s |", m, s.mean, m);
}

// "mean ± std" (or "mean" for one seed) of a count-like statistic, "—" when absent.
static void md_count(textbuf *b, stat s, const char *fmt_digits) {
    if (!s.n) {
        tb_printf(b, " — |");
        return;
    }
    tb_printf(b, " ");
    tb_printf(b, fmt_digits, s.mean);
    if (s.n > 1) tb_printf(b, " ± "), tb_printf(b, fmt_digits, s.std);
    tb_printf(b, " |");
}

static void md_table(textbuf *b, const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs, int n_runs,
                     const int *lengths, int n_len, int T) {
    int pk = any_passkey(runs, n_runs);
    double best[CMP_MAX_EVALS];
    for (int c = 0; c < n_len; c++) {
        best[c] = INFINITY;
        for (int p = 0; p < n_pes; p++)
            for (int bca = 0; bca < 2; bca++) {
                stat s = bpb_stat(runs, n_runs, pes[p], lengths[c], bca);
                if (s.n && s.mean < best[c]) best[c] = s.mean;
            }
    }
    stat nope = run_stat(runs, n_runs, "nope", 0);
    tb_printf(b, "| encoding |");
    for (int c = 0; c < n_len; c++) tb_printf(b, " %d (%gx) |", lengths[c], (double)lengths[c] / T);
    tb_printf(b, " train tok/s vs nope | R 1x | R 2x | eff ctx text |%s\n|---|",
              pk ? " passkey 1x | eff ctx passkey |" : "");
    for (int c = 0; c < n_len + 4 + 2 * pk; c++) tb_printf(b, "---:|");
    tb_printf(b, "\n");
    for (int p = 0; p < n_pes; p++)
        for (int bca = 0; bca < 1 + has_bca(runs, n_runs, pes[p]); bca++) {
            tb_printf(b, "| %s%s |", pes[p], bca ? " +BCA" : "");
            for (int c = 0; c < n_len; c++) {
                stat s = bpb_stat(runs, n_runs, pes[p], lengths[c], bca);
                md_cell(b, s, s.n && s.mean == best[c]);
            }
            stat tps = run_stat(runs, n_runs, pes[p], 0), r1 = run_stat(runs, n_runs, pes[p], 1),
                 r2 = run_stat(runs, n_runs, pes[p], 2);
            if (bca || !nope.n || !tps.n)
                tb_printf(b, " — |");
            else
                tb_printf(b, " %.2f× |", tps.mean / nope.mean);
            if (bca)
                tb_printf(b, " — | — |");
            else
                tb_printf(b, " %.3f | %.3f |", r1.mean, r2.mean);
            md_count(b, effctx_stat(runs, n_runs, pes[p], bca), "%.0f");
            if (pk && bca) tb_printf(b, " — | — |");
            if (pk && !bca) md_count(b, pk_stat(runs, n_runs, pes[p], 0, T), "%.2f");
            if (pk && !bca) md_count(b, pk_stat(runs, n_runs, pes[p], 1, T), "%.0f");
            tb_printf(b, "\n");
        }
}

static void write_md(textbuf *b, const cmp_budget *bu, const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs,
                     int n_runs, const int *lengths, int n_len) {
    tb_printf(b, "# grape compare\n\npreset %s, %lld steps of batch %d x seq %d, lr %g, data %s", bu->preset,
              (long long)bu->steps, bu->batch, bu->seq, bu->lr, bu->data);
    if (bu->doc_bytes > 0) tb_printf(b, ", first %lld bytes of each validation document", (long long)bu->doc_bytes);
    tb_printf(b, ".\n\nValidation bits per byte by window length (mean ± std over seeds when there are several; "
                 "lower is better; **bold**: best in its column). `+BCA`: LEX blockwise causal attention with window "
                 "%d (equal to full attention at 1x). Training tokens/s relative to `nope` (same machine, noisy "
                 "when it is shared); R: LEX attention resolution at 1x and 2x the training length, full "
                 "attention. Eff ctx text: the longest context up to which each doubling still lowers the loss by >= 0.01 bits, "
                 "from the per-position curve of a full-attention pass at the longest length over %s "
                 "(docs/EVALUATION.md).",
              bu->seq, bu->effctx_windows ? "evenly spaced validation windows" : "every validation window");
    if (any_passkey(runs, n_runs))
        tb_printf(b, " Passkey (task mix '%s', %d trials per length x depth, full attention): exact-match accuracy at "
                     "1x over all depths, and eff ctx passkey = the longest length keeping >= 0.9 x that accuracy; "
                     "heat-maps passkey_*.png.",
                  bu->task_mix, bu->passkey_trials);
    tb_printf(b, "\n\n");
    md_table(b, pes, n_pes, runs, n_runs, lengths, n_len, bu->seq);
    tb_printf(b, "\nRuns:");
    for (int i = 0; i < n_runs; i++) tb_printf(b, " %s/s%d", runs[i].pe, runs[i].seed);
    tb_printf(b, ". Plots: bpb_vs_length.png, loss_curves.png. Commands: commands.txt.\n");
}

// ---------------------------------------------------------------------------------------------------------------
// results.csv, results.json

static void write_csv(textbuf *b, const cmp_run *runs, int n_runs, int T) {
    tb_printf(b, "pe,seed,length,mult,mode,bpb,windows,bytes,eval_tokens_per_s,train_tokens_per_s,r_1x,r_2x,"
                 "eff_ctx_text,passkey_acc,eff_ctx_passkey\n");
    for (int i = 0; i < n_runs; i++)
        for (int j = 0; j < runs[i].n_eval; j++) {
            const cmp_eval *e = &runs[i].ev[j];
            double acc = e->bca ? NAN : pk_accuracy(&runs[i], e->length);
            tb_printf(b, "%s,%d,%d,%g,%s,%.6f,%lld,%lld,%.1f,%.1f,%.6f,%.6f,", runs[i].pe, runs[i].seed, e->length,
                      (double)e->length / T, mode_name(e->bca), e->bpb, (long long)e->windows, (long long)e->bytes,
                      e->tokens_per_s, runs[i].train_tokens_per_s, runs[i].r1, runs[i].r2);
            if (!e->bca && runs[i].eff_length) tb_printf(b, "%d", runs[i].eff_text);
            tb_printf(b, ",");
            if (isfinite(acc))
                tb_printf(b, "%.4f,%d\n", acc, runs[i].pk_eff);
            else
                tb_printf(b, ",\n");
        }
}

// JSON has no NaN: null instead.
static void jnum(textbuf *b, double x) {
    if (isfinite(x))
        tb_printf(b, "%.6g", x);
    else
        tb_printf(b, "null");
}

static void write_json(textbuf *b, const cmp_budget *bu, const cmp_run *runs, int n_runs) {
    tb_printf(b, "{\"budget\": {\"preset\": ");
    tb_json_string(b, bu->preset);
    tb_printf(b, ", \"steps\": %lld, \"batch\": %d, \"seq\": %d, \"lr\": %g, \"doc_bytes\": %lld, \"data\": ",
              (long long)bu->steps, bu->batch, bu->seq, bu->lr, (long long)bu->doc_bytes);
    tb_json_string(b, bu->data);
    tb_printf(b, ", \"task_mix\": ");
    tb_json_string(b, bu->task_mix);
    tb_printf(b, ", \"passkey_trials\": %d, \"effctx_windows\": %lld},\n \"runs\": [", bu->passkey_trials,
              (long long)bu->effctx_windows);
    for (int i = 0; i < n_runs; i++) {
        const cmp_run *r = &runs[i];
        tb_printf(b, "%s\n  {\"pe\": ", i ? "," : "");
        tb_json_string(b, r->pe);
        tb_printf(b, ", \"seed\": %d, \"train_tokens_per_s\": ", r->seed);
        jnum(b, r->train_tokens_per_s);
        tb_printf(b, ", \"r_1x\": ");
        jnum(b, r->r1);
        tb_printf(b, ", \"r_2x\": ");
        jnum(b, r->r2);
        if (r->eff_length)
            tb_printf(b, ",\n   \"effective_context_text\": {\"value\": %d, \"length\": %d, \"windows\": %lld}",
                      r->eff_text, r->eff_length, (long long)r->eff_windows);
        if (r->n_band) {
            tb_printf(b, ",\n   \"effctx_bands\": [");
            for (int k = 0; k < r->n_band; k++) {
                tb_printf(b, "%s", k ? ", " : "");
                jnum(b, r->band[k]);
            }
            tb_printf(b, "]");
        }
        tb_printf(b, ",\n   \"evals\": [");
        for (int j = 0; j < r->n_eval; j++) {
            const cmp_eval *e = &r->ev[j];
            tb_printf(b, "%s{\"length\": %d, \"mode\": \"%s\", \"bpb\": ", j ? ", " : "", e->length, mode_name(e->bca));
            jnum(b, e->bpb);
            tb_printf(b, ", \"windows\": %lld, \"bytes\": %lld, \"tokens_per_s\": %.1f}", (long long)e->windows,
                      (long long)e->bytes, e->tokens_per_s);
        }
        if (r->n_pk) {
            tb_printf(b, "],\n   \"passkey\": {\"effective_context\": %d, \"cells\": [", r->pk_eff);
            for (int j = 0; j < r->n_pk; j++)
                tb_printf(b, "%s{\"length\": %d, \"depth\": %g, \"hits\": %d, \"trials\": %d}", j ? ", " : "",
                          r->pk[j].length, r->pk[j].depth, r->pk[j].hits, r->pk[j].trials);
            tb_printf(b, "]}");
        } else {
            tb_printf(b, "]");
        }
        tb_printf(b, ",\n   \"val_curve\": [");
        for (int j = 0; j < r->n_curve; j++)
            tb_printf(b, "%s[%.0f, %.6f]", j ? ", " : "", r->curve_step[j], r->curve_bpb[j]);
        tb_printf(b, "]}");
    }
    tb_printf(b, "\n]}\n");
}

// ---------------------------------------------------------------------------------------------------------------
// gnuplot scripts (data inline, so each script re-plots on its own: gnuplot bpb_vs_length.gp)

// One colour per encoding (its +BCA line shares it, dashed), distinct for up to 24 encodings (the science run
// compares 20).
static const char *gp_color(int p) {
    static const char *c[] = {"#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
                              "#f781bf", "#999999", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                              "#e6ab02", "#17becf", "#000080", "#808000", "#800000", "#6a3d9a", "#b2df8a",
                              "#fb9a99", "#cab2d6", "#fdbf6f"};
    return c[p % (int)(sizeof c / sizeof *c)];
}

// n_keys legend entries: up to 12 fit beside the plot; more go below it in three columns on a taller canvas, so
// the plot keeps the width of the page (a 32-entry key beside it squeezes it into a third). The key below gets one
// extra line of height so its first row clears the x label; the canvas grows by the same line.
static void gp_header(textbuf *b, const char *png, const char *title, const char *xl, const char *yl, int n_keys) {
    int below = n_keys > 12, rows = (n_keys + 2) / 3;
    tb_printf(b, "set terminal pngcairo size 1000,%d noenhanced\nset output '%s'\nset title '%s'\n"
                 "set xlabel '%s'\nset ylabel '%s'\nset key %s\nset grid\n",
              below ? 600 + 18 * (rows + 1) : 640, png, title, xl, yl,
              below ? "outside below center maxcols 3 font ',10' samplen 3 height 1" : "outside right top");
}

// Legend entries of a plot with one line per encoding that `has` admits.
static int gp_count_keys(const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs, int n_runs,
                         int (*has)(const cmp_run *, int, const char *)) {
    int n = 0;
    for (int p = 0; p < n_pes; p++) n += has(runs, n_runs, pes[p]) != 0;
    return n;
}

static void write_gp_length(textbuf *b, const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs, int n_runs,
                            const int *lengths, int n_len) {
    int n_keys = 0; // a line per encoding with runs, and one more for its BCA evaluation
    for (int p = 0; p < n_pes; p++)
        if (has_runs(runs, n_runs, pes[p])) n_keys += 1 + (has_bca(runs, n_runs, pes[p]) != 0);
    gp_header(b, "bpb_vs_length.png", "validation BPB vs window length (error bars: std over seeds)",
              "window length (bytes, log2)", "bits per byte", n_keys);
    tb_printf(b, "set logscale x 2\nset offsets graph 0.04, graph 0.04, graph 0.05, graph 0.05\n");
    // encodings without a finished run yet (a report written while a compare runs) get no line; colours stay
    // those of the encodings' places in the directory
    int k = 0;
    double best = INFINITY;
    for (int p = 0; p < n_pes; p++)
        for (int bca = 0; has_runs(runs, n_runs, pes[p]) && bca < 1 + has_bca(runs, n_runs, pes[p]); bca++, k++) {
            tb_printf(b, "$d%d << EOD\n", k);
            for (int c = 0; c < n_len; c++) {
                stat s = bpb_stat(runs, n_runs, pes[p], lengths[c], bca);
                if (s.n) tb_printf(b, "%d %.6f %.6f\n", lengths[c], s.mean, s.std);
                if (s.n && s.mean < best) best = s.mean;
            }
            tb_printf(b, "EOD\n");
        }
    tb_printf(b, "plot");
    k = 0;
    for (int p = 0; p < n_pes; p++)
        for (int bca = 0; has_runs(runs, n_runs, pes[p]) && bca < 1 + has_bca(runs, n_runs, pes[p]); bca++, k++)
            tb_printf(b, "%s $d%d using 1:2:3 with yerrorlines lw 2 dt %d lc rgb '%s' pt %d title '%s%s'",
                      k ? ", \\\n    " : "", k, bca ? 2 : 1, gp_color(p), 1 + p % 13, pes[p], bca ? " +BCA" : "");
    tb_printf(b, "\n");
    // The same lines within 20% of the best cell: one exploding encoding stretches the axis of the first plot
    // until the encodings that extrapolate lie on top of each other.
    if (isfinite(best) && best > 0)
        tb_printf(b, "set output 'bpb_vs_length_zoom.png'\nset title 'validation BPB vs window length, within 20%% "
                     "of the best (lines above leave the plot)'\nset offsets 0, 0, 0, 0\nset yrange [%.4f:%.4f]\n"
                     "replot\n",
                  best * 0.99, best * 1.2);
}

static int has_bands(const cmp_run *runs, int n_runs, const char *pe) { // pe NULL: any encoding
    for (int i = 0; i < n_runs; i++)
        if (runs[i].n_band && (!pe || !strcmp(runs[i].pe, pe))) return 1;
    return 0;
}

int cmp_any_bands(const cmp_run *runs, int n_runs) { return has_bands(runs, n_runs, NULL); }

// "plot" with one line per encoding that `has` admits, data block $<block><place>, in the encoding's colour.
static void gp_plot_lines(textbuf *b, char block, const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs,
                          int n_runs, int (*has)(const cmp_run *, int, const char *)) {
    tb_printf(b, "plot");
    for (int p = 0, k = 0; p < n_pes; p++)
        if (has(runs, n_runs, pes[p]))
            tb_printf(b, "%s $%c%d using 1:2 with linespoints lw 2 lc rgb '%s' pt %d title '%s'", k++ ? ", \\\n    " : "",
                      block, p, gp_color(p), 1 + p % 13, pes[p]);
    tb_printf(b, "\n");
}

static void write_gp_curves(textbuf *b, const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs, int n_runs) {
    gp_header(b, "loss_curves.png", "validation BPB during training (mean over seeds)", "step", "bits per byte",
              gp_count_keys(pes, n_pes, runs, n_runs, has_runs));
    for (int p = 0; p < n_pes; p++) {
        tb_printf(b, "$c%d << EOD\n", p);
        const cmp_run *first = NULL;
        for (int i = 0; i < n_runs && !first; i++)
            if (!strcmp(runs[i].pe, pes[p])) first = &runs[i];
        for (int j = 0; first && j < first->n_curve; j++) { // seeds validate at the same steps
            double sum = 0;
            int n = 0;
            for (int i = 0; i < n_runs; i++)
                if (!strcmp(runs[i].pe, pes[p]) && j < runs[i].n_curve) sum += runs[i].curve_bpb[j], n++;
            tb_printf(b, "%.0f %.6f\n", first->curve_step[j], sum / n);
        }
        tb_printf(b, "EOD\n");
    }
    gp_plot_lines(b, 'c', pes, n_pes, runs, n_runs, has_runs);
}

// The effective-context picture: each encoding's octave band means (mean over its seeds that have them) against
// the context c, so where a curve stops falling, or turns up past the training length, is seen at a glance.
static void write_gp_effctx(textbuf *b, const char (*pes)[CMP_NAME], int n_pes, const cmp_run *runs, int n_runs) {
    gp_header(b, "effective_context.png",
              "loss by context: mean over the octave (c/2, c], mean over seeds (effective context: the largest c "
              "still >= 0.01 bit below c/2)",
              "context c (bytes, log2)", "bits per byte", gp_count_keys(pes, n_pes, runs, n_runs, has_bands));
    tb_printf(b, "set logscale x 2\nset title font ',10'\n");
    for (int p = 0; p < n_pes; p++) {
        if (!has_bands(runs, n_runs, pes[p])) continue;
        tb_printf(b, "$e%d << EOD\n", p);
        for (int k = 0; k < EFFCTX_MAX_BANDS; k++) {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < n_runs; i++)
                if (!strcmp(runs[i].pe, pes[p]) && k < runs[i].n_band) sum += runs[i].band[k], n++;
            if (n) tb_printf(b, "%d %.6f\n", 1 << k, sum / n);
        }
        tb_printf(b, "EOD\n");
    }
    gp_plot_lines(b, 'e', pes, n_pes, runs, n_runs, has_bands);
}

// ---------------------------------------------------------------------------------------------------------------

static grape_status put(const char *dir, const char *name, textbuf *b) {
    char path[2048];
    grape_status s = tb_status(b);
    if (!s && snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        s = error_fail(GRAPE_ERR_ARG, "path too long: %s", dir);
    if (!s) s = atomic_write_file(path, b->p, b->len);
    tb_reset(b);
    return s;
}

// Passkey heat-map scripts: one per encoding with passkey cells, accuracy pooled over its seeds per cell (a grid
// of at most 16 lengths x 16 depths).
static grape_status write_heatmaps(const char *dir, textbuf *b, const char (*pes)[CMP_NAME], int n_pes,
                                   const cmp_run *runs, int n_runs) {
    enum { G = 16 };
    grape_status s = GRAPE_OK;
    for (int p = 0; p < n_pes && !s; p++) {
        int lens[G], nl = 0, nd = 0, hits[G][G] = {{0}}, trials[G][G] = {{0}};
        double deps[G], acc[G * G];
        for (int i = 0; i < n_runs; i++)
            for (int c = 0; !strcmp(runs[i].pe, pes[p]) && c < runs[i].n_pk; c++) {
                const cmp_pk_cell *x = &runs[i].pk[c];
                int j = 0, k = 0;
                while (j < nl && lens[j] != x->length) j++;
                while (k < nd && deps[k] != x->depth) k++;
                if (j == G || k == G) continue;
                if (j == nl) lens[nl++] = x->length;
                if (k == nd) deps[nd++] = x->depth;
                hits[j][k] += x->hits, trials[j][k] += x->trials;
            }
        if (!nl) continue;
        for (int j = 0; j < nl; j++)
            for (int k = 0; k < nd; k++) acc[j * nd + k] = trials[j][k] ? (double)hits[j][k] / trials[j][k] : NAN;
        char name[CMP_NAME + 16], png[CMP_NAME + 16], title[CMP_NAME + 64];
        cmp_heatmap_name(name, sizeof name, pes[p], "gp");
        cmp_heatmap_name(png, sizeof png, pes[p], "png");
        snprintf(title, sizeof title, "passkey accuracy: %s (full attention, seeds pooled)", pes[p]);
        passkey_heatmap_gp(b, png, title, lens, nl, deps, nd, acc);
        s = put(dir, name, b);
    }
    return s;
}

void cmp_heatmap_name(char *buf, size_t n, const char *pe, const char *ext) {
    char safe[CMP_NAME];
    size_t i = 0;
    for (; pe[i] && i + 1 < sizeof safe; i++) {
        char c = pe[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
        safe[i] = ok ? c : '_';
    }
    safe[i] = '\0';
    snprintf(buf, n, "passkey_%s.%s", safe, ext);
}

grape_status cmp_write_reports(const char *dir, const cmp_budget *bu, const char (*pes)[CMP_NAME], int n_pes,
                               const cmp_run *runs, int n_runs, const int *lengths, int n_lengths) {
    textbuf b = {0};
    write_md(&b, bu, pes, n_pes, runs, n_runs, lengths, n_lengths);
    grape_status s = put(dir, "results.md", &b);
    if (!s) write_csv(&b, runs, n_runs, bu->seq), s = put(dir, "results.csv", &b);
    if (!s) write_json(&b, bu, runs, n_runs), s = put(dir, "results.json", &b);
    if (!s) write_gp_length(&b, pes, n_pes, runs, n_runs, lengths, n_lengths), s = put(dir, "bpb_vs_length.gp", &b);
    if (!s) write_gp_curves(&b, pes, n_pes, runs, n_runs), s = put(dir, "loss_curves.gp", &b);
    if (!s && cmp_any_bands(runs, n_runs))
        write_gp_effctx(&b, pes, n_pes, runs, n_runs), s = put(dir, "effective_context.gp", &b);
    if (!s) s = write_heatmaps(dir, &b, pes, n_pes, runs, n_runs);
    tb_free(&b);
    return s;
}
