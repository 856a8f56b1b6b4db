// cmd_train.c — `grape train`: flags -> grape_train_config, Ctrl-C handling, the progress bar, the summary; the
// training itself through the public trainer (grape.h, "Training"), as a program embedding libgrape would.
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/dist.h"
#include "cli/progress.h"
#include "grape.h"

static void usage(void) {
    printf("usage: grape train [options]\n\n"
           "Train the byte-level Llama-style model with a position encoding; writes OUT/model.safetensors\n"
           "(weights, AdamW state, config, RNG) and OUT/metrics.jsonl. Ctrl-C saves a checkpoint and stops.\n\n"
           "  --pe NAME            encoding (grape encodings), e.g. rope, grape-ap, grape-m+grape-ap [rope];\n"
           "                       options follow the name: 'rope:rope_base=500000,rotary_dim=32',\n"
           "                       'grape-m:per_head=1+grape-ap:ap_probe_dim=16' (grape encodings --options)\n"
           "  --preset NAME        tiny (L4 C256 H4) or small (L6 C384 H6) [tiny]\n"
           "  --n-layer L, --n-embd C, --n-head H   model size, overriding the preset's (C/H even)\n"
           "  --steps N            optimizer steps [1000]\n"
           "  --out DIR            run directory [runs/PRESET-PE]\n"
           "  --data PATH          corpus file or directory [data/kjv.txt; make data builds it]\n"
           "  --doc-sep SEP        document separator in a single file (C escapes: \\n \\t \\f \\xHH)\n"
           "  --task-mix passkey:F[,key=N][,pairs=P][,same=1]   replace a fraction F of the training sequences\n"
           "                       by passkey samples built from the sampled window: keys of N digits [1], P\n"
           "                       needle/query pairs per row [1], same=1: one key per row (docs/EVALUATION.md;\n"
           "                       learns on tiny: passkey:0.5,pairs=4,same=1 --lr 2e-3)\n"
           "  --batch B            sequences per micro-batch [16 tiny, 8 small]\n"
           "  --seq T              sequence length [256 tiny, 512 small]\n"
           "  --grad-accum K       micro-batches per step [1]\n"
           "  --accum-mean         average micro-batch losses (default: sum them, as the official code)\n"
           "  --seed S             model init and data order [42]\n"
           "  --lr X               peak learning rate [1e-3]\n"
           "  --min-lr-ratio X     cosine floor as a fraction of the peak [0.1]\n"
           "  --warmup N           linear warmup steps [min(100, steps/10)]\n"
           "  --decay-steps N      step at which the cosine reaches the floor [steps]\n"
           "  --weight-decay X     decoupled AdamW decay, not on RMSNorm gains [0.1]\n"
           "  --beta1 X, --beta2 X, --eps X   AdamW [0.9, 0.95, 1e-8]\n"
           "  --clip X             global gradient-norm limit, 0 = off [1.0]\n"
           "  --eval-interval N    steps between validations (and always at the end) [250]\n"
           "  --eval-batches N     validation batches of B fixed windows [8]\n"
           "  --log-interval N     steps between metrics.jsonl lines [10]\n"
           "  --save-interval N    steps between checkpoints, 0 = only at the end [1000]\n"
           "  --threads N          OpenMP threads [all cores; under mpirun: cores / ranks on the machine]\n"
           "  --resume             continue OUT's checkpoint bit-exactly: re-run the same command with --resume\n"
           "                       appended; --steps, --data, the intervals and --threads may change, any other\n"
           "                       flag must repeat the checkpoint's value\n"
           "  --quiet              no progress output\n"
           "  --skip-nonfinite     skip a step whose loss or gradient is NaN/Inf (default: stop, naming the step)\n\n"
           "Data-parallel: mpirun -np N grape train ... splits every micro-batch across N ranks (N divides --batch);\n"
           "rank 0 writes; docs/DISTRIBUTED.md.\n");
}

// ---------------------------------------------------------------------------------------------------------
// Signals: the first SIGINT/SIGTERM asks the trainer to save and stop; a second one aborts at once.
// No handler ever runs on a compute thread: oneDNN's JIT GEMM writes below the stack pointer, and a signal
// frame pushed there during dnnl_sgemm corrupts the heap (reproduced with a bare sgemm loop + SIGALRM). So the
// signals are blocked in every thread (OpenMP workers inherit the mask) and one waiter thread takes them.

static volatile sig_atomic_t stop_flag;

