// mem.c — aligned zeroed allocation and the bump arena.
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void *mem_alloc(size_t n) {
    if (n == 0) n = GRAPE_ALIGN;
    if (n > SIZE_MAX - GRAPE_ALIGN) {
        error_fail(GRAPE_ERR_NOMEM, "allocation of %zu bytes overflows", n);
        return NULL;
    }
    void *p = aligned_alloc(GRAPE_ALIGN, align_up(n));
    if (!p) {
        error_fail(GRAPE_ERR_NOMEM, "cannot allocate %zu bytes", n);
        return NULL;
    }
    memset(p, 0, align_up(n));
    return p;
}

void mem_free(void *p) { free(p); }

void *arena_take(grape_arena *a, size_t bytes) {
    void *p = a->base ? a->base + a->used : NULL;
    a->used += align_up(bytes);
    return p;
}
