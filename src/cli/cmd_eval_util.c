// cmd_eval_util.c — see cmd_eval_util.h.
#include "cli/cmd_eval_util.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/checkpoint.h"
#include "cli/progress.h"

double eval_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int eval_ckpt_open(eval_ckpt *k, const char *cmd, const char *dir, const char *data_path) {
    *k = (eval_ckpt){0};
    if (!dir) return !cli_error("%s: --ckpt DIR is required (a run directory of grape train)", cmd);
    if (ckpt_load_model(&k->m, &k->cfg, &k->st, dir, 1, 1))
        return !cli_error("%s: cannot load the checkpoint in %s: %s", cmd, dir, grape_last_error());
    const char *path = data_path ? data_path : k->cfg.data;
    if (!*path) {
        eval_ckpt_close(k);
        return !cli_error("%s: %s names no training corpus (a weights-only checkpoint): pass --data PATH", cmd, dir);
    }
    size_t sep = strlen(k->cfg.doc_sep);
    if (data_open(&k->data, path, sep ? k->cfg.doc_sep : NULL, sep, 1)) {
        cli_error("%s: corpus %s: %s", cmd, path, grape_last_error());
        eval_ckpt_close(k);
        return 0;
    }
    return 1;
}

void eval_ckpt_close(eval_ckpt *k) {
    grape_model_free(k->m);
    data_close(k->data);
    *k = (eval_ckpt){0};
}

int eval_set_bca(eval_ckpt *k, const char *cmd, int bca) {
    grape_attn_opts o = {0.0f, bca ? k->cfg.seq : 0};
    if (bca && (o.bca_window < 2 || o.bca_window % 2))
        return !cli_error("%s: --bca needs an even training length (window W, query blocks W/2), got %d", cmd,
                          o.bca_window);
    if (grape_model_set_attn_opts(k->m, &o)) return !cli_error("%s: %s", cmd, grape_last_error());
    return 1;
}

int eval_parse_lengths(int *lengths, int *n, const char *s, const char *cmd, int T_train, const int *mults,
                       int n_mults) {
    *n = 0;
    if (!s) {
        for (int i = 0; i < n_mults; i++) lengths[(*n)++] = T_train * mults[i];
        return 1;
    }
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > EVAL_MAX_LENGTH || (*end && *end != ','))
            return !cli_error("%s: --lengths wants comma-separated lengths in [1, %d], got '%s'", cmd,
                              EVAL_MAX_LENGTH, s);
        if (*n == EVAL_MAX_LENGTHS) return !cli_error("%s: at most %d lengths", cmd, EVAL_MAX_LENGTHS);
        lengths[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return *n > 0 ? 1 : !cli_error("%s: --lengths is empty", cmd);
}

int eval_cli_open(eval_ckpt *k, long *doc_bytes, int *lengths, int *n, const cli_args *a, const char *cmd,
                  const int *mults, int n_mults) {
    long threads = 0;
    *doc_bytes = 0;
    if (!args_long(a, "--threads", 0, 4096, &threads) || !args_long(a, "--doc-bytes", 0, 1L << 40, doc_bytes))
        return 0;
    if (threads > 0) omp_set_num_threads((int)threads);
    if (!eval_ckpt_open(k, cmd, args_str(a, "--ckpt"), args_str(a, "--data"))) return 0;
    if (eval_parse_lengths(lengths, n, args_str(a, "--lengths"), cmd, k->cfg.seq, mults, n_mults)) return 1;
    eval_ckpt_close(k);
    return 0;
}

void eval_bar_update(void *ctx, int64_t done, int64_t total) {
    const eval_bar *b = ctx;
    if (!isatty(STDERR_FILENO)) return;
    double el = eval_now() - b->t0, frac = total ? (double)done / (double)total : 1;
    char bar[31], eta[24];
    int full = (int)(frac * 30);
    memset(bar, '#', (size_t)full);
    memset(bar + full, '.', (size_t)(30 - full));
    bar[30] = '\0';
    progress_duration(eta, sizeof eta, done ? el * (double)(total - done) / (double)done : 0);
    fprintf(stderr, "\r%s %d [%s] %3.0f%% %lld/%lld windows | ETA %s\033[K", b->label, b->length, bar, 100 * frac,
            (long long)done, (long long)total, eta);
    fflush(stderr);
}

void eval_bar_clear(void) {
    if (isatty(STDERR_FILENO)) fputs("\r\033[K", stderr);
}

int cli_gnuplot(const char *dir, const char *script, const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        if (!dir || chdir(dir) == 0) execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return !cli_error("%s: cannot run gnuplot", cmd);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return !cli_error("%s: gnuplot is not installed (scripts/deps.sh installs gnuplot-nox); the tables "
                          "are written, the PNGs are not",
                          cmd);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : !cli_error("%s: gnuplot %s failed", cmd, script);
}