static void *signal_waiter(void *arg) {
    static const char first[] = "\ngrape: stopping after this step and saving a checkpoint (again to abort)\n";
    static const char second[] = "\ngrape: aborted without saving\n";
    for (int sig, n = 0;; n++) {
        if (sigwait(arg, &sig) != 0) continue;
        ssize_t w = write(STDERR_FILENO, n ? second : first, n ? sizeof second - 1 : sizeof first - 1);
        (void)w;
        if (n) _exit(128 + sig);
        stop_flag = sig; // the exit status is 128 + sig
    }
    return NULL;
}

// Call before the first OpenMP region, so every worker thread inherits the blocked mask.
static int install_signals(void) {
    static sigset_t set;
    pthread_t waiter;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 || pthread_create(&waiter, NULL, signal_waiter, &set) != 0)
        return 0;
    pthread_detach(waiter);
    return 1;
}

// ---------------------------------------------------------------------------------------------------------
// Progress: redrawn in place on a terminal (a new line after each validation), plain lines otherwise.

typedef struct {
    int tty, quiet;
} progress_ctx;

static int term_width(void) {
    struct winsize w;
    return ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0 ? w.ws_col : 100;
}

// Columns the line takes besides the bar (with a validation BPB and 5-digit step counts); a fixed reservation
// keeps the bar from changing width between redraws.
#define PROGRESS_TEXT_COLS 100

// After every step (on every rank): the progress line, and a stop request once a signal came.
static int on_step(const grape_train_report *r, void *ctx) {
    const progress_ctx *p = ctx;
    if (p->quiet || (!p->tty && !r->logged)) return stop_flag != 0;
    char line[512];
    int cols = p->tty ? term_width() : 0, bar = cols - PROGRESS_TEXT_COLS;
    progress_format(line, sizeof line, r, bar > 40 ? 40 : bar < 10 ? 0 : bar);
    if (!p->tty) {
        printf("%s\n", line);
    } else {
        if (cols > 1 && (size_t)cols - 1 < strlen(line)) line[cols - 1] = '\0'; // a wrapped line cannot be redrawn
        printf("\r%s\033[K%s", line, isnan(r->val_bpb) && r->step < r->steps ? "" : "\n");
    }
    fflush(stdout);
    return stop_flag != 0;
}

// ---------------------------------------------------------------------------------------------------------
// Flags

// C escapes (\n \t \f \r \\ \xHH) of src into dst (cap bytes); NUL bytes are refused.
static int unescape(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    for (const char *s = src; *s; s++) {
        char c = *s;
        if (c == '\\' && s[1]) {
            s++;
            c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'f' ? '\f' : *s == 'r' ? '\r' : *s;
            if (*s == 'x') {
                char hex[3] = {s[1], s[1] ? s[2] : 0, 0}, *end;
                c = (char)strtol(hex, &end, 16);
                if (end != hex + 2 || c == 0) return 0;
                s += 2;
            }
        }
        if (n + 1 >= cap) return 0;
        dst[n++] = c;
    }
    dst[n] = '\0';
    return n > 0;
}

// One row per flag: where its value goes in grape_train_config. Fixed flags shape the trajectory: a resumed run keeps
// the checkpoint's values and accepts such a flag only when it repeats the checkpoint's value. Resumable flags
// may change on --resume.
typedef enum { FL_INT, FL_I64, FL_SEED, FL_DBL, FL_STR, FL_SEP, FL_BOOL, FL_PE } flag_kind;

typedef struct {
    const char *flag;
    flag_kind kind;
    size_t off, size;
    double lo, hi;
} train_flag;

#define TF(flag, kind, member, lo, hi)                                                                              \
    { flag, kind, offsetof(grape_train_config, member), sizeof(((grape_train_config *)0)->member), lo, hi }
#define BIG 1125899906842624.0 // 2^50 steps or intervals

