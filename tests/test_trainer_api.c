// test_trainer_api.c — the public trainer (grape.h, "Training") end to end on the micro preset, through grape.h
// alone: create, steps, evaluate, save, free, resume, more steps == one uninterrupted run bit for bit (checkpoint
// bytes and every step's loss); a group's gradient sum is called once per step and a group of one changes no bit;
// a stop request saves and interrupts; impossible configurations, a missing corpus and broken checkpoints return
// clear errors (GRAPE_ERR_ARG / _IO / _FORMAT and a message naming the problem), never a crash.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grape.h"
#include "tmpdir.h"
#include "util.h"

enum { N = 8, K = 3 }; // steps of the run; steps before the interruption

static char corpus[300];

// micro preset, RoPE + GRAPE-AP (learned encoding parameters in the checkpoint), batch 4 x seq 32, validation
// every 2 steps, a checkpoint every 3, one thread.
static grape_train_config micro_config(void) {
    grape_train_config c;
    grape_train_config_default(&c);
    snprintf(c.preset, sizeof c.preset, "micro");
    snprintf(c.pe_name, sizeof c.pe_name, "rope+grape-ap");
    snprintf(c.data, sizeof c.data, "%s", corpus);
    c.batch = 4, c.seq = 32, c.steps = N, c.threads = 1;
    c.eval_interval = 2, c.eval_batches = 1, c.log_interval = 1, c.save_interval = 3;
    return c;
}

// A group of one that counts its collectives (a distributed caller would all-reduce here).
typedef struct {
    int f32, f64, gather;
    size_t n;
} calls;

static grape_status count_f32(float *v, size_t n, void *ctx) {
    calls *c = ctx;
    (void)v;
    c->f32++, c->n = n;
    return GRAPE_OK;
}

static grape_status count_f64(double *v, size_t n, void *ctx) {
    (void)v, (void)n;
    ((calls *)ctx)->f64++;
    return GRAPE_OK;
}

static grape_status count_gather(uint64_t v, uint64_t *all, void *ctx) {
    ((calls *)ctx)->gather++;
    all[0] = v;
    return GRAPE_OK;
}

// The checkpoints of run directories a and b are the same bytes.
static int same_checkpoint(const char *a, const char *b) {
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/%s", a, GRAPE_CHECKPOINT_FILE);
    snprintf(pb, sizeof pb, "%s/%s", b, GRAPE_CHECKPOINT_FILE);
    long na = -1, nb = -2;
    unsigned char *x = t_read_file(pa, &na), *y = t_read_file(pb, &nb);
    int same = x && y && na == nb && !memcmp(x, y, (size_t)na);
    free(x);
    free(y);
    return same;
}

