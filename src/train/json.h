// json.h — the little JSON grape writes and reads: a growable output buffer with string escaping (safetensors
// headers, metrics.jsonl) and a cursor reader for untrusted input (safetensors headers) that checks every byte;
// its callers know the shape they expect, so it has no generic tree and no recursion.
#ifndef GRAPE_TRAIN_JSON_H
#define GRAPE_TRAIN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

// ---------------------------------------------------------------------------------------------------------
// Writer. Errors are sticky: after a failed allocation every call is a no-op and jb_status reports it.

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} json_buf;

void jb_free(json_buf *b);
void jb_reset(json_buf *b); // keep the allocation, drop the contents
void jb_raw(json_buf *b, const char *s, size_t n);
void jb_printf(json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_string(json_buf *b, const char *s); // quoted and escaped
grape_status jb_status(const json_buf *b);

// ---------------------------------------------------------------------------------------------------------
// Reader. Every function skips leading whitespace and returns GRAPE_ERR_FORMAT with the byte offset on error.

typedef struct {
    const char *begin, *p, *end;
} json_cur;

// Consume c if it is the next character; returns 1 if it was.
int json_eat(json_cur *c, char ch);
grape_status json_expect(json_cur *c, char ch);
// A string decoded (escapes, \uXXXX as UTF-8) into dst of cap bytes, NUL-terminated.
grape_status json_string(json_cur *c, char *dst, size_t cap);
// A non-negative integer without sign, fraction or exponent that fits in uint64_t.
grape_status json_u64(json_cur *c, uint64_t *v);
// Only whitespace remains.
grape_status json_end(json_cur *c);

#endif