static const train_flag fixed_flags[] = {
    TF("--pe", FL_PE, pe_name, 0, 0),
    TF("--preset", FL_STR, preset, 0, 0),
    TF("--n-layer", FL_INT, model.n_layer, 1, 4096),
    TF("--n-embd", FL_INT, model.n_embd, 2, 1 << 20),
    TF("--n-head", FL_INT, model.n_head, 1, 1 << 20),
    TF("--batch", FL_INT, batch, 1, 1 << 16),
    TF("--seq", FL_INT, seq, 1, 1 << 20),
    TF("--grad-accum", FL_INT, grad_accum, 1, 1 << 16),
    TF("--accum-mean", FL_BOOL, accum_mean, 0, 1),
    TF("--seed", FL_SEED, seed, 0, 4611686018427387904.0),
    TF("--doc-sep", FL_SEP, doc_sep, 0, 0),
    TF("--task-mix", FL_STR, task_mix, 0, 0),
    TF("--lr", FL_DBL, opt.lr, 1e-12, 10),
    TF("--min-lr-ratio", FL_DBL, opt.min_lr_ratio, 0, 1),
    TF("--warmup", FL_I64, opt.warmup, 0, BIG),
    TF("--decay-steps", FL_I64, opt.decay_steps, 0, BIG),
    TF("--weight-decay", FL_DBL, opt.weight_decay, 0, 10),
    TF("--beta1", FL_DBL, opt.beta1, 0, 0.999999),
    TF("--beta2", FL_DBL, opt.beta2, 0, 0.999999999),
    TF("--eps", FL_DBL, opt.eps, 1e-30, 1),
    TF("--clip", FL_DBL, opt.clip, 0, 1e30),
};
static const train_flag resumable_flags[] = {
    TF("--steps", FL_I64, steps, 0, BIG),
    TF("--data", FL_STR, data, 0, 0),
    TF("--eval-interval", FL_I64, eval_interval, 0, BIG),
    TF("--eval-batches", FL_I64, eval_batches, 1, BIG),
    TF("--log-interval", FL_I64, log_interval, 1, BIG),
    TF("--save-interval", FL_I64, save_interval, 0, BIG),
    TF("--threads", FL_INT, threads, 0, 4096),
};
#define N_FIXED (int)(sizeof fixed_flags / sizeof fixed_flags[0])
#define N_RESUMABLE (int)(sizeof resumable_flags / sizeof resumable_flags[0])

// Flag names for args_check: the tables' value flags and --out; the boolean flags.
static const char *known[N_FIXED + N_RESUMABLE + 2];
static const char *const booleans[] = {"--accum-mean", "--resume", "--quiet", "--skip-nonfinite", NULL};

static void list_known(void) {
    int n = 0;
    known[n++] = "--out";
    for (int i = 0; i < N_FIXED; i++)
        if (fixed_flags[i].kind != FL_BOOL) known[n++] = fixed_flags[i].flag;
    for (int i = 0; i < N_RESUMABLE; i++) known[n++] = resumable_flags[i].flag;
    known[n] = NULL;
}

static int given(const cli_args *a, const train_flag *f) {
    return f->kind == FL_BOOL ? args_flag(a, f->flag) : args_str(a, f->flag) != NULL;
}

// The value of flag f (if given) into its field of c; prints and returns 0 on a bad value.
static int set_flag(const cli_args *a, const train_flag *f, grape_train_config *c) {
    char *p = (char *)c + f->off;
    const char *s = args_str(a, f->flag);
    long v = 0;
    switch (f->kind) {
    case FL_INT:
        if (!args_long(a, f->flag, (long)f->lo, (long)f->hi, &v)) return 0;
        if (s) *(int *)p = (int)v;
        return 1;
    case FL_I64:
    case FL_SEED:
        if (!args_long(a, f->flag, (long)f->lo, (long)f->hi, &v)) return 0;
        if (s && f->kind == FL_I64) *(int64_t *)p = v;
        if (s && f->kind == FL_SEED) *(uint64_t *)p = (uint64_t)v;
        return 1;
    case FL_DBL: return args_double(a, f->flag, f->lo, f->hi, (double *)p);
    case FL_BOOL:
        if (args_flag(a, f->flag)) *(int *)p = 1;
        return 1;
    case FL_SEP:
        if (s && !unescape(p, f->size, s))
            return !cli_error("%s wants a non-empty separator without NUL bytes, got '%s'", f->flag, s);
        return 1;
    case FL_STR: // --pe and --task-mix are made canonical by grape_train_config_resolve, so a resumed run
    case FL_PE:  // compares like with like
        if (s && strlen(s) >= f->size) return !cli_error("%s is too long", f->flag);
        if (s) strcpy(p, s);
        return 1;
    }
    return 1;
}

static int set_flags(const cli_args *a, const train_flag *flags, int n, grape_train_config *c) {
    for (int i = 0; i < n; i++)
        if (!set_flag(a, &flags[i], c)) return 0;
    return 1;
}

// The value of f in c as the user would type it.
static void format_flag(char *buf, size_t n, const train_flag *f, const grape_train_config *c) {
    const char *p = (const char *)c + f->off;
    switch (f->kind) {
    case FL_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case FL_I64: snprintf(buf, n, "%lld", (long long)*(const int64_t *)p); break;
    case FL_SEED: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case FL_DBL: snprintf(buf, n, "%.17g", *(const double *)p); break;
    case FL_BOOL: snprintf(buf, n, "%s", *(const int *)p ? "on" : "off"); break;
    case FL_SEP:
    case FL_STR:
    case FL_PE: snprintf(buf, n, "'%s'", p); break;
    }
}

