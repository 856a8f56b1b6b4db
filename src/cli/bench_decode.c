// bench_decode.c — `grape bench decode --kv N --pe NAME [--threads K]`: the time of one cached-attention step
// (grape_kv_cache_rotate + grape_kv_cache_attend: one new token's query over N cached keys, H = 4 heads of D = 64
// by default), the kernel of streaming decode. The cache is filled with N random tokens first; then 21 steps are
// timed one by one (keys N .. N+20, so the key count varies by < 1% at N >= 4096) and the median is reported; with
// --threads 1 in the thread's CPU time (immune to other processes), else wall time. ggml's CPU flash attention
// (llama.cpp's decode kernel) is the reference point in docs/BENCHMARKS.md. Flops: 4 H D per key (q·k and p·v).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "grape.h"

#define DECODE_REPS 21

typedef struct {
    grape_kv_cache *c;
    float *q, *k, *v, *out, *logit, *probe;
    const float *in[8]; // token inputs: logit for the (H)-or-narrower channels, probe for GRAPE-AP's
    grape_status st;
} decode_job;

static void step_once(void *ctx) {
    decode_job *j = ctx;
    if (!j->st) j->st = grape_kv_cache_rotate(j->c, j->q, j->k);
    if (!j->st) j->st = grape_kv_cache_attend(j->c, j->out, j->q, j->k, j->v, NULL, NULL, j->in);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_decode(int argc, char **argv) {
    static const char *const known[] = {"--kv", "--pe", "--threads", "--H", "--D", NULL};
    static const char *const booleans[] = {"--json", NULL};
    cli_args a = {argc, argv, known};
    if (!args_check(&a, booleans)) return 1;
    long N = 4096, threads = 0, H = 4, D = 64;
    if (!args_long(&a, "--kv", 1, 1 << 22, &N) || !args_long(&a, "--threads", 0, 4096, &threads) ||
        !args_long(&a, "--H", 1, 256, &H) || !args_long(&a, "--D", 2, 1024, &D))
        return 1;
    const char *name = args_str(&a, "--pe") ? args_str(&a, "--pe") : "rope";
    if (threads > 0) omp_set_num_threads((int)threads);
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, (int)H, (int)D);
    grape_pe *pe = NULL;
    float *params = NULL;
    decode_job j = {0};
    if (grape_pe_parse(&cfg, name) || grape_pe_create(&pe, &cfg) ||
        !(params = calloc(grape_pe_num_params(pe) + 1, sizeof(float))) || grape_pe_init_params(pe, params, 1) ||
        grape_pe_prepare(pe, params) || grape_kv_cache_create(&j.c, pe, (int)N + DECODE_REPS + 1, 0)) {
        int rc = cli_error("bench decode: %s", grape_last_error());
        free(params);
        grape_pe_free(pe);
        return rc;
    }
    size_t HD = (size_t)H * (size_t)D, P = (size_t)cfg.ap_probe_dim;
    float *buf = calloc(4 * HD + 2 * (size_t)H + (size_t)H * P, sizeof(float));
    if (!buf) return cli_error("bench decode: out of memory");
    j.q = buf, j.k = buf + HD, j.v = buf + 2 * HD, j.out = buf + 3 * HD, j.logit = buf + 4 * HD;
    j.probe = j.logit + 2 * H;
    for (int i = 0; i < grape_pe_num_token_inputs(pe) && i < 8; i++)
        j.in[i] = grape_pe_token_input_info(pe, i)->width > H ? j.probe : j.logit;
    uint64_t s = 88172645463325252ull; // xorshift: unit-scale inputs, the same on every run
    double t[DECODE_REPS];
    for (long i = 0; i < N + DECODE_REPS && !j.st; i++) {
        for (size_t x = 0; x < 4 * HD + 2 * (size_t)H + (size_t)H * P; x++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            if (x < 3 * HD || x >= 4 * HD) buf[x] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        }
        double (*clock)(void) = omp_get_max_threads() == 1 ? bench_thread_cpu_now : bench_now;
        double t0 = i >= N ? clock() : 0;
        step_once(&j);
        if (i >= N) t[i - N] = clock() - t0;
    }
    int ok = !j.st;
    if (!ok) cli_error("bench decode: %s", grape_last_error());
    else {
        qsort(t, DECODE_REPS, sizeof t[0], cmp_double);
        double sec = t[DECODE_REPS / 2], gflops = 4.0 * (double)H * (double)D * (double)N / sec * 1e-9;
        if (args_flag(&a, "--json"))
            printf("{\"pe\": \"%s\", \"kv\": %ld, \"H\": %ld, \"D\": %ld, \"threads\": %d, \"us\": %.2f, "
                   "\"us_min\": %.2f, \"gflops\": %.2f}\n",
                   name, N, H, D, omp_get_max_threads(), 1e6 * sec, 1e6 * t[0], gflops);
        else
            printf("decode %s: one query over %ld cached keys (H=%ld, D=%ld, %d threads): %.1f us (min %.1f), "
                   "%.1f GFLOP/s\n",
                   name, N, H, D, omp_get_max_threads(), 1e6 * sec, 1e6 * t[0], gflops);
    }
    free(buf);
    free(params);
    grape_kv_cache_free(j.c);
    grape_pe_free(pe);
    return ok ? 0 : 1;
}
