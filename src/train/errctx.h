// errctx.h — prefix the current error message with context ("checkpoint 'x': <cause>"). The message buffer
// behind grape_last_error() cannot be a vsnprintf argument into itself, so the cause is copied first.
#ifndef GRAPE_TRAIN_ERRCTX_H
#define GRAPE_TRAIN_ERRCTX_H

#include <stdio.h>

#include "core/error.h"

static inline grape_status fail_in(grape_status s, const char *context) {
    char cause[512];
    snprintf(cause, sizeof cause, "%s", grape_last_error());
    return error_fail(s, "%s: %s", context, cause);
}

#endif
