// test_train_faults.c — training faults of docs/RELIABILITY.md: NaN or Inf gradients stop the run with
// GRAPE_ERR_NUMERIC naming the step and leave the last checkpoint loadable, or are skipped with skip_nonfinite;
// a checkpoint write that fails (GRAPE_FAULT_WRITE_BYTES: ENOSPC past N bytes) reports what failed and leaves
// the previous checkpoint byte-identical with no temp file; a mapped corpus (GRAPE_DATA_COPY_MAX=0) truncated
// during the run stops it at the next step with GRAPE_ERR_IO naming the corpus, no SIGBUS, the last checkpoint
// intact; a temp file left by a killed writer (PATH.tmp.PID of a PID that no longer runs) is removed by the next
// write of PATH, and no other file is; `grape train` saves and exits 143 on SIGTERM and 130 on SIGINT, and the
// saved checkpoint loads.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "tmpdir.h"
#include "train/checkpoint.h"
#include "train_util.h"
#include "util.h"

static char corpus[300];

// A text corpus of 64 KiB (cut into 10 documents by data_open).
static void write_corpus(void) {
    snprintf(corpus, sizeof corpus, "%s", tmp_path("corpus.txt"));
    t_write_words(corpus, 65536, 9);
}

static grape_train_config tiny_config(int64_t steps) { return t_train_config(corpus, 1, 2, 32, steps); }

typedef struct {
    int64_t at, calls; // poison the gradients on call number `at` (1-based)
    float value;
} poison;

static grape_status poison_grads(float *g, size_t n, void *ctx) {
    poison *p = ctx;
    if (++p->calls == p->at && n) g[n / 2] = p->value;
    return GRAPE_OK;
}

static void test_nonfinite(void) {
    grape_train_config c = tiny_config(5);
    poison p = {3, 0, NAN};
    grape_train_group g = t_group_one(poison_grads, &p); // the gradient "sum" of a group of one poisons it
    grape_trainer *t = NULL;
    const char *dir = tmp_path("nan");
    grape_status s = grape_trainer_create(&t, &c, dir, &g);
    if (!s) s = grape_trainer_run(t, NULL, NULL);
    grape_trainer_free(t);
    printf("# %s\n", grape_last_error());
    t_true("nonfinite: NaN gradient at step 3 stops the run naming the step",
           s == GRAPE_ERR_NUMERIC && strstr(grape_last_error(), "at step 3") && strstr(grape_last_error(), dir));
    t_true("nonfinite: the checkpoint of step 2 is kept and loads", t_saved_step(dir) == 2 && t_loads(dir));

    p = (poison){3, 0, INFINITY};
    c.skip_nonfinite = 1;
    dir = tmp_path("inf-skip");
    s = grape_trainer_create(&t, &c, dir, &g);
    if (!s) s = grape_trainer_run(t, NULL, NULL);
    grape_trainer_free(t);
    if (s) printf("# %s\n", grape_last_error());
    t_true("nonfinite: with skip_nonfinite an Inf gradient at step 3 is skipped, the run ends at step 5",
           s == GRAPE_OK && t_saved_step(dir) == 5 && t_loads(dir));
}

