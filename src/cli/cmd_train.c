// cmd_train.c — `grape train`: flags -> train_config, Ctrl-C handling, the progress bar, the summary.
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/checkpoint.h"
#include "train/progress.h"
#include "train/train.h"

static const char *const known[] = {
    "--pe",           "--preset",       "--steps",         "--out",          "--data",
    "--doc-sep",      "--batch",        "--seq",           "--seed",         "--lr",
    "--min-lr-ratio", "--warmup",       "--decay-steps",   "--weight-decay", "--beta1",
    "--beta2",        "--eps",          "--grad-accum",    "--clip",         "--eval-interval",
    "--eval-batches", "--log-interval", "--save-interval", "--threads",      NULL};
static const char *const booleans[] = {"--resume", "--accum-mean", "--quiet", "--skip-nonfinite", NULL};
// Flags a resumed run may change; everything else is fixed by the checkpoint.
static const char *const resumable[] = {"--steps",         "--out",          "--data",
                                        "--eval-interval", "--eval-batches", "--log-interval",
                                        "--save-interval", "--threads",      NULL};

static void usage(void) {
    printf("usage: grape train [options]\n\n"
           "Train the byte-level Llama-style model with a position encoding; writes OUT/model.safetensors\n"
           "(weights, AdamW state, config, RNG) and OUT/metrics.jsonl. Ctrl-C saves a checkpoint and stops.\n\n"
           "  --pe NAME            encoding (grape encodings), e.g. rope, grape-ap, grape-m+grape-ap [rope]\n"
           "  --preset NAME        tiny (L4 C256 H4) or small (L6 C384 H6) [tiny]\n"
           "  --steps N            optimizer steps [1000]\n"
           "  --out DIR            run directory [runs/PRESET-PE]\n"
           "  --data PATH          corpus file or directory [data/kjv.txt; make data builds it]\n"
           "  --doc-sep SEP        document separator in a single file (C escapes: \\n \\t \\f \\xHH)\n"
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
           "  --threads N          OpenMP threads [all cores]\n"
           "  --resume             continue OUT's checkpoint bit-exactly (--steps may grow)\n"
           "  --quiet              no progress output\n"
           "  --skip-nonfinite     skip a step whose loss or gradient is NaN/Inf (default: stop, naming the step)\n");
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

static void on_step(const train_report *r, void *ctx) {
    const progress_ctx *p = ctx;
    if (p->quiet || (!p->tty && !r->logged)) return;
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

static int parse_int64(const cli_args *a, const char *flag, long lo, int64_t *out) {
    long v = (long)*out;
    if (!args_long(a, flag, lo, 1L << 50, &v)) return 0;
    *out = v;
    return 1;
}

static int parse_int(const cli_args *a, const char *flag, long lo, long hi, int *out) {
    long v = *out;
    if (!args_long(a, flag, lo, hi, &v)) return 0;
    *out = (int)v;
    return 1;
}

static int copy_str(char *dst, size_t cap, const char *src, const char *flag) {
    if (!src) return 1;
    if (strlen(src) >= cap) return !cli_error("%s is too long", flag);
    strcpy(dst, src);
    return 1;
}

// Flags that only a fresh run may set.
static int parse_fresh(const cli_args *a, train_config *c) {
    long seed = (long)c->seed;
    const char *sep = args_str(a, "--doc-sep");
    if (sep && !unescape(c->doc_sep, sizeof c->doc_sep, sep))
        return !cli_error("--doc-sep wants a non-empty separator without NUL bytes, got '%s'", sep);
    c->accum_mean = args_flag(a, "--accum-mean");
    int ok = copy_str(c->pe_name, sizeof c->pe_name, args_str(a, "--pe"), "--pe") &&
             copy_str(c->preset, sizeof c->preset, args_str(a, "--preset"), "--preset") &&
             parse_int(a, "--batch", 1, 1 << 16, &c->batch) && parse_int(a, "--seq", 1, 1 << 20, &c->seq) &&
             parse_int(a, "--grad-accum", 1, 1 << 16, &c->grad_accum) && args_long(a, "--seed", 0, 1L << 62, &seed) &&
             args_double(a, "--lr", 1e-12, 10, &c->opt.lr) &&
             args_double(a, "--min-lr-ratio", 0, 1, &c->opt.min_lr_ratio) &&
             parse_int64(a, "--warmup", 0, &c->opt.warmup) && parse_int64(a, "--decay-steps", 0, &c->opt.decay_steps) &&
             args_double(a, "--weight-decay", 0, 10, &c->opt.weight_decay) &&
             args_double(a, "--beta1", 0, 0.999999, &c->opt.beta1) &&
             args_double(a, "--beta2", 0, 0.999999999, &c->opt.beta2) &&
             args_double(a, "--eps", 1e-30, 1, &c->opt.eps) && args_double(a, "--clip", 0, 1e30, &c->opt.clip);
    c->seed = (uint64_t)seed;
    return ok;
}

static int parse_resumable(const cli_args *a, train_config *c) {
    return parse_int64(a, "--steps", 0, &c->steps) &&
           copy_str(c->data, sizeof c->data, args_str(a, "--data"), "--data") &&
           parse_int64(a, "--eval-interval", 0, &c->eval_interval) &&
           parse_int64(a, "--eval-batches", 1, &c->eval_batches) &&
           parse_int64(a, "--log-interval", 1, &c->log_interval) &&
           parse_int64(a, "--save-interval", 0, &c->save_interval) && parse_int(a, "--threads", 0, 4096, &c->threads);
}

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

// The configuration of a resumed run: the checkpoint's, with only the resumable flags applied.
static int resume_config(const cli_args *a, const char *dir, train_config *c) {
    for (int i = 1; i < a->argc; i++)
        if (!strncmp(a->argv[i], "--", 2) && !in_list(a->argv[i], resumable) && strcmp(a->argv[i], "--resume") &&
            strcmp(a->argv[i], "--quiet") && strcmp(a->argv[i], "--skip-nonfinite"))
            return !cli_error("%s is fixed by the checkpoint in %s; drop it when resuming", a->argv[i], dir);
    train_state st;
    if (ckpt_read_meta(dir, c, &st)) return !cli_error("cannot resume from %s: %s", dir, grape_last_error());
    return parse_resumable(a, c);
}

static int fresh_config(const cli_args *a, train_config *c) {
    train_config_default(c);
    if (!parse_fresh(a, c) || !parse_resumable(a, c)) return 0;
    if (train_config_model(c)) return !cli_error("%s", grape_last_error());
    return 1;
}

static int report_error(grape_status s, const train_config *c, const char *dir) {
    if (s == GRAPE_ERR_INTERRUPTED) {
        fprintf(stderr, "grape: %s; continue with: grape train --out %s --resume\n", grape_last_error(), dir);
        return 128 + (int)stop_flag;
    }
    if (s == GRAPE_ERR_IO && !strcmp(c->data, "data/kjv.txt") && access(c->data, R_OK) != 0)
        return cli_error("the default corpus data/kjv.txt is missing: run `make data` (or pass --data PATH)");
    return cli_error("train: %s", grape_last_error());
}

int cmd_train(int argc, char **argv) {
    cli_args a = {argc, argv, known};
    if (args_flag(&a, "--help") || args_flag(&a, "-h")) return usage(), 0;
    if (!args_check(&a, booleans)) return 1;
    if (!install_signals()) return cli_error("cannot set up the Ctrl-C handler");
    char dir[TRAIN_PATH_MAX];
    train_config c;
    const char *out = args_str(&a, "--out");
    int resume = args_flag(&a, "--resume");
    if (resume && !out) return cli_error("--resume needs --out DIR (the run to continue)");
    if (!(resume ? resume_config(&a, out, &c) : fresh_config(&a, &c))) return 1;
    snprintf(dir, sizeof dir, "%s", out ? out : "");
    if (!out) snprintf(dir, sizeof dir, "runs/%s-%s", c.preset, c.pe_name);
    char ckpt[TRAIN_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/%s", dir, CKPT_FILE);
    if (!resume && access(ckpt, F_OK) == 0)
        return cli_error("%s already holds a checkpoint: add --resume to continue it, or choose another --out", dir);
    if (c.threads > 0) omp_set_num_threads(c.threads);
    c.threads = omp_get_max_threads();
    c.skip_nonfinite = args_flag(&a, "--skip-nonfinite");

    progress_ctx pc = {isatty(STDOUT_FILENO), args_flag(&a, "--quiet")};
    train_hooks hooks = {.on_step = on_step, .ctx = &pc, .stop = &stop_flag};
    if (!pc.quiet)
        printf("grape train: %s, %s, L=%d C=%d H=%d, batch %d x seq %d x accum %d, %lld steps, %d threads -> %s\n",
               c.preset, c.pe_name, c.model.n_layer, c.model.n_embd, c.model.n_head, c.batch, c.seq, c.grad_accum,
               (long long)c.steps, c.threads, dir);
    train_state st;
    grape_status s = train_run(&c, dir, resume, &hooks, &st);
    if (s) return report_error(s, &c, dir);
    if (!pc.quiet)
        printf("done: %lld steps, %lld tokens, validation %.4f bits/byte; checkpoint %s/%s, metrics %s/metrics.jsonl\n",
               (long long)st.step, (long long)st.tokens, st.last_val, dir, CKPT_FILE, dir);
    return 0;
}
