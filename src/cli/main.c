// main.c — the grape command line: dispatch to subcommands. Only the CLI prints and exits.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "grape.h"

static const cli_command commands[] = {
    {"encodings", cmd_encodings, "list every position encoding: family, learnable parameters, source"},
    {"bench", cmd_bench, "benchmarks (grape bench --help)"},
    {"train", cmd_train, "train the byte-level model with an encoding (grape train --help)"},
    {"sample", cmd_sample, "generate text from a trained checkpoint (grape sample --help)"},
    {"eval", cmd_eval, "bits per byte at 1x-16x the training length, full or LEX BCA (grape eval --help)"},
    {"compare", cmd_compare, "train + evaluate encodings with one budget: tables and plots (grape compare --help)"},
    {"resolution", cmd_resolution, "LEX attention resolution R(s) per layer at 1x and 2x (grape resolution --help)"},
    {"passkey", cmd_passkey, "passkey retrieval accuracy by length x depth, effective context (grape passkey --help)"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "grape %s — position encodings for transformers as group actions\n\n", GRAPE_VERSION);
    fprintf(f, "usage: grape <command> [options]   (grape <command> --help for its options)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("grape %s\n", GRAPE_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    usage(stderr);
    return cli_error("unknown command '%s'", argv[1]);
}
