// cmd_compare.c — `grape compare`: train every encoding with one budget and seeds, evaluate each checkpoint at
// 1x..16x the training length (full attention, and LEX BCA for rotary encodings), and write the report files of
// src/eval/compare.h plus two gnuplot PNGs and commands.txt into DIR (docs/EVALUATION.md).
// Runs train in this process through the public trainer (grape_trainer_*) one job at a time: one progress line, no
// child output to parse, and the same code path as `grape train` (commands.txt lists the equivalent commands).
// Under `mpirun -np N`, the ranks form N / --ranks-per-job groups; group g takes the pending runs g, g + groups,
// ... (training data-parallel inside the group, evaluating on its first rank) and world rank 0 writes the report.
// Resumable: a run whose DIR/runs/NAME/eval.txt exists is done; a checkpoint short of its steps resumes bit-exactly
// (checkpoints every validation interval); re-running with more encodings or seeds adds runs to DIR. The report is
// rewritten after every finished run, so a long compare shows its tables and plots as it goes.
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_eval_util.h"
#include "cli/dist.h"
#include "eval/compare.h"
#include "eval/effctx.h"
#include "eval/passkey.h"
#include "train/task_mix.h" // the passkey layout the evaluation builds (key length)
#include "eval/eval.h"
#include "core/atomic_file.h"
#include "eval/resolution.h"
#include "core/textbuf.h"
#include "cli/progress.h"

#define CMP_MAX_PES 64
#define CMP_MAX_SEEDS 64
#define EVAL_BATCHES 8

static const char *const known[] = {"--pes",  "--preset",    "--steps",    "--seeds",         "--data",
                                    "--out",  "--batch",     "--seq",      "--lr",            "--doc-bytes",
                                    "--max-mult", "--eval-interval", "--threads", "--ranks-per-job", "--task-mix",
                                    "--passkey-trials", "--effctx-windows", NULL};
static const char *const booleans[] = {"--quiet", "--passkey", NULL};

static void usage(void) {
    printf("usage: grape compare --pes LIST --out DIR [options]\n\n"
           "Train each encoding with the same budget, data order and seeds, evaluate every checkpoint at 1x..16x\n"
           "the training length (full attention; also LEX BCA for rotary encodings) and write DIR/results.md,\n"
           "results.csv, results.json, bpb_vs_length.png, loss_curves.png and commands.txt. Resumable; running\n"
           "again with more encodings or seeds adds to DIR.\n\n"
           "  --pes LIST            comma-separated encodings (grape encodings), hybrids as ROT+BIAS\n"
           "  --out DIR             output directory (runs in DIR/runs/PE-sSEED)\n"
           "  --preset P            micro, tiny or small [tiny]\n"
           "  --steps N             optimizer steps per run [1000]\n"
           "  --seeds K             seeds 1..K per encoding [1]\n"
           "  --data PATH           corpus [data/kjv.txt]\n"
           "  --batch B, --seq T    batch and training length [the preset's]\n"
           "  --lr X                peak learning rate [1e-3]\n"
           "  --doc-bytes N         evaluate the first N bytes of each validation document [16 x seq; 0 = all]\n"
           "  --max-mult M          longest evaluation length as a multiple of seq, a power of two [16]\n"
           "  --eval-interval N     steps between validations (loss curves) and checkpoints [steps/10]\n"
           "  --threads N           OpenMP threads [all cores; under mpirun: cores / ranks on the machine]\n"
           "  --ranks-per-job G     under mpirun -np N: N/G groups of G ranks, each training its share of the\n"
           "                        runs data-parallel (G divides N and --batch) [1]\n"
           "  --task-mix SPEC       train every run with grape train --task-mix SPEC (passkey:F[,key=N][,pairs=P])\n"
           "  --passkey             measure passkey retrieval even without a task mix (on with --task-mix)\n"
           "  --passkey-trials N    passkey samples per length x depth [20]\n"
           "  --effctx-windows N    windows of the effective-context pass at the longest length, evenly spaced\n"
           "                        over the validation set [0 = every window]\n"
           "  --quiet               no progress line\n");
}

typedef struct {
    cmp_budget b;
    const char *out;
    char pes[CMP_MAX_PES][CMP_NAME], all[CMP_MAX_PES][CMP_NAME]; // this invocation's; every one DIR has seen
    int n_pes, n_all, seeds, quiet;
    int lengths[EVAL_MAX_LENGTHS], n_len;
    data_corpus *data;
    // progress: work in token units (training tokens; forward-only tokens count one third)
    int job, n_jobs, cur_L; // cur_L: the length being evaluated
    double t0, done, total, base;
    char what[160];
    grape_train_group world, group; // this process in the launch, and in its rank group
    int n_groups, color;      // color: this process's group, which runs the pending runs color, color + n_groups, ...
} compare;