static int same_flag(const train_flag *f, const grape_train_config *x, const grape_train_config *y) {
    const char *p = (const char *)x + f->off, *q = (const char *)y + f->off;
    if (f->kind == FL_STR || f->kind == FL_SEP || f->kind == FL_PE) return !strcmp(p, q);
    if (f->kind == FL_DBL) return *(const double *)p == *(const double *)q;
    return !memcmp(p, q, f->size);
}

// The configuration of a resumed run: the checkpoint's, with the resumable flags applied. A fixed flag is accepted
// when it repeats the checkpoint's value (the same command re-run with --resume appended), refused otherwise.
static int resume_config(const cli_args *a, const char *dir, grape_train_config *c) {
    if (grape_train_checkpoint(c, NULL, dir)) return !cli_error("cannot resume from %s: %s", dir, grape_last_error());
    grape_train_config want = *c;
    grape_pe_name(c->pe_name, sizeof c->pe_name, &c->model.pe);
    if (!set_flags(a, fixed_flags, N_FIXED, &want)) return 0;
    if ((args_str(a, "--pe") || args_str(a, "--task-mix")) && grape_train_config_resolve(&want)) // canonical names
        return !cli_error("%s", grape_last_error());
    for (int i = 0; i < N_FIXED; i++) {
        const train_flag *f = &fixed_flags[i];
        if (!given(a, f) || same_flag(f, &want, c)) continue;
        if (f->kind == FL_BOOL)
            return !cli_error("%s conflicts with the checkpoint in %s, which was trained without it: a resumed run "
                              "keeps the checkpoint's setting (drop the flag, or start a new run with another --out)",
                              f->flag, dir);
        char got[GRAPE_PE_NAME_MAX + 8], had[GRAPE_PE_NAME_MAX + 8];
        format_flag(got, sizeof got, f, &want);
        format_flag(had, sizeof had, f, c);
        return !cli_error("%s %s conflicts with the checkpoint in %s, which has %s %s: a resumed run keeps the "
                          "checkpoint's value (drop the flag, or start a new run with another --out)",
                          f->flag, got, dir, f->flag, had);
    }
    return set_flags(a, resumable_flags, N_RESUMABLE, c);
}

static int fresh_config(const cli_args *a, grape_train_config *c) {
    grape_train_config_default(c);
    if (!set_flags(a, fixed_flags, N_FIXED, c) || !set_flags(a, resumable_flags, N_RESUMABLE, c)) return 0;
    if (grape_train_config_resolve(c)) return !cli_error("%s", grape_last_error());
    const grape_model_config *m = &c->model;
    if (m->n_embd % m->n_head)
        return !cli_error("--n-embd %d is not divisible by --n-head %d", m->n_embd, m->n_head);
    if ((m->n_embd / m->n_head) % 2)
        return !cli_error("head dim = --n-embd / --n-head = %d / %d = %d must be even (rotation pairs)", m->n_embd,
                          m->n_head, m->n_embd / m->n_head);
    grape_pe *pe = NULL; // the ranges that depend on the head size (rotary_dim, nc_rank), before any training
    grape_status s = grape_pe_create(&pe, &m->pe);
    grape_pe_free(pe);
    return s ? !cli_error("--pe %s: %s", c->pe_name, grape_last_error()) : 1;
}

static const char *ranks_text(const grape_train_group *world) {
    static char buf[64];
    buf[0] = '\0';
    if (world->size > 1) snprintf(buf, sizeof buf, " x %d ranks", world->size);
    return buf;
}

// Size and time of the gradient all-reduces on rank 0, for scaling estimates (docs/DISTRIBUTED.md).
static void print_comm(const grape_train_group *world, double train_s) {
    dist_stats d = dist_grad_stats();
    double n = (double)d.calls;
    if (d.calls)
        printf("mpi: %d ranks, %lld gradient all-reduces of %.2f MB: %.2f ms transfer + %.2f ms waiting for the "
               "slowest rank each (%.1f%% + %.1f%% of the training time)\n",
               world->size, (long long)d.calls, d.bytes / n / 1e6, 1e3 * d.transfer_s / n, 1e3 * d.wait_s / n,
               100 * d.transfer_s / train_s, 100 * d.wait_s / train_s);
}

// The exit status of a failure, without the message (a stop another rank was asked for counts as SIGTERM).
static int report_status(grape_status s) {
    return s == GRAPE_ERR_INTERRUPTED ? 128 + (stop_flag ? (int)stop_flag : SIGTERM) : 1;
}

