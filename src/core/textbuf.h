// textbuf.h — a growable text buffer for the files grape writes whole (results tables, CSV, gnuplot scripts,
// one-line JSON records): printf-style appends, errors sticky (after a failed allocation every call is a no-op and
// tb_status reports it), then one atomic write by the caller.
#ifndef GRAPE_CORE_TEXTBUF_H
#define GRAPE_CORE_TEXTBUF_H

#include <stddef.h>

#include "grape.h"

typedef struct {
    char *p; // NUL-terminated contents (NULL while empty)
    size_t len, cap;
    int failed;
} textbuf;

void tb_free(textbuf *b);
void tb_reset(textbuf *b); // keep the allocation, drop the contents
void tb_raw(textbuf *b, const char *s, size_t n);
void tb_printf(textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// s as a quoted, escaped JSON string (escaped by jansson, the JSON library of the checkpoints).
void tb_json_string(textbuf *b, const char *s);
grape_status tb_status(const textbuf *b);

#endif
