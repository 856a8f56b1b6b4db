// util.h — the test harness: checks that print their error and tolerance, seeded random data,
// and double-precision finite differences (4-point stencil, as ggml's test-grad0).
#ifndef GRAPE_TESTS_UTIL_H
#define GRAPE_TESTS_UTIL_H

#include <stddef.h>
#include <stdint.h>

// Record one check: passes when err <= tol (and err is not NaN). Prints "PASS|FAIL name: err=.. tol=..".
int t_check(const char *name, double err, double tol);
// Record a boolean check.
int t_true(const char *name, int ok);
// Print the file's summary and return the process exit code (0 when nothing failed).
int t_finish(void);

typedef struct {
    uint64_t s;
} t_rng;
t_rng t_seed(uint64_t seed);
double t_uniform(t_rng *r); // [0,1)
double t_normal(t_rng *r);
int t_randint(t_rng *r, int lo, int hi); // [lo, hi]
void t_fill(float *x, size_t n, double std, t_rng *r);
void t_fill_d(double *x, size_t n, double std, t_rng *r);

// Normwise relative error max|a - b| / max|b| (b is the reference).
double t_rel_err(const float *a, const double *b, size_t n);
double t_rel_err_ff(const float *a, const float *b, size_t n);
double t_rel_err_dd(const double *a, const double *b, size_t n);

// Gradient of f at x (n doubles) by the 4-point central stencil with step h; x is restored on return.
typedef double (*t_scalar_fn)(const double *x, void *ctx);
void t_fd_grad(double *grad, t_scalar_fn f, double *x, size_t n, double h, void *ctx);

// path := about `bytes` bytes of English-like words (9-word vocabulary, newlines), drawn with seed; exits 2 on error.
void t_write_words(const char *path, long bytes, uint64_t seed);
// Files in dir whose name holds ".tmp." (the atomic writer's temp files).
int t_count_temp_files(const char *dir);

// The whole file at path in a malloc'd buffer (*n bytes), NULL when it cannot be opened; exits 2 on a failed read.
unsigned char *t_read_file(const char *path, long *n);
// Newline characters in the file at path (0 when it cannot be read).
int t_count_lines(const char *path);

// Run `BUILD/grape ARGS` (BUILD found from argv0, the path of a test binary in BUILD/tests) with stdout discarded
// and stderr into err (cap bytes, NUL-terminated); its exit status, or -1 if it died of a signal.
int t_run_grape(const char *argv0, const char *args, char *err, size_t cap);
// Start `BUILD/grape ARGS...` (args NULL-terminated, without the program name) in the background with stdout and
// stderr discarded; its pid.
int t_spawn_grape(const char *argv0, const char *const *args);

#endif