static int report_error(grape_status s, const grape_train_config *c, const char *dir) {
    if (s == GRAPE_ERR_INTERRUPTED) {
        fprintf(stderr, "grape: %s; continue with: grape train --out %s --resume\n", grape_last_error(), dir);
        return report_status(s);
    }
    if (s == GRAPE_ERR_IO && !strcmp(c->data, "data/kjv.txt") && access(c->data, R_OK) != 0)
        return cli_error("the default corpus data/kjv.txt is missing: run `make data` (or pass --data PATH)");
    if (s == GRAPE_ERR_NOMEM)
        return cli_error("train: %s (try a smaller --n-layer, --n-embd, --batch or --seq)", grape_last_error());
    return cli_error("train: %s", grape_last_error());
}

static int train_command(int argc, char **argv, const grape_train_group *world) {
    list_known();
    cli_args a = {argc, argv, known};
    if (args_flag(&a, "--help") || args_flag(&a, "-h")) return usage(), 0;
    if (!args_check(&a, booleans)) return 1;
    char dir[GRAPE_TRAIN_PATH_MAX];
    grape_train_config c;
    const char *out = args_str(&a, "--out");
    int resume = args_flag(&a, "--resume");
    if (resume && !out) return cli_error("--resume needs --out DIR (the run to continue)");
    if (!(resume ? resume_config(&a, out, &c) : fresh_config(&a, &c))) return 1;
    snprintf(dir, sizeof dir, "%s", out ? out : "");
    if (!out && snprintf(dir, sizeof dir, "runs/%s-%s", c.preset, c.pe_name) >= (int)sizeof dir)
        return cli_error("the encoding name is too long for a directory name: pass --out DIR");
    char ckpt[GRAPE_TRAIN_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    if (!resume && access(ckpt, F_OK) == 0)
        return cli_error("%s already holds a checkpoint: add --resume to continue it, or choose another --out", dir);
    if (c.threads == 0 && world->size > 1) c.threads = omp_get_max_threads() / dist_local_size();
    if (c.threads == 0 && world->size > 1) c.threads = 1;
    if (c.threads > 0) omp_set_num_threads(c.threads);
    c.threads = omp_get_max_threads();

    c.skip_nonfinite = args_flag(&a, "--skip-nonfinite"); // a choice of this invocation, not of the checkpoint
    progress_ctx pc = {isatty(STDOUT_FILENO), args_flag(&a, "--quiet") || world->rank};
    if (!pc.quiet)
        printf("grape train: %s, %s, L=%d C=%d H=%d, batch %d x seq %d x accum %d, %lld steps, %d threads%s -> %s\n",
               c.preset, c.pe_name, c.model.n_layer, c.model.n_embd, c.model.n_head, c.batch, c.seq, c.grad_accum,
               (long long)c.steps, c.threads, ranks_text(world), dir);
    grape_trainer *t = NULL;
    const grape_train_group *group = dist_trainer_group(world);
    grape_status s = resume ? grape_trainer_resume(&t, dir, &c, group) : grape_trainer_create(&t, &c, dir, group);
    if (!s) s = grape_trainer_run(t, on_step, &pc);
    grape_train_state st = t ? *grape_trainer_state(t) : (grape_train_state){0};
    grape_trainer_free(t);
    // Every rank meets these at the same point, rank 0 reports them and all leave in order: a bad configuration
    // (checked before the first collective), a stop, a diverged loss or diverged ranks (decided on summed or
    // gathered values). Any other failure may be one rank's.
    int agreed = s == GRAPE_ERR_ARG || s == GRAPE_ERR_NUMERIC || s == GRAPE_ERR_INTERRUPTED;
    if (s && world->rank && agreed) return report_status(s);
    if (s) return agreed ? report_error(s, &c, dir) : -report_error(s, &c, dir);
    if (!pc.quiet)
        printf("done: %lld steps, %lld tokens, validation %.4f bits/byte; checkpoint %s/%s, metrics %s/metrics.jsonl\n",
               (long long)st.step, (long long)st.tokens, st.last_val, dir, GRAPE_CHECKPOINT_FILE, dir);
    if (!pc.quiet && world->size > 1) print_comm(world, st.elapsed);
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// MPI (src/cli/dist.h): a failure inside the training run may be this rank's alone (its peers then wait in a
// collective forever), so it ends every rank; a failure before it is every rank's (same flags, same files).

int cmd_train(int argc, char **argv) {
    grape_train_group world;
    if (!install_signals()) return cli_error("cannot set up the Ctrl-C handler");
    if (!dist_init(&world)) return 1;
    int rc = train_command(argc, argv, &world);
    return rc < 0 ? dist_end(-rc, world.size > 1) : dist_end(rc, 0);
}