// ---------------------------------------------------------------------------------------------------------------
// Progress: one line on stderr, redrawn in place on a terminal, printed once per job otherwise.

static void show(compare *cp, const char *detail, int newline) {
    if (cp->quiet) return;
    double el = eval_now() - cp->t0, eta = cp->done > 0 ? el * (cp->total - cp->done) / cp->done : 0;
    char e1[24], e2[24];
    progress_duration(e1, sizeof e1, el);
    progress_duration(e2, sizeof e2, eta);
    int tty = isatty(STDERR_FILENO);
    if (!tty && !newline) return;
    fprintf(stderr, "%scompare: job %d/%d %s%s | %3.0f%% | %s elapsed, ETA %s%s", tty ? "\r" : "", cp->job,
            cp->n_jobs, cp->what, detail, cp->total > 0 ? 100 * cp->done / cp->total : 100.0, e1,
            cp->done > 0 ? e2 : "?", tty ? "\033[K" : "\n");
    fflush(stderr);
}

static int on_train_step(const grape_train_report *r, void *ctx) {
    compare *cp = ctx;
    char d[64];
    cp->done = cp->base + (double)r->step * cp->b.batch * cp->b.seq;
    snprintf(d, sizeof d, " step %lld/%lld", (long long)r->step, (long long)r->steps);
    show(cp, d, 0);
    return 0;
}

