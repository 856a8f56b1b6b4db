// error.c — status names and the per-thread last-error message.
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char *grape_status_name(grape_status s) {
    switch (s) {
    case GRAPE_OK: return "ok";
    case GRAPE_ERR_ARG: return "invalid argument";
    case GRAPE_ERR_NOMEM: return "out of memory";
    case GRAPE_ERR_IO: return "i/o error";
    case GRAPE_ERR_FORMAT: return "malformed input";
    case GRAPE_ERR_NUMERIC: return "non-finite value";
    case GRAPE_ERR_UNSUPPORTED: return "unsupported";
    case GRAPE_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

const char *grape_last_error(void) { return last_error; }

void error_clear(void) { last_error[0] = '\0'; }

grape_status error_fail(grape_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
