// args.c — "--flag value" parsing with range checks and clear messages.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("grape: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int in_list(const char *s, const char *const *list) {
    for (; list && *list; list++)
        if (strcmp(s, *list) == 0) return 1;
    return 0;
}

const char *args_str(const cli_args *a, const char *name) {
    for (int i = 1; i + 1 < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0) return a->argv[i + 1];
    return NULL;
}

int args_flag(const cli_args *a, const char *name) {
    for (int i = 1; i < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0) return 1;
    return 0;
}

int args_long(const cli_args *a, const char *name, long lo, long hi, long *out) {
    const char *s = args_str(a, name);
    if (!s) return 1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_error("%s wants an integer in [%ld, %ld], got '%s'", name, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int args_double(const cli_args *a, const char *name, double lo, double hi, double *out) {
    const char *s = args_str(a, name);
    if (!s) return 1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        cli_error("%s wants a number in [%g, %g], got '%s'", name, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int args_check(const cli_args *a, const char *const *boolean_flags) {
    for (int i = 1; i < a->argc; i++) {
        const char *s = a->argv[i];
        if (in_list(s, boolean_flags)) continue;
        if (!in_list(s, a->known)) {
            cli_error("%s: unknown argument '%s' (see %s --help)", a->argv[0], s, a->argv[0]);
            return 0;
        }
        if (i + 1 >= a->argc) {
            cli_error("%s: %s needs a value", a->argv[0], s);
            return 0;
        }
        i++;
    }
    return 1;
}
