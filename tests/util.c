// util.c — see util.h.
#include "util.h"

#include <dirent.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_pass, n_fail;

int t_check(const char *name, double err, double tol) {
    int ok = err <= tol; // NaN fails
    printf("%s %s: err=%.3e tol=%.1e\n", ok ? "PASS" : "FAIL", name, err, tol);
    ok ? n_pass++ : n_fail++;
    return ok;
}

int t_true(const char *name, int ok) {
    printf("%s %s\n", ok ? "PASS" : "FAIL", name);
    ok ? n_pass++ : n_fail++;
    return ok;
}

int t_finish(void) {
    printf("# %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

t_rng t_seed(uint64_t seed) { return (t_rng){seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull}; }

static uint64_t next_u64(t_rng *r) { // splitmix64
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double t_uniform(t_rng *r) { return (double)(next_u64(r) >> 11) * 0x1.0p-53; }

double t_normal(t_rng *r) {
    double u = t_uniform(r), v = t_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

int t_randint(t_rng *r, int lo, int hi) { return lo + (int)(t_uniform(r) * (hi - lo + 1)); }

void t_fill(float *x, size_t n, double std, t_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * t_normal(r));
}

void t_fill_d(double *x, size_t n, double std, t_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = std * t_normal(r);
}

double t_rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num)) num = d; // propagates NaN
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

double t_rel_err_ff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= num)) num = d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}

double t_rel_err_dd(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= num)) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

void t_fd_grad(double *grad, t_scalar_fn f, double *x, size_t n, double h, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double f1 = f(x, ctx);
        x[i] = x0 - h;
        double fm1 = f(x, ctx);
        x[i] = x0 + 2 * h;
        double f2 = f(x, ctx);
        x[i] = x0 - 2 * h;
        double fm2 = f(x, ctx);
        x[i] = x0;
        grad[i] = (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * h);
    }
}

void t_write_words(const char *path, long bytes, uint64_t seed) {
    FILE *f = fopen(path, "w");
    t_rng r = t_seed(seed);
    static const char *const words[] = {"the ", "grape ", "vine ", "and ", "of ", "wine ", "in ", "a ", "field\n"};
    for (long n = 0; f && n < bytes;) n += fprintf(f, "%s", words[t_randint(&r, 0, 8)]);
    if (!f || fclose(f)) exit(2);
}

int t_count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

unsigned char *t_read_file(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n > 0 ? (size_t)*n : 1);
    if (!b || fread(b, 1, (size_t)*n, f) != (size_t)*n) exit(2);
    fclose(f);
    return b;
}

int t_count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0;
    for (int c; f && (c = fgetc(f)) != EOF;) n += c == '\n';
    if (f) fclose(f);
    return n;
}

int t_run_grape(const char *argv0, const char *args, char *err, size_t cap) {
    char self[512], out[600], cmd[4096];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(out, sizeof out, "%s.stderr", argv0);
    snprintf(cmd, sizeof cmd, "'%s/../grape' %s >/dev/null 2>'%s'", dirname(self), args, out);
    int rc = system(cmd);
    FILE *f = fopen(out, "r");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    remove(out);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int t_spawn_grape(const char *argv0, const char *const *args) {
    char self[512], bin[600];
    const char *argv[64] = {bin};
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(bin, sizeof bin, "%s/../grape", dirname(self));
    for (int i = 0; args[i] && i < 62; i++) argv[i + 1] = args[i];
    fflush(stdout); // the child must not repeat what is buffered
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return (int)pid;
}
