// error.h — thread-local error message behind grape_status (library never prints, never exits).
#ifndef GRAPE_CORE_ERROR_H
#define GRAPE_CORE_ERROR_H

#include "grape.h"

// Record a message for grape_last_error() and return s, so callers write `return error_fail(...)`.
grape_status error_fail(grape_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_clear(void);

#endif
