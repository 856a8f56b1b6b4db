// cmd_bench.c — `grape bench <what>`: dispatch to one benchmark per file (bench_*.c).
#include <stdio.h>
#include <string.h>

#include "cli/bench_util.h"
#include "cli/cli.h"

static int bench_peak(int argc, char **argv) {
    static const char *const known[] = {NULL};
    static const char *const booleans[] = {"--json", NULL};
    cli_args a = {argc, argv, known};
    if (!args_check(&a, booleans)) return 1;
    double peak = bench_fma_peak_gflops();
    if (args_flag(&a, "--json"))
        printf("{\"peak_gflops\": %.1f}\n", peak);
    else
        printf("fp32 FMA peak (all threads, measured): %.1f GFLOP/s\n", peak);
    return 0;
}

static const cli_command benches[] = {
    {"peak", bench_peak, "measured fp32 FMA peak of this machine [--json]"},
    {"gemm", bench_gemm, "GFLOP/s of the GEMM vs peak [--M --N --K --ta --tb | --model] [--json]"},
    {"attn", bench_attn, "fused causal attention GFLOP/s vs sgemm --T --pe [--B --H --D --backward --bca W --json]"},
    {"pe", bench_pe, "ns/token/head of every encoding (or --pe NAME), fwd+bwd, x rope [--D --threads --clock --json]"},
    {"basis", bench_basis, "grape-m-basis unfolded vs folded (grape_basis_fold) vs rope [--D --B --T --H --threads]"},
    {"eval", bench_eval, "forward-only evaluation tokens/s (grape eval's evaluator) --preset --pe --T [--threads --json --profile]"},
    {"decode", bench_decode, "one cached-attention step: a query over N keys --kv N --pe NAME [--threads --H --D --json]"},
    {"train", bench_train, "training step tokens/s and GFLOP/s (6N+12LCT) vs peak --preset --pe [--steps --threads --json --profile]"},
};
#define N_BENCHES (int)(sizeof benches / sizeof benches[0])

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: grape bench <what> [options]\n\n");
        for (int i = 0; i < N_BENCHES; i++) printf("  %-8s %s\n", benches[i].name, benches[i].summary);
        return argc < 2;
    }
    for (int i = 0; i < N_BENCHES; i++)
        if (!strcmp(argv[1], benches[i].name)) {
            // bench train has its own long help; the others are described fully by their summary line
            if (wants_help(argc - 1, argv + 1) && strcmp(benches[i].name, "train")) {
                printf("usage: grape bench %s [options]\n  %s\n", benches[i].name, benches[i].summary);
                return 0;
            }
            return benches[i].run(argc - 1, argv + 1);
        }
    return cli_error("bench: unknown benchmark '%s' (see grape bench --help)", argv[1]);
}
