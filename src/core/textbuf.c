// textbuf.c — see textbuf.h.
#include "core/textbuf.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void tb_free(textbuf *b) {
    free(b->p);
    *b = (textbuf){0};
}

void tb_reset(textbuf *b) {
    b->len = 0;
    b->failed = 0;
    if (b->p) b->p[0] = '\0';
}

// Make room for n more bytes plus a terminating NUL.
static int tb_reserve(textbuf *b, size_t n) {
    if (b->failed) return 0;
    if (b->len + n + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void tb_raw(textbuf *b, const char *s, size_t n) {
    if (!tb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tb_printf(textbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !tb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tb_json_string(textbuf *b, const char *s) {
    json_t *j = json_string(s); // NULL for invalid UTF-8
    char *e = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!e) {
        b->failed = 1;
        return;
    }
    tb_raw(b, e, strlen(e));
    free(e);
}

grape_status tb_status(const textbuf *b) {
    return b->failed ? error_fail(GRAPE_ERR_FORMAT, "cannot format text (out of memory or a string that is not UTF-8)")
                     : GRAPE_OK;
}
