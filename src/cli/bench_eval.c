// bench_eval.c — `grape bench eval`: forward-only evaluation tokens/s (grape_model_score, the evaluator of
// `grape eval`) of a randomly initialised model on one window of T random bytes: the median of 3 timed windows
// after one warm-up window. The PyTorch peer (bench/) runs the same model's forward at the same length.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/prof.h"
#include "grape.h"

typedef struct {
    grape_evaluator *e;
    uint8_t *x;
    int T;
    grape_status st;
    int calls, profile; // --profile: the timed windows (every call after the warm-up) are profiled
} eval_job;

#define EVAL_REPS 3 // timed windows after one warm-up

static void score_once(void *ctx) {
    eval_job *j = ctx;
    double nats;
    if (!j->st) j->st = grape_model_score(j->e, j->x, j->x + 1, j->T, NULL, &nats);
    if (j->profile && ++j->calls == 1) prof_start(omp_get_max_threads() == 1);
}

int bench_eval(int argc, char **argv) {
    static const char *const known[] = {"--preset", "--pe", "--T", "--threads", NULL};
    static const char *const booleans[] = {"--json", "--profile", NULL};
    cli_args a = {argc, argv, known};
    if (!args_check(&a, booleans)) return 1;
    const char *preset = args_str(&a, "--preset") ? args_str(&a, "--preset") : "tiny";
    const char *pe = args_str(&a, "--pe") ? args_str(&a, "--pe") : "rope";
    long T = 1024, threads = 0;
    if (!args_long(&a, "--T", 1, 1 << 20, &T) || !args_long(&a, "--threads", 0, 4096, &threads)) return 1;
    if (threads > 0) omp_set_num_threads((int)threads);
    grape_model_config cfg;
    grape_model *m = NULL;
    eval_job j = {.T = (int)T, .profile = args_flag(&a, "--profile")};
    if (grape_model_preset(&cfg, preset) || grape_pe_parse(&cfg.pe, pe) ||
        (cfg.max_batch = cfg.max_seq = 1, grape_model_create(&m, &cfg)) || grape_model_init(m, 1) ||
        grape_evaluator_create(&j.e, m, (int)T)) {
        grape_model_free(m);
        return cli_error("bench eval: %s", grape_last_error());
    }
    j.x = malloc((size_t)T + 1);
    for (long i = 0; j.x && i <= T; i++) j.x[i] = (uint8_t)(32 + (i * 7919 % 95)); // printable, deterministic
    double sec = j.x ? bench_median(score_once, &j, EVAL_REPS) : 0;
    prof_stop();
    int ok = j.x && !j.st;
    if (!ok) cli_error("bench eval: %s", j.x ? grape_last_error() : "out of memory");
    else if (args_flag(&a, "--json"))
        printf("{\"preset\": \"%s\", \"pe\": \"%s\", \"T\": %ld, \"threads\": %d, \"seconds\": %.6f, "
               "\"tokens_per_s\": %.1f}\n",
               preset, pe, T, omp_get_max_threads(), sec, (double)T / sec);
    else
        printf("grape bench eval: %s %s, T = %ld, %d threads: %.4f s per window, %.0f tokens/s (forward only)\n",
               preset, pe, T, omp_get_max_threads(), sec, (double)T / sec);
    if (ok && j.profile) bench_profile_print(EVAL_REPS, "window", args_flag(&a, "--json"));
    free(j.x);
    grape_evaluator_free(j.e);
    grape_model_free(m);
    return ok ? 0 : 1;
}
