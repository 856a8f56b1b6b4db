// bench_train.c — `grape bench train`: tokens/s and GFLOP/s of the real training step (grape_trainer_run on the corpus:
// sample, forward, backward, clip, AdamW), the median over timed steps after warm-up steps.
//
// Flop count (llm.c / PaLM convention, stated so numbers are comparable): per token 6N + 12·L·C·T, where N counts
// every parameter (the tied embedding once, encoding parameters included) and the 12·L·C·T attention term counts
// the full T×T score and value products of forward + backward (not halved for causality).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/prof.h"
#include "grape.h"

typedef struct {
    double *seconds; // per step
    int64_t n;
    double tokens_per_step;
    int64_t profile_from, profile_to; // --profile: steps (from, to] are profiled (0, 0: no profile)
    int cpu_clock;
} step_times;

static int record(const grape_train_report *r, void *ctx) {
    step_times *t = ctx;
    if (r->step >= 1 && r->step <= t->n && r->tokens_per_s > 0)
        t->seconds[r->step - 1] = t->tokens_per_step / r->tokens_per_s;
    if (t->profile_to && r->step == t->profile_from) prof_start(t->cpu_clock);
    if (t->profile_to && r->step == t->profile_to) prof_stop();
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Parameters of the configured model (a 1x1 plan: only the count is needed).
static size_t count_params(const grape_train_config *c) {
    grape_model_config mc = c->model;
    mc.max_batch = mc.max_seq = 1;
    grape_model *m = NULL;
    size_t n = grape_model_create(&m, &mc) ? 0 : grape_model_num_params(m);
    grape_model_free(m);
    return n;
}

static void remove_run(const char *dir) {
    char p[GRAPE_TRAIN_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s", dir, GRAPE_METRICS_FILE);
    unlink(p);
    rmdir(dir);
}

static int parse(int argc, char **argv, grape_train_config *c, long *warm, long *timed, int *json, int *profile) {
    static const char *const known[] = {"--preset",       "--pe",      "--batch", "--seq", "--steps",
                                        "--warmup-steps", "--threads", "--data",  NULL};
    static const char *const booleans[] = {"--json", "--profile", NULL};
    cli_args a = {argc, argv, known};
    long B = 0, T = 0, threads = 0;
    if (!args_check(&a, booleans) || !args_long(&a, "--batch", 1, 1 << 16, &B) ||
        !args_long(&a, "--seq", 1, 1 << 20, &T) || !args_long(&a, "--steps", 1, 1000, timed) ||
        !args_long(&a, "--warmup-steps", 0, 100, warm) || !args_long(&a, "--threads", 0, 4096, &threads))
        return 0;
    grape_train_config_default(c);
    const char *s;
    if ((s = args_str(&a, "--preset"))) snprintf(c->preset, sizeof c->preset, "%s", s);
    if ((s = args_str(&a, "--pe"))) snprintf(c->pe_name, sizeof c->pe_name, "%s", s);
    if ((s = args_str(&a, "--data"))) snprintf(c->data, sizeof c->data, "%s", s);
    c->batch = (int)B;
    c->seq = (int)T;
    c->steps = *warm + *timed;
    c->log_interval = 1;
    c->eval_interval = 0;
    c->eval_batches = 1;
    c->save_interval = 0;
    if (threads > 0) omp_set_num_threads((int)threads);
    c->threads = omp_get_max_threads();
    *json = args_flag(&a, "--json");
    *profile = args_flag(&a, "--profile");
    c->steps += *profile; // the profile ends before the last step, whose validation and checkpoint it must not see
    if (grape_train_config_resolve(c)) return !cli_error("bench train: %s", grape_last_error());
    return 1;
}

int bench_train(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: grape bench train [--preset tiny|small] [--pe NAME] [--batch B] [--seq T] [--steps N]\n"
               "       [--warmup-steps W] [--threads N] [--data PATH] [--json] [--profile]\n"
               "Median step time of W warm-up + N timed training steps [1 + 5] on the corpus; tokens/s and\n"
               "GFLOP/s at 6N + 12 L C T flops per token (N = all parameters), vs the measured FMA peak.\n"
               "--profile: also the time per op (GEMM, attention, norms, SwiGLU, cross-entropy, AdamW, encodings)\n"
               "per step over the N timed steps; with --threads 1 in the thread's CPU time (immune to other load).\n");
        return 0;
    }
    grape_train_config c;
    long warm = 1, timed = 5;
    int json = 0, profile = 0;
    if (!parse(argc, argv, &c, &warm, &timed, &json, &profile)) return 1;
    char dir[] = "/tmp/grape-bench-train-XXXXXX";
    step_times st = {calloc((size_t)c.steps, sizeof(double)), c.steps, (double)c.batch * c.seq * c.grad_accum,
                     warm, profile ? warm + timed : 0, c.threads == 1};
    if (!st.seconds || !mkdtemp(dir)) return free(st.seconds), cli_error("bench train: cannot set up a run");
    grape_trainer *t = NULL;
    grape_status s = grape_trainer_create(&t, &c, dir, NULL);
    if (!s) s = grape_trainer_run(t, record, &st);
    grape_trainer_free(t);
    remove_run(dir);
    if (s)
        return free(st.seconds), cli_error("bench train: %s%s", grape_last_error(),
                                           access(c.data, R_OK) ? " (the default corpus comes from `make data`)" : "");
    qsort(st.seconds + warm, (size_t)timed, sizeof(double), cmp_double);
    double step = st.seconds[warm + timed / 2], tps = st.tokens_per_step / step;
    free(st.seconds);
    size_t N = count_params(&c);
    double flops_tok = 6.0 * (double)N + 12.0 * c.model.n_layer * c.model.n_embd * (double)c.seq;
    double gflops = flops_tok * tps * 1e-9, peak = bench_fma_peak_gflops();
    if (json)
        printf("{\"preset\": \"%s\", \"pe\": \"%s\", \"batch\": %d, \"seq\": %d, \"threads\": %d, \"params\": %zu, "
               "\"step_ms\": %.2f, \"tokens_per_s\": %.1f, \"gflops\": %.2f, \"peak_gflops\": %.1f, "
               "\"fraction_of_peak\": %.3f}\n",
               c.preset, c.pe_name, c.batch, c.seq, c.threads, N, 1e3 * step, tps, gflops, peak, gflops / peak);
    else
        printf("train %s %s (B=%d T=%d, %zu params, %d threads): step %.1f ms, %.0f tokens/s, %.1f GFLOP/s "
               "(%.0f%% of the %.0f GFLOP/s FMA peak)\n",
               c.preset, c.pe_name, c.batch, c.seq, N, c.threads, 1e3 * step, tps, gflops, 100 * gflops / peak, peak);
    if (profile) bench_profile_print((double)timed, "step", json);
    return 0;
}