static void test_failing_write(void) {
    grape_train_config c = tiny_config(2);
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s", tmp_path("full"));
    snprintf(path, sizeof path, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    if (t_train(&c, dir, 0, NULL, NULL, NULL)) exit(2);
    long n0, n1;
    unsigned char *before = t_read_file(path, &n0);
    grape_train_state st;
    if (ckpt_read_meta(dir, &c, &st)) exit(2);
    c.steps = 4;
    setenv("GRAPE_FAULT_WRITE_BYTES", "4096", 1);
    grape_status s = t_train(&c, dir, 1, NULL, NULL, NULL);
    unsetenv("GRAPE_FAULT_WRITE_BYTES");
    printf("# %s\n", grape_last_error());
    t_true("full disk: the failed save says what failed",
           s == GRAPE_ERR_IO && strstr(grape_last_error(), "saving the checkpoint") &&
               strstr(grape_last_error(), "No space left"));
    unsigned char *after = t_read_file(path, &n1);
    t_true("full disk: the previous checkpoint is byte-identical, no temp file is left",
           after && n0 == n1 && !memcmp(before, after, (size_t)n0) && t_count_temp_files(dir) == 0);
    s = t_train(&c, dir, 1, NULL, NULL, NULL);
    t_true("full disk: once space is back the run resumes to its end", s == GRAPE_OK && t_saved_step(dir) == 4);
    free(before);
    free(after);
}

// Temp files of a writer that died (a child that exited), of one that runs (our parent), one whose suffix is not
// a PID and one of another target: only the first goes when the target is written.
static void test_stale_temps(void) {
    char dir[300], target[400], dead_tmp[450], live_tmp[450], odd_tmp[450], other_tmp[450];
    snprintf(dir, sizeof dir, "%s", tmp_path("stale"));
    snprintf(target, sizeof target, "%s/model.safetensors", dir);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    if (dead < 0 || waitpid(dead, NULL, 0) != dead || atomic_mkdirs(dir)) exit(2);
    snprintf(dead_tmp, sizeof dead_tmp, "%s.tmp.%ld", target, (long)dead);
    snprintf(live_tmp, sizeof live_tmp, "%s.tmp.%ld", target, (long)getppid());
    snprintf(odd_tmp, sizeof odd_tmp, "%s.tmp.12x", target);
    snprintf(other_tmp, sizeof other_tmp, "%s/optim.bin.tmp.%ld", dir, (long)dead);
    t_write_words(dead_tmp, 64, 5);
    t_write_words(live_tmp, 64, 5);
    t_write_words(odd_tmp, 64, 5);
    t_write_words(other_tmp, 64, 5);
    long n;
    grape_status s = atomic_write_file(target, "new", 3);
    unsigned char *got = t_read_file(target, &n);
    t_true("killed writer: its temp file is removed by the next write of the same file",
           !s && got && n == 3 && !memcmp(got, "new", 3) && access(dead_tmp, F_OK) != 0);
    t_true("killed writer: a running writer's temp file, a non-PID suffix and another file's temp file are kept",
           access(live_tmp, F_OK) == 0 && access(odd_tmp, F_OK) == 0 && access(other_tmp, F_OK) == 0);
    free(got);
}

static int truncate_at_step2(const grape_train_report *r, void *ctx) {
    if (r->step == 2 && truncate(ctx, 0)) exit(2);
    return 0;
}

static void test_shrinking_corpus(void) {
    char copy[300], cmd[700];
    snprintf(copy, sizeof copy, "%s", tmp_path("shrinks.txt"));
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", corpus, copy);
    if (system(cmd)) exit(2);
    grape_train_config c = tiny_config(5);
    snprintf(c.data, sizeof c.data, "%s", copy);
    setenv("GRAPE_DATA_COPY_MAX", "0", 1);
    grape_status s = t_train(&c, tmp_path("shrinks"), 0, truncate_at_step2, copy, NULL);
    unsetenv("GRAPE_DATA_COPY_MAX");
    printf("# %s\n", grape_last_error());
    t_true("shrinking corpus: a mapped corpus truncated after step 2 stops the run naming it (no SIGBUS)",
           s == GRAPE_ERR_IO && strstr(grape_last_error(), copy) && strstr(grape_last_error(), "shrank"));
    t_true("shrinking corpus: the checkpoint of step 2 is kept and loads",
           t_saved_step(tmp_path("shrinks")) == 2 && t_loads(tmp_path("shrinks")));
}

// `grape train` in the background until its first metrics line, then sig; its exit status.
static int train_until_signal(const char *argv0, const char *dir, int sig) {
    char metrics[400];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    const char *args[] = {"train", "--data", corpus, "--out", dir, "--batch", "2", "--seq", "32", "--steps", "1000000",
                          "--log-interval", "1", "--save-interval", "0", "--eval-batches", "1", "--threads", "1",
                          "--quiet", NULL};
    pid_t pid = t_spawn_grape(argv0, args);
    struct stat st;
    for (int i = 0; i < 1200 && (stat(metrics, &st) || st.st_size == 0); i++) // up to 60 s
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    kill(pid, sig);
    int rc;
    waitpid(pid, &rc, 0);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_signals(const char *argv0) {
    int rc = train_until_signal(argv0, tmp_path("sigterm"), SIGTERM);
    t_true("signals: SIGTERM saves and exits 143", rc == 143 && t_saved_step(tmp_path("sigterm")) >= 1 &&
                                                        t_loads(tmp_path("sigterm")));
    rc = train_until_signal(argv0, tmp_path("sigint"), SIGINT);
    t_true("signals: SIGINT saves and exits 130", rc == 130 && t_saved_step(tmp_path("sigint")) >= 1 &&
                                                      t_loads(tmp_path("sigint")));
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return perror("mkdtemp"), 2;
    write_corpus();
    test_nonfinite();
    test_failing_write();
    test_stale_temps();
    test_shrinking_corpus();
    test_signals(argv[0]);
    tmp_remove();
    return t_finish();
}
