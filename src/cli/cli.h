// cli.h — subcommands of the grape command line and the small flag parser they share.
#ifndef GRAPE_CLI_H
#define GRAPE_CLI_H

#include <stdint.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); // argv[0] is the subcommand name
    const char *summary;
} cli_command;

// Flags are "--name value" or "--name" (boolean). Unknown flags are an error reported by args_check.
typedef struct {
    int argc;
    char **argv;
    const char *const *known; // NULL-terminated list of accepted flag names (with "--")
} cli_args;

// Value of --name, or NULL if absent.
const char *args_str(const cli_args *a, const char *name);
int args_flag(const cli_args *a, const char *name);
// Parse --name as an integer/double in [lo, hi] into *out (unchanged if absent). Returns 0 and prints on error.
int args_long(const cli_args *a, const char *name, long lo, long hi, long *out);
int args_double(const cli_args *a, const char *name, double lo, double hi, double *out);
// Every argument must be a known flag (followed by a value unless boolean). Prints and returns 0 otherwise.
int args_check(const cli_args *a, const char *const *boolean_flags);
// Print "grape: " + message to stderr; returns exit status 1.
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_encodings(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_resolution(int argc, char **argv);
int cmd_passkey(int argc, char **argv);
int cmd_compare(int argc, char **argv);
// `grape bench gemm` (bench_gemm.c)
int bench_gemm(int argc, char **argv);
// `grape bench attn` (bench_attn.c)
int bench_attn(int argc, char **argv);
// `grape bench pe` (bench_pe.c)
int bench_pe(int argc, char **argv);
// `grape bench basis` (bench_basis.c)
int bench_basis(int argc, char **argv);
// `grape bench eval` (bench_eval.c)
int bench_eval(int argc, char **argv);
// `grape bench decode` (bench_decode.c)
int bench_decode(int argc, char **argv);
// `grape bench train` (bench_train.c)
int bench_train(int argc, char **argv);

#endif