static void test_resume_equals_uninterrupted(void) {
    grape_train_config c = micro_config();
    calls n = {0};
    grape_train_group one = {.rank = 0, .size = 1, .ctx = &n, .sum_f32 = count_f32, .sum_f64 = count_f64,
                             .gather_u64 = count_gather};
    double full[N], split[N], val2 = NAN, eval2 = NAN;
    grape_train_report r;
    grape_trainer *t = NULL;
    grape_status s = grape_trainer_create(&t, &c, tmp_path("full"), &one);
    for (int i = 0; !s && i < N; i++) {
        s = grape_trainer_step(t, &r);
        full[i] = r.loss;
    }
    if (s) printf("# %s\n", grape_last_error());
    t_true("uninterrupted: N steps through grape_trainer_step", !s && grape_trainer_state(t)->step == N);
    size_t params = t ? grape_model_num_params(grape_trainer_model(t)) : 0;
    printf("# group of one: %d gradient sums of %zu floats, %d loss sums, %d gathers in %d steps\n", n.f32, n.n, n.f64,
           n.gather, N);
    t_true("group: sum_f32 once per step, on the whole gradient vector", n.f32 == N && n.n == params);
    t_true("group: sum_f64 once per step, gather_u64 once per checkpoint (steps 3, 6, 8)",
           n.f64 == N && n.gather == 3);
    t_true("a step past the configured steps is GRAPE_ERR_ARG", grape_trainer_step(t, &r) == GRAPE_ERR_ARG);
    grape_trainer_free(t);

    // The same run without a group: K steps, an evaluation, a save, free; then resume and finish.
    t = NULL;
    s = grape_trainer_create(&t, &c, tmp_path("split"), NULL);
    for (int i = 0; !s && i < K; i++) {
        s = grape_trainer_step(t, &r);
        split[i] = r.loss;
        if (r.step == 2) val2 = r.val_bpb;
        if (!s && r.step == 2) s = grape_trainer_evaluate(t, &eval2);
    }
    if (!s) s = grape_trainer_save(t);
    grape_trainer_free(t);
    t = NULL;
    grape_train_state st = {0};
    if (!s) s = grape_train_checkpoint(NULL, &st, tmp_path("split"));
    t_true("save: the checkpoint holds step K", !s && st.step == K);
    if (!s) s = grape_trainer_resume(&t, tmp_path("split"), NULL, NULL);
    for (int i = K; !s && i < N; i++) {
        s = grape_trainer_step(t, &r);
        split[i] = r.loss;
    }
    if (s) printf("# %s\n", grape_last_error());
    grape_trainer_free(t);
    printf("# step 2: validation %.9g bits/byte in the loop, %.9g from grape_trainer_evaluate\n", val2, eval2);
    t_true("evaluate: the loop's validation windows, the same bits (step 2)", isfinite(val2) && val2 == eval2);
    int same = !s;
    for (int i = 0; same && i < N; i++) same = full[i] == split[i];
    printf("# losses: step 1 %.9g, step %d %.9g\n", full[0], N, full[N - 1]);
    t_true("resume: every step's loss equals the uninterrupted run's (a group of one changes no bit)", same);
    t_true("resume: the final checkpoint is byte-identical to the uninterrupted run's",
           same_checkpoint(tmp_path("full"), tmp_path("split")));
}

static int stop_at_2(const grape_train_report *r, void *ctx) {
    (void)ctx;
    return r->step == 2;
}

static void test_stop_and_run(void) {
    grape_train_config c = micro_config();
    grape_trainer *t = NULL;
    grape_status s = grape_trainer_create(&t, &c, tmp_path("stop"), NULL);
    if (!s) s = grape_trainer_run(t, stop_at_2, NULL);
    grape_trainer_free(t);
    grape_train_state st = {0};
    printf("# %s\n", grape_last_error());
    t_true("run: a callback's stop request saves after step 2 and returns GRAPE_ERR_INTERRUPTED",
           s == GRAPE_ERR_INTERRUPTED && !grape_train_checkpoint(NULL, &st, tmp_path("stop")) && st.step == 2);
    t = NULL;
    c.steps = N;
    s = grape_trainer_resume(&t, tmp_path("stop"), &c, NULL);
    if (!s) s = grape_trainer_run(t, NULL, NULL);
    grape_trainer_free(t);
    t_true("run: resumed after the stop, the checkpoint equals the uninterrupted run's",
           !s && same_checkpoint(tmp_path("full"), tmp_path("stop")));
}

static void expect(const char *name, grape_status got, grape_status want, const char *says) {
    const char *msg = grape_last_error();
    printf("# %s: %s\n", name, msg);
    t_true(name, got == want && strstr(msg, says));
}

// create with c into dir; the trainer must be NULL on failure.
static grape_status create(const grape_train_config *c, const char *dir, const grape_train_group *g) {
    grape_trainer *t = (grape_trainer *)&t;
    grape_status s = grape_trainer_create(&t, c, dir, g);
    if (s && t) return printf("# trainer not NULL after a failure\n"), GRAPE_OK;
    grape_trainer_free(t);
    return s;
}