static void on_eval_window(void *ctx, int64_t done, int64_t total) {
    compare *cp = ctx;
    (void)total;
    cp->done = cp->base + (double)done * cp->cur_L / 3;
    show(cp, "", 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Directory state: compare.cfg (the budget), pes.txt (encodings in order), invocations.txt

static int read_text(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 1;
}

static int write_text(const char *path, const char *text) {
    if (atomic_write_file(path, text, strlen(text))) return !cli_error("compare: %s", grape_last_error());
    return 1;
}

// dir/name into buf; --out is checked short enough (parse) that nothing is cut.
static void path_in(char *buf, size_t n, const char *dir, const char *name) {
    if (snprintf(buf, n, "%s/%s", dir, name) >= (int)n) buf[0] = '\0';
}

// The passkey and effctx lines only when used, so directories made before them keep their budget text.
static void budget_text(char *buf, size_t n, const cmp_budget *b) {
    int k = snprintf(buf, n, "preset %s\nsteps %lld\nbatch %d\nseq %d\nlr %.17g\ndoc_bytes %lld\neval_interval %lld\n"
                             "data %s\n",
                     b->preset, (long long)b->steps, b->batch, b->seq, b->lr, (long long)b->doc_bytes,
                     (long long)b->eval_interval, b->data);
    if (b->task_mix[0] && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, "task_mix %s\n", b->task_mix);
    if (b->passkey_trials && k > 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, "passkey_trials %d\n", b->passkey_trials);
    if (b->effctx_windows && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, "effctx_windows %lld\n", (long long)b->effctx_windows);
}

// The first compare into DIR fixes the budget; later ones must use the same.
static int check_budget(const compare *cp) {
    char path[2048], want[2048], have[2048];
    path_in(path, sizeof path, cp->out, "compare.cfg");
    budget_text(want, sizeof want, &cp->b);
    if (!read_text(path, have, sizeof have)) return write_text(path, want);
    if (!strcmp(want, have)) return 1;
    return !cli_error("compare: %s was made with another budget:\n%s\nthis run asks for:\n%s"
                      "use the same flags, or another --out",
                      cp->out, have, want);
}

// DIR/pes.txt: the encodings of every compare into DIR, first appearance first; this invocation's appended.
static int merge_pes(compare *cp) {
    char path[2048], text[CMP_MAX_PES * CMP_NAME + 1] = "";
    path_in(path, sizeof path, cp->out, "pes.txt");
    read_text(path, text, sizeof text);
    cp->n_all = 0;
    for (char *s = strtok(text, "\n"); s && cp->n_all < CMP_MAX_PES; s = strtok(NULL, "\n"))
        snprintf(cp->all[cp->n_all++], CMP_NAME, "%s", s);
    for (int i = 0; i < cp->n_pes; i++) {
        int seen = 0;
        for (int j = 0; j < cp->n_all; j++) seen |= !strcmp(cp->all[j], cp->pes[i]);
        if (!seen && cp->n_all == CMP_MAX_PES) return !cli_error("compare: at most %d encodings per directory", CMP_MAX_PES);
        if (!seen) memcpy(cp->all[cp->n_all++], cp->pes[i], CMP_NAME);
    }
    text[0] = '\0';
    for (int j = 0; j < cp->n_all; j++) strcat(strcat(text, cp->all[j]), "\n");
    return write_text(path, text);
}

static int append_invocation(const compare *cp, int argc, char **argv) {
    char path[2048];
    path_in(path, sizeof path, cp->out, "invocations.txt");
    FILE *f = fopen(path, "a");
    if (!f) return !cli_error("compare: cannot append to %s: %s", path, strerror(errno));
    fputs("grape", f);
    for (int i = 0; i < argc; i++) fprintf(f, " '%s'", argv[i]);
    fputc('\n', f);
    return fclose(f) == 0 ? 1 : !cli_error("compare: cannot write %s", path);
}

// ---------------------------------------------------------------------------------------------------------------
// One run: train (or resume), then evaluate

static void run_dir(char *buf, size_t n, const compare *cp, const char *pe, int seed) {
    if (snprintf(buf, n, "%s/runs/%s-s%d", cp->out, pe, seed) >= (int)n) buf[0] = '\0';
}

static int train_cfg(grape_train_config *c, const compare *cp, const char *pe, int seed) {
    grape_train_config_default(c);
    snprintf(c->preset, sizeof c->preset, "%s", cp->b.preset);
    snprintf(c->pe_name, sizeof c->pe_name, "%s", pe);
    snprintf(c->data, sizeof c->data, "%s", cp->b.data);
    snprintf(c->task_mix, sizeof c->task_mix, "%s", cp->b.task_mix);
    c->steps = cp->b.steps, c->batch = cp->b.batch, c->seq = cp->b.seq, c->opt.lr = cp->b.lr, c->seed = (uint64_t)seed;
    c->eval_interval = cp->b.eval_interval, c->eval_batches = EVAL_BATCHES, c->save_interval = cp->b.eval_interval;
    c->log_interval = cp->b.steps >= 50 ? cp->b.steps / 50 : 1;
    c->threads = omp_get_max_threads();
    if (grape_train_config_resolve(c)) return !cli_error("compare: %s", grape_last_error());
    return 1;
}

static int is_rotary(const char *pe) {
    grape_pe_config c;
    grape_pe_config_default(&c, 1, 2);
    return !grape_pe_parse(&c, pe) && c.rot != GRAPE_ROT_NONE;
}

// Steps of the run's checkpoint: 0 without one, -1 when one exists but cannot be read (grape_last_error says why).
static int64_t steps_done(const char *dir) {
    grape_train_state st;
    char path[2048];
    path_in(path, sizeof path, dir, GRAPE_CHECKPOINT_FILE);
    if (access(path, F_OK) != 0) return 0;
    return grape_train_checkpoint(NULL, &st, dir) ? -1 : st.step;
}

// Windows of the effective-context pass: every validation window at the longest length, or the budget's number.
static int64_t effctx_windows(const compare *cp) {
    int64_t all = eval_count_windows(cp->data, cp->lengths[cp->n_len - 1], 0), k = cp->b.effctx_windows;
    return k > 0 && k < all ? k : all;
}

static double eval_units(const compare *cp, const char *pe) {
    double u = 0;
    for (int i = 0; i < cp->n_len; i++) // passkey trials, counted at the first length's cost (on_passkey_trial)
        u += (double)cp->b.passkey_trials * PASSKEY_DEFAULT_DEPTHS * cp->lengths[0] / 3;
    for (int i = 0; i < cp->n_len; i++)
        u += (double)eval_count_windows(cp->data, cp->lengths[i], cp->b.doc_bytes) * cp->lengths[i] / 3 *
             (1 + (is_rotary(pe) && i > 0));
    return u + (double)effctx_windows(cp) * cp->lengths[cp->n_len - 1] / 3;
}

static int train_job(compare *cp, const char *pe, int seed, const char *dir) {
    grape_train_config c;
    if (!train_cfg(&c, cp, pe, seed)) return 0;
    int64_t have = steps_done(dir);
    if (have < 0) // never train over it: it may hold hours of a run (a disk that filled up, a copy cut short)
        return !cli_error("compare: %s/%s cannot be resumed: %s; move it away to train %s seed %d from the start",
                          dir, GRAPE_CHECKPOINT_FILE, grape_last_error(), pe, seed);
    snprintf(cp->what, sizeof cp->what, "train %s seed %d", pe, seed);
    cp->job++;
    cp->base = cp->done - (double)have * cp->b.batch * cp->b.seq;
    show(cp, have ? " (resuming)" : "", 1);
    grape_trainer *t = NULL;
    const grape_train_group *group = dist_trainer_group(&cp->group);
    grape_status s = GRAPE_OK;
    if (have < c.steps) s = have ? grape_trainer_resume(&t, dir, &c, group) : grape_trainer_create(&t, &c, dir, group);
    if (!s && t) s = grape_trainer_run(t, on_train_step, cp);
    grape_trainer_free(t);
    if (s) return !cli_error("compare: training %s seed %d: %s (run again to resume)", pe, seed, grape_last_error());
    cp->done = cp->base + (double)c.steps * cp->b.batch * cp->b.seq;
    return 1;
}

// Lengths x modes of one checkpoint into r; R at 1x and 2x from the full-attention passes.
static int eval_all(compare *cp, grape_model *m, grape_evaluator *e, cmp_run *r, int rot) {
    int ok = 1;
    for (int bca = 0; ok && bca <= rot; bca++) {
        grape_attn_opts o = {0.0f, bca ? cp->b.seq : 0};
        ok = !grape_model_set_attn_opts(m, &o);
        for (int i = 0; ok && i < cp->n_len; i++) {
            cmp_eval *ev = &r->ev[r->n_eval++];
            if (bca && i == 0) { // BCA at a length <= its window is full attention (test_eval, bitwise)
                *ev = r->ev[0], ev->bca = 1;
                continue;
            }
            int L = cp->lengths[i], want_r = !bca && i < 2;
            resolution_acc acc = {0};
            eval_result res;
            ok = !want_r || !resolution_create(&acc, m, L);
            grape_evaluator_observe(e, want_r ? resolution_observe : NULL, &acc);
            cp->base = cp->done, cp->cur_L = L;
            ok = ok && !eval_length(&res, e, cp->data, L, cp->b.doc_bytes, 0, NULL, on_eval_window, cp);
            if (ok) {
                cp->done = cp->base + (double)res.bytes / 3;
                *ev = (cmp_eval){L, bca, res.bpb, res.tokens_per_s, res.windows, res.bytes};
                if (want_r) *(i ? &r->r2 : &r->r1) = resolution_mean(&acc);
            }
            resolution_free(&acc);
        }
    }
    grape_evaluator_observe(e, NULL, NULL);
    return ok;
}

// Effective context from natural text into r: its own full-attention pass at the longest length over every
// validation window (or the budget's number, evenly spaced), whatever --doc-bytes keeps for the BPB columns: a
// handful of windows leaves the per-position curve too noisy for a 0.01-bit margin (docs/EVALUATION.md).
static int effctx_pass(compare *cp, grape_model *m, grape_evaluator *e, cmp_run *r) {
    int L = cp->lengths[cp->n_len - 1];
    double *pos = malloc((3 * (size_t)L + 1) * sizeof *pos); // sums, then effctx_bands_from_sums' scratch
    grape_attn_opts o = {0.0f, 0};
    eval_result res;
    cp->base = cp->done, cp->cur_L = L;
    int ok = pos && !grape_model_set_attn_opts(m, &o) &&
             !eval_length(&res, e, cp->data, L, 0, cp->b.effctx_windows, pos, on_eval_window, cp);
    if (ok) {
        cp->done = cp->base + (double)res.bytes / 3;
        r->n_band = effctx_bands_from_sums(pos, res.windows, L, r->band, pos + L);
        r->eff_text = effctx_from_bands(r->band, r->n_band, EFFCTX_MARGIN_BITS);
        r->eff_length = L, r->eff_windows = res.windows;
    }
    free(pos);
    return ok;
}

static void on_passkey_trial(void *ctx) {
    compare *cp = ctx;
    cp->done += (double)cp->cur_L / 3;
    show(cp, " passkey", 0);
}

// Passkey retrieval over the compare's lengths x the default depths into r (full attention).
static int passkey_all(compare *cp, grape_model *m, grape_evaluator *e, cmp_run *r) {
    int max_L = cp->lengths[cp->n_len - 1], nd = PASSKEY_DEFAULT_DEPTHS;
    double depths[PASSKEY_DEFAULT_DEPTHS], acc[EVAL_MAX_LENGTHS];
    for (int d = 0; d < nd; d++) depths[d] = (double)d / (nd - 1);
    task_mix mix;
    if (task_mix_parse(&mix, cp->b.task_mix)) return 0;
    passkey_cell cells[EVAL_MAX_LENGTHS * PASSKEY_DEFAULT_DEPTHS];
    uint8_t *buf = malloc(3 * (size_t)max_L);
    grape_attn_opts o = {0.0f, 0};
    int ok = buf && !grape_model_set_attn_opts(m, &o);
    cp->cur_L = cp->lengths[0];
    ok = ok && !passkey_grid_run(cells, e, buf, cp->data, cp->lengths, cp->n_len, depths, nd, cp->b.passkey_trials,
                                 mix.key_len, 1, on_passkey_trial, cp);
    if (ok) {
        for (int i = 0; i < cp->n_len * nd && r->n_pk < CMP_MAX_PK_CELLS; i++)
            r->pk[r->n_pk++] = (cmp_pk_cell){cells[i].length, cells[i].depth, cells[i].hits, cells[i].trials};
        passkey_length_accuracy(acc, cells, cp->n_len * nd, cp->lengths, cp->n_len);
        r->pk_eff = passkey_effective_context(cp->lengths, acc, cp->n_len, cp->b.seq, PASSKEY_EFFECTIVE_RATIO);
    }
    free(buf);
    return ok;
}

static int eval_job(compare *cp, const char *pe, int seed, const char *dir) {
    char path[2048];
    snprintf(cp->what, sizeof cp->what, "eval %s seed %d", pe, seed);
    cp->job++;
    show(cp, "", 1);
    grape_model *m = NULL;
    cmp_run r = {.seed = seed, .r1 = NAN, .r2 = NAN};
    snprintf(r.pe, sizeof r.pe, "%s", pe);
    grape_evaluator *e = NULL;
    int ok = !grape_model_load(&m, dir, 1, 1) && !grape_evaluator_create(&e, m, cp->lengths[cp->n_len - 1]) &&
             eval_all(cp, m, e, &r, is_rotary(pe)) && effctx_pass(cp, m, e, &r) &&
             (!cp->b.passkey_trials || passkey_all(cp, m, e, &r));
    grape_evaluator_free(e);
    path_in(path, sizeof path, dir, "metrics.jsonl");
    ok = ok && !cmp_read_metrics(&r, path);
    path_in(path, sizeof path, dir, "eval.txt");
    ok = ok && !cmp_run_save(&r, path);
    grape_model_free(m);
    return ok ? 1 : !cli_error("compare: evaluating %s seed %d: %s", pe, seed, grape_last_error());
}

static int run_done(const compare *cp, const char *pe, int seed) {
    char dir[2048], path[2100];
    cmp_run r;
    run_dir(dir, sizeof dir, cp, pe, seed);
    path_in(path, sizeof path, dir, "eval.txt");
    return access(path, F_OK) == 0 && !cmp_run_load(&r, path);
}

// The runs not done yet, in (encoding, seed) order, that this process's group takes: every rank lists them before
// any group starts (the barrier), so they agree on the deal.
static int my_runs(compare *cp, int *runs) {
    int n = 0, k = 0;
    for (int p = 0; p < cp->n_pes; p++)
        for (int s = 1; s <= cp->seeds; s++, k++)
            if (!run_done(cp, cp->pes[p], s) && n++ % cp->n_groups == cp->color) runs[k] = 1;
    return dist_all_ok(&cp->world, 1);
}

static int report(compare *cp);

// After every finished run world rank 0 rewrites the report of all finished runs (a few gnuplot calls), so an
// interrupted or failed compare still leaves the tables and plots of what it finished.
static int run_jobs(compare *cp) {
    static int mine[CMP_MAX_PES * CMP_MAX_SEEDS];
    memset(mine, 0, sizeof mine);
    if (!my_runs(cp, mine)) return 0;
    cp->n_jobs = 0, cp->total = 0;
    for (int p = 0; p < cp->n_pes; p++)
        for (int s = 1; s <= cp->seeds; s++) {
            if (!mine[p * cp->seeds + s - 1]) continue;
            char dir[2048];
            run_dir(dir, sizeof dir, cp, cp->pes[p], s);
            cp->n_jobs += 2;
            int64_t have = steps_done(dir);
            cp->total += (double)(cp->b.steps - (have > 0 ? have : 0)) * cp->b.batch * cp->b.seq + eval_units(cp, cp->pes[p]);
        }
    cp->t0 = eval_now();
    for (int p = 0; p < cp->n_pes; p++)
        for (int s = 1; s <= cp->seeds; s++) {
            char dir[2048];
            run_dir(dir, sizeof dir, cp, cp->pes[p], s);
            if (!mine[p * cp->seeds + s - 1]) continue;
            if (!train_job(cp, cp->pes[p], s, dir) || (cp->group.rank == 0 && !eval_job(cp, cp->pes[p], s, dir)))
                return 0;
            if (cp->world.rank == 0 && !report(cp)) return 0;
        }
    if (cp->n_jobs && !cp->quiet && isatty(STDERR_FILENO)) fputc('\n', stderr);
    return 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Reports

static void commands_text(textbuf *b, const compare *cp, const cmp_run *runs, int n_runs) {
    char path[2048], inv[16384] = "";
    path_in(path, sizeof path, cp->out, "invocations.txt");
    read_text(path, inv, sizeof inv);
    tb_printf(b, "# Every command that produced this directory. The compare invocations, in order:\n%s\n"
                 "# Each run is equivalent to these commands (same trainer and evaluator, same seed and budget):\n",
              inv);
    char mpirun[32] = ""; // the trajectory depends on the ranks that trained it (docs/DISTRIBUTED.md)
    if (cp->group.size > 1) snprintf(mpirun, sizeof mpirun, "mpirun -np %d ", cp->group.size);
    for (int i = 0; i < n_runs; i++) {
        char dir[2048], lens[512] = "";
        run_dir(dir, sizeof dir, cp, runs[i].pe, runs[i].seed);
        for (int j = 0; j < cp->n_len; j++)
            snprintf(lens + strlen(lens), sizeof lens - strlen(lens), "%s%d", j ? "," : "", cp->lengths[j]);
        tb_printf(b, "%sgrape train --preset %s --pe %s --steps %lld --batch %d --seq %d --lr %g --seed %d --data %s "
                     "--eval-interval %lld --eval-batches %d --log-interval %lld --save-interval %lld --threads %d --out %s",
                  mpirun, cp->b.preset, runs[i].pe, (long long)cp->b.steps, cp->b.batch, cp->b.seq, cp->b.lr,
                  runs[i].seed, cp->b.data, (long long)cp->b.eval_interval, EVAL_BATCHES,
                  (long long)(cp->b.steps >= 50 ? cp->b.steps / 50 : 1), (long long)cp->b.eval_interval,
                  omp_get_max_threads(), dir);
        tb_printf(b, "%s%s%s\n", cp->b.task_mix[0] ? " --task-mix '" : "", cp->b.task_mix, cp->b.task_mix[0] ? "'" : "");
        tb_printf(b, "grape eval --ckpt %s --lengths %s --doc-bytes %lld\n", dir, lens, (long long)cp->b.doc_bytes);
        if (is_rotary(runs[i].pe))
            tb_printf(b, "grape eval --ckpt %s --lengths %s --doc-bytes %lld --bca\n", dir, lens,
                      (long long)cp->b.doc_bytes);
        tb_printf(b, "grape eval --ckpt %s --lengths %d --doc-bytes 0 --max-windows %lld --per-position %s/per_position.csv\n",
                  dir, cp->lengths[cp->n_len - 1], (long long)cp->b.effctx_windows, dir);
        tb_printf(b, "grape resolution --ckpt %s --lengths %d,%d --doc-bytes %lld\n", dir, cp->lengths[0],
                  cp->n_len > 1 ? cp->lengths[1] : cp->lengths[0], (long long)cp->b.doc_bytes);
        if (runs[i].n_pk) tb_printf(b, "grape passkey --ckpt %s --lengths %s --trials %d\n", dir, lens, cp->b.passkey_trials);
    }
    tb_printf(b, "# Plots: gnuplot bpb_vs_length.gp; gnuplot loss_curves.gp (run inside this directory)\n");
}

static int report(compare *cp) {
    static cmp_run runs[CMP_MAX_PES * CMP_MAX_SEEDS];
    int n = 0;
    for (int p = 0; p < cp->n_all; p++)
        for (int s = 1; s <= CMP_MAX_SEEDS; s++) {
            char dir[2048], path[2100];
            run_dir(dir, sizeof dir, cp, cp->all[p], s);
            path_in(path, sizeof path, dir, "eval.txt");
            if (access(path, F_OK) != 0) continue;
            if (cmp_run_load(&runs[n], path)) return !cli_error("compare: %s", grape_last_error());
            path_in(path, sizeof path, dir, "metrics.jsonl");
            cmp_read_metrics(&runs[n], path);
            n++;
        }
    textbuf b = {0};
    char path[2048];
    commands_text(&b, cp, runs, n);
    path_in(path, sizeof path, cp->out, "commands.txt");
    int ok = !tb_status(&b) && write_text(path, b.p);
    tb_free(&b);
    if (ok && cmp_write_reports(cp->out, &cp->b, (const char(*)[CMP_NAME])cp->all, cp->n_all, runs, n, cp->lengths,
                                cp->n_len))
        ok = !cli_error("compare: %s", grape_last_error());
    ok = ok && cli_gnuplot(cp->out, "bpb_vs_length.gp", "compare") && cli_gnuplot(cp->out, "loss_curves.gp", "compare");
    ok = ok && (!cmp_any_bands(runs, n) || cli_gnuplot(cp->out, "effective_context.gp", "compare"));
    for (int i = 0; ok && i < n; i++) { // each encoding's heat-map once (its first run with passkey cells)
        int first = runs[i].n_pk > 0;
        for (int j = 0; first && j < i; j++) first = !(runs[j].n_pk && !strcmp(runs[j].pe, runs[i].pe));
        char gp[CMP_NAME + 16];
        cmp_heatmap_name(gp, sizeof gp, runs[i].pe, "gp");
        if (first) ok = cli_gnuplot(cp->out, gp, "compare");
    }
    return ok;
}

// ---------------------------------------------------------------------------------------------------------------
// Flags

static int parse_pes(compare *cp, const char *list) {
    char buf[4096];
    if (!list || !*list) return !cli_error("compare: --pes LIST is required (e.g. rope,alibi,grape-ap)");
    snprintf(buf, sizeof buf, "%s", list);
    for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
        grape_pe_config c;
        grape_pe_config_default(&c, 1, 2);
        if (grape_pe_parse(&c, s)) return !cli_error("compare: --pes: %s", grape_last_error());
        if (cp->n_pes == CMP_MAX_PES) return !cli_error("compare: at most %d encodings", CMP_MAX_PES);
        grape_pe_name(cp->pes[cp->n_pes++], CMP_NAME, &c);
    }
    return 1;
}

// Lengths seq * 1, 2, 4, ... up to max_mult that have a validation window (the others are reported and dropped).
static int plan_lengths(compare *cp, long max_mult) {
    cp->n_len = 0;
    for (long k = 1; k <= max_mult && cp->n_len < EVAL_MAX_LENGTHS; k *= 2) {
        int L = cp->b.seq * (int)k;
        if (eval_count_windows(cp->data, L, cp->b.doc_bytes) > 0)
            cp->lengths[cp->n_len++] = L;
        else
            fprintf(stderr, "grape compare: no validation window of length %d (%ldx) in %s: column dropped\n", L, k,
                    cp->b.data);
    }
    return cp->n_len ? 1 : !cli_error("compare: no validation document is long enough for length %d", cp->b.seq);
}

static int parse(compare *cp, const cli_args *a) {
    long seeds = 1, steps = 1000, batch = 0, seq = 0, max_mult = 16, doc_bytes = -1, interval = -1, threads = 0,
         per_job = 1;
    double lr = 1e-3;
    const char *preset = args_str(a, "--preset"), *data = args_str(a, "--data");
    cp->out = args_str(a, "--out");
    if (!cp->out) return !cli_error("compare: --out DIR is required");
    if (strlen(cp->out) > 900) return !cli_error("compare: --out path is too long");
    if (!parse_pes(cp, args_str(a, "--pes")) || !args_long(a, "--seeds", 1, CMP_MAX_SEEDS, &seeds) ||
        !args_long(a, "--steps", 1, 1L << 40, &steps) || !args_long(a, "--batch", 1, 1 << 16, &batch) ||
        !args_long(a, "--seq", 2, 1 << 16, &seq) || !args_long(a, "--max-mult", 1, 1024, &max_mult) ||
        !args_long(a, "--doc-bytes", 0, 1L << 40, &doc_bytes) ||
        !args_long(a, "--eval-interval", 1, 1L << 40, &interval) || !args_long(a, "--threads", 0, 4096, &threads) ||
        !args_long(a, "--ranks-per-job", 1, 1 << 20, &per_job) ||
        !args_double(a, "--lr", 1e-12, 10, &lr))
        return 0;
    long pk_trials = 20, eff_windows = 0;
    const char *mix = args_str(a, "--task-mix");
    if (!args_long(a, "--passkey-trials", 1, 1000000, &pk_trials) ||
        !args_long(a, "--effctx-windows", 0, 1L << 40, &eff_windows))
        return 0;
    cp->b.effctx_windows = eff_windows;
    if (mix && snprintf(cp->b.task_mix, sizeof cp->b.task_mix, "%s", mix) >= (int)sizeof cp->b.task_mix)
        return !cli_error("compare: --task-mix is too long");
    cp->b.passkey_trials = mix || args_flag(a, "--passkey") ? (int)pk_trials : 0;
    if (max_mult & (max_mult - 1)) return !cli_error("compare: --max-mult must be a power of two, got %ld", max_mult);
    if (cp->world.size % per_job)
        return !cli_error("compare: --ranks-per-job %ld does not divide the %d ranks", per_job, cp->world.size);
    cp->n_groups = cp->world.size / (int)per_job, cp->color = cp->world.rank / (int)per_job;
    if (threads == 0 && cp->world.size > 1) threads = omp_get_max_threads() / dist_local_size();
    if (threads == 0 && cp->world.size > 1) threads = 1;
    if (threads > 0) omp_set_num_threads((int)threads);
    cp->seeds = (int)seeds;
    cmp_budget *b = &cp->b;
    snprintf(b->preset, sizeof b->preset, "%s", preset ? preset : "tiny");
    snprintf(b->data, sizeof b->data, "%s", data ? data : "data/kjv.txt");
    b->steps = steps, b->batch = (int)batch, b->seq = (int)seq, b->lr = lr;
    b->eval_interval = interval > 0 ? interval : (steps >= 10 ? steps / 10 : 1);
    grape_train_config c; // resolves the preset's batch and seq, and the canonical task mix
    if (!train_cfg(&c, cp, cp->pes[0], 1)) return 0;
    b->batch = c.batch, b->seq = c.seq;
    memcpy(b->task_mix, c.task_mix, sizeof b->task_mix);
    if (b->batch % per_job)
        return !cli_error("compare: --batch %d cannot be split across --ranks-per-job %ld", b->batch, per_job);
    if (b->seq % 2) return !cli_error("compare: --seq must be even (BCA blocks are seq/2), got %d", b->seq);
    b->doc_bytes = doc_bytes >= 0 ? doc_bytes : (int64_t)b->seq * max_mult;
    if (data_open(&cp->data, b->data, NULL, 0, 1)) {
        if (!data && access(b->data, R_OK) != 0)
            return !cli_error("compare: the default corpus data/kjv.txt is missing: run `make data` (or --data)");
        return !cli_error("compare: corpus %s: %s", b->data, grape_last_error());
    }
    return plan_lengths(cp, max_mult);
}

static int mkdirs(const char *dir) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%s/runs", dir);
    if (atomic_mkdirs(buf)) return !cli_error("compare: cannot create %s: %s", buf, grape_last_error());
    return 1;
}

// Under MPI: world rank 0 alone writes DIR's state and the report; a failed run may be one group's alone (the
// others would wait for it forever), so it ends every rank.
int cmd_compare(int argc, char **argv) {
    cli_args a = {argc, argv, known};
    if (args_flag(&a, "--help") || args_flag(&a, "-h")) return usage(), 0;
    if (!args_check(&a, booleans)) return 1;
    static compare cp;
    cp = (compare){.quiet = args_flag(&a, "--quiet")};
    if (!dist_init(&cp.world)) return 1;
    cp.quiet |= cp.world.rank != 0;
    int ok = parse(&cp, &a), lead = cp.world.rank == 0;
    ok = ok && (!lead || (mkdirs(cp.out) && check_budget(&cp) && merge_pes(&cp) &&
                          append_invocation(&cp, argc, argv)));
    ok = dist_all_ok(&cp.world, ok) && dist_split(&cp.group, &cp.world, cp.color);
    int ran = ok && run_jobs(&cp);
    if (ok && !ran) return data_close(cp.data), dist_end(1, cp.world.size > 1);
    ok = dist_all_ok(&cp.world, ran) && (!lead || report(&cp));
    data_close(cp.data);
    if (!ok || !lead) return dist_end(!ok, 0);
    dist_end(0, 0);
    printf("grape compare: %s/results.md (table), %s/bpb_vs_length.png and %s/loss_curves.png (plots), "
           "%s/results.csv, %s/results.json, %s/commands.txt\n",
           cp.out, cp.out, cp.out, cp.out, cp.out, cp.out);
    return 0;
}
