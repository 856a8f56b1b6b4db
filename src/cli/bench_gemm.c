// bench_gemm.c — `grape bench gemm`: GFLOP/s of the library's GEMM (src/core/gemm.h) at one shape, or at the
// shapes the tiny and small models run (--model), against the machine's FMA peak measured in the same run.
#include <stdio.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/gemm.h"
#include "core/mem.h"

typedef struct {
    long M, N, K;
    int ta, tb;
    float *a, *b, *c;
} gemm_case;

static void run_case(void *ctx) {
    gemm_case *g = ctx;
    gemm(g->c, g->a, g->b, g->M, g->N, g->K, g->ta, g->tb, 0.0f);
}

// Median GFLOP/s of C = op(A) op(B) at one shape; < 0 if the buffers cannot be allocated.
static double time_case(long M, long N, long K, int ta, int tb, int reps) {
    gemm_case g = {M, N, K, ta, tb, NULL, NULL, NULL};
    g.a = mem_alloc((size_t)M * (size_t)K * sizeof(float));
    g.b = mem_alloc((size_t)K * (size_t)N * sizeof(float));
    g.c = mem_alloc((size_t)M * (size_t)N * sizeof(float));
    double gflops = -1;
    if (g.a && g.b && g.c) {
        for (size_t i = 0; i < (size_t)M * (size_t)K; i++) g.a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)K * (size_t)N; i++) g.b[i] = (float)(i % 5) * 0.1f;
        gflops = 2e-9 * (double)M * (double)N * (double)K / bench_median(run_case, &g, reps);
    }
    mem_free(g.a);
    mem_free(g.b);
    mem_free(g.c);
    return gflops;
}

// The GEMMs of one training step of tiny (B*T=4096, C=256, hidden 682) and small (4096, 384, 1024):
// forward x W^T (NT), backward dY W (NN) and dW = dY^T X (TN).
static const struct {
    const char *what;
    long M, N, K;
    int ta, tb;
} model_shapes[] = {
    {"tiny qkv fwd", 4096, 768, 256, 0, 1},  {"tiny qkv dx", 4096, 256, 768, 0, 0},
    {"tiny qkv dW", 768, 256, 4096, 1, 0},   {"tiny w12 fwd", 4096, 1364, 256, 0, 1},
    {"tiny w3 fwd", 4096, 256, 682, 0, 1},   {"tiny w3 dW", 256, 682, 4096, 1, 0},
    {"tiny lm_head", 4096, 256, 256, 0, 1},  {"small qkv fwd", 4096, 1152, 384, 0, 1},
    {"small w12 fwd", 4096, 2048, 384, 0, 1}, {"small w3 dx", 4096, 1024, 384, 0, 0},
};
#define N_MODEL_SHAPES (int)(sizeof model_shapes / sizeof model_shapes[0])

static void report(int json, int first, const char *what, long M, long N, long K, int ta, int tb, double gflops,
                   double peak) {
    if (json)
        printf("%s{\"what\": \"%s\", \"M\": %ld, \"N\": %ld, \"K\": %ld, \"trans_a\": %d, \"trans_b\": %d, "
               "\"gflops\": %.1f, \"peak_gflops\": %.1f, \"pct_peak\": %.1f}",
               first ? "" : ",\n", what, M, N, K, ta, tb, gflops, peak, 100.0 * gflops / peak);
    else
        printf("%-14s %5ld x %5ld x %5ld %c%c  %7.1f GFLOP/s  %5.1f%% of peak\n", what, M, N, K, ta ? 'T' : 'N',
               tb ? 'T' : 'N', gflops, 100.0 * gflops / peak);
}

int bench_gemm(int argc, char **argv) {
    static const char *const known[] = {"--M", "--N", "--K", "--reps", NULL};
    static const char *const booleans[] = {"--json", "--ta", "--tb", "--model", NULL};
    cli_args a = {argc, argv, known};
    long M = 1024, N = 1024, K = 1024, reps = 15;
    if (!args_check(&a, booleans) || !args_long(&a, "--M", 1, 1 << 16, &M) || !args_long(&a, "--N", 1, 1 << 16, &N) ||
        !args_long(&a, "--K", 1, 1 << 16, &K) || !args_long(&a, "--reps", 1, 101, &reps))
        return 1;
    int json = args_flag(&a, "--json"), ta = args_flag(&a, "--ta"), tb = args_flag(&a, "--tb");
    double peak = bench_fma_peak_gflops();
    if (!json) printf("GEMM: oneDNN dnnl_sgemm, row-major fp32; FMA peak %.1f GFLOP/s (measured)\n", peak);
    int ok = 1;
    if (args_flag(&a, "--model")) {
        if (json) printf("[");
        for (int i = 0; i < N_MODEL_SHAPES; i++) {
            double g = time_case(model_shapes[i].M, model_shapes[i].N, model_shapes[i].K, model_shapes[i].ta,
                                 model_shapes[i].tb, (int)reps);
            ok &= g > 0;
            report(json, i == 0, model_shapes[i].what, model_shapes[i].M, model_shapes[i].N, model_shapes[i].K,
                   model_shapes[i].ta, model_shapes[i].tb, g, peak);
        }
        if (json) printf("]\n");
    } else {
        double g = time_case(M, N, K, ta, tb, (int)reps);
        ok = g > 0;
        report(json, 1, "gemm", M, N, K, ta, tb, g, peak);
        if (json) printf("\n");
    }
    return ok ? 0 : cli_error("bench gemm: out of memory");
}
