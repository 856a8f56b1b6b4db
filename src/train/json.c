// json.c — see json.h.
#include "train/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

// ---------------------------------------------------------------------------------------------------------
// Writer

void jb_free(json_buf *b) {
    free(b->p);
    *b = (json_buf){0};
}

void jb_reset(json_buf *b) {
    b->len = 0;
    b->failed = 0;
}

// Make room for n more bytes plus a terminating NUL.
static int jb_reserve(json_buf *b, size_t n) {
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

void jb_raw(json_buf *b, const char *s, size_t n) {
    if (!jb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jb_printf(json_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !jb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jb_string(json_buf *b, const char *s) {
    jb_raw(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            jb_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            jb_printf(b, "\\u%04x", ch);
        else
            jb_raw(b, s, 1);
    }
    jb_raw(b, "\"", 1);
}

grape_status jb_status(const json_buf *b) {
    return b->failed ? grape_fail(GRAPE_ERR_NOMEM, "out of memory formatting JSON") : GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Reader

static void skip_ws(json_cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static grape_status bad(const json_cur *c, const char *what) {
    return grape_fail(GRAPE_ERR_FORMAT, "malformed JSON at byte %td: %s", c->p - c->begin, what);
}

int json_eat(json_cur *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

grape_status json_expect(json_cur *c, char ch) {
    if (json_eat(c, ch)) return GRAPE_OK;
    char msg[24];
    snprintf(msg, sizeof msg, "expected '%c'", ch);
    return bad(c, msg);
}

static int hex4(const char *p, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) return 0;
        *v = *v * 16 + (unsigned)d;
    }
    return 1;
}

// Encode code point u as UTF-8 into dst (room checked by the caller: at most 4 bytes).
static size_t utf8(char *dst, unsigned u) {
    if (u < 0x80) return dst[0] = (char)u, 1;
    if (u < 0x800) return dst[0] = (char)(0xc0 | u >> 6), dst[1] = (char)(0x80 | (u & 0x3f)), 2;
    if (u < 0x10000)
        return dst[0] = (char)(0xe0 | u >> 12), dst[1] = (char)(0x80 | (u >> 6 & 0x3f)),
               dst[2] = (char)(0x80 | (u & 0x3f)), 3;
    dst[0] = (char)(0xf0 | u >> 18), dst[1] = (char)(0x80 | (u >> 12 & 0x3f));
    dst[2] = (char)(0x80 | (u >> 6 & 0x3f)), dst[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

// \uXXXX, with a following low surrogate when XXXX is a high one. c->p points after "\u".
static grape_status unicode_escape(json_cur *c, unsigned *u) {
    if (c->end - c->p < 4 || !hex4(c->p, u)) return bad(c, "bad \\u escape");
    c->p += 4;
    if (*u < 0xd800 || *u > 0xdfff) return GRAPE_OK;
    unsigned lo;
    if (*u > 0xdbff || c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || !hex4(c->p + 2, &lo) || lo < 0xdc00 ||
        lo > 0xdfff)
        return bad(c, "unpaired surrogate");
    c->p += 6;
    *u = 0x10000 + ((*u - 0xd800) << 10) + (lo - 0xdc00);
    return GRAPE_OK;
}

static grape_status escape(json_cur *c, char *dst, size_t *n) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (c->p >= c->end) return bad(c, "unterminated escape");
    const char *k = *c->p ? strchr(from, *c->p) : NULL;
    c->p++;
    if (k) return dst[0] = to[k - from], *n = 1, GRAPE_OK;
    if (c->p[-1] != 'u') return bad(c, "unknown escape");
    unsigned u = 0;
    grape_status s = unicode_escape(c, &u);
    if (!s) *n = utf8(dst, u);
    return s;
}

grape_status json_string(json_cur *c, char *dst, size_t cap) {
    if (!json_eat(c, '"')) return bad(c, "expected a string");
    size_t len = 0;
    while (c->p < c->end && *c->p != '"') {
        char tmp[4];
        size_t n = 1;
        if ((unsigned char)*c->p < 0x20) return bad(c, "control character in string");
        if (*c->p == '\\') {
            c->p++;
            grape_status s = escape(c, tmp, &n);
            if (s) return s;
        } else {
            tmp[0] = *c->p++;
        }
        if (len + n >= cap) return bad(c, "string too long");
        memcpy(dst + len, tmp, n);
        len += n;
    }
    if (c->p >= c->end) return bad(c, "unterminated string");
    c->p++;
    dst[len] = '\0';
    return GRAPE_OK;
}

grape_status json_u64(json_cur *c, uint64_t *v) {
    skip_ws(c);
    const char *start = c->p;
    *v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, (uint64_t)(*c->p - '0'), v))
            return bad(c, "integer overflows 64 bits");
        c->p++;
    }
    if (c->p == start) return bad(c, "expected a non-negative integer");
    if (c->p - start > 1 && *start == '0') return bad(c, "leading zero");
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return bad(c, "expected an integer");
    return GRAPE_OK;
}

grape_status json_end(json_cur *c) {
    skip_ws(c);
    return c->p == c->end ? GRAPE_OK : bad(c, "trailing characters");
}