static void test_errors(void) {
    grape_train_config c = micro_config();
    c.model.n_embd = 30, c.model.n_head = 4;
    expect("error: n_embd not divisible by n_head", create(&c, tmp_path("err"), NULL), GRAPE_ERR_ARG, "n_head");
    c = micro_config();
    c.batch = -3;
    expect("error: batch -3 names the flag", create(&c, tmp_path("err"), NULL), GRAPE_ERR_ARG, "--batch");
    c = micro_config();
    snprintf(c.preset, sizeof c.preset, "huge");
    expect("error: unknown preset", create(&c, tmp_path("err"), NULL), GRAPE_ERR_ARG, "huge");
    c = micro_config();
    snprintf(c.task_mix, sizeof c.task_mix, "passkey:2");
    expect("error: a task mix fraction above 1", create(&c, tmp_path("err"), NULL), GRAPE_ERR_ARG, "--task-mix");
    c = micro_config();
    snprintf(c.data, sizeof c.data, "%s", tmp_path("no-such-corpus.txt"));
    expect("error: missing corpus", create(&c, tmp_path("err"), NULL), GRAPE_ERR_IO, "no-such-corpus.txt");
    c = micro_config();
    calls n = {0};
    grape_train_group g = {.rank = 0, .size = 3, .ctx = &n, .sum_f32 = count_f32, .sum_f64 = count_f64,
                           .gather_u64 = count_gather};
    expect("error: a group of 3 ranks cannot split batch 4", create(&c, tmp_path("err"), &g), GRAPE_ERR_ARG,
           "cannot be split across 3 ranks");
    g.size = 2, g.rank = 2;
    expect("error: rank 2 of 2", create(&c, tmp_path("err"), &g), GRAPE_ERR_ARG, "rank 2 of 2");
    g.rank = 0, g.gather_u64 = NULL;
    expect("error: a group without gather_u64", create(&c, tmp_path("err"), &g), GRAPE_ERR_ARG, "gather_u64");
    t_true("error: no collective was called by a refused group", n.f32 == 0 && n.f64 == 0 && n.gather == 0);
    expect("error: NULL configuration", grape_trainer_create(&(grape_trainer *){NULL}, NULL, "x", NULL),
           GRAPE_ERR_ARG, "NULL");

    grape_trainer *t = (grape_trainer *)&t;
    expect("error: resume without a checkpoint", grape_trainer_resume(&t, tmp_path("empty"), NULL, NULL), GRAPE_ERR_IO,
           "empty");
    t_true("error: the trainer is NULL after a failed resume", t == NULL);

    // A checkpoint with bytes of its tensor data overwritten by NaN, then one cut short.
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/%s %s/", tmp_path("corrupt"), tmp_path("full"),
             GRAPE_CHECKPOINT_FILE, tmp_path("corrupt"));
    if (system(cmd)) exit(2);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", tmp_path("corrupt"), GRAPE_CHECKPOINT_FILE);
    FILE *f = fopen(path, "r+b");
    if (!f) exit(2);
    fseek(f, -64, SEEK_END);
    const unsigned char nan_bytes[16] = {0, 0, 0xc0, 0x7f, 0, 0, 0xc0, 0x7f, 0, 0, 0xc0, 0x7f, 0, 0, 0xc0, 0x7f};
    if (fwrite(nan_bytes, 1, sizeof nan_bytes, f) != sizeof nan_bytes) exit(2);
    fclose(f);
    expect("error: resume from a checkpoint holding NaN", grape_trainer_resume(&t, tmp_path("corrupt"), NULL, NULL),
           GRAPE_ERR_FORMAT, GRAPE_CHECKPOINT_FILE);
    if (truncate(path, 1000)) exit(2);
    expect("error: resume from a truncated checkpoint", grape_trainer_resume(&t, tmp_path("corrupt"), NULL, NULL),
           GRAPE_ERR_FORMAT, GRAPE_CHECKPOINT_FILE);

    // Weights only (grape_model_save): loads as a model, cannot resume.
    grape_model *m = NULL;
    grape_status s = grape_model_load(&m, tmp_path("full"), 0, 0);
    if (!s) s = grape_model_save(m, tmp_path("weights"));
    grape_model_free(m);
    expect("error: resume from a weights-only checkpoint",
           s ? s : grape_trainer_resume(&t, tmp_path("weights"), NULL, NULL), GRAPE_ERR_FORMAT, "weights");
}

int main(void) {
    if (!tmp_create()) return perror("mkdtemp"), 2;
    omp_set_num_threads(1);
    snprintf(corpus, sizeof corpus, "%s", tmp_path("corpus.txt"));
    t_write_words(corpus, 65536, 7);
    test_resume_equals_uninterrupted();
    test_stop_and_run();
    test_errors();
    tmp_remove();
    return t_finish();
}
