// mem.h — checked allocation and size arithmetic. All sizes are size_t; every product is overflow-checked.
#ifndef GRAPE_CORE_MEM_H
#define GRAPE_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

#define GRAPE_ALIGN 64

// *out = a * b, returning 0 on overflow.
static inline int size_mul(size_t *out, size_t a, size_t b) { return !__builtin_mul_overflow(a, b, out); }
static inline int size_add(size_t *out, size_t a, size_t b) { return !__builtin_add_overflow(a, b, out); }
// Round n up to a multiple of GRAPE_ALIGN (n well below SIZE_MAX).
static inline size_t align_up(size_t n) { return (n + GRAPE_ALIGN - 1) & ~(size_t)(GRAPE_ALIGN - 1); }

// 64-byte aligned, zeroed allocation; NULL (with grape_last_error set) on failure or n == 0 overflow.
void *mem_alloc(size_t n);
void mem_free(void *p);

// A bump allocator over one block, sized up front: plan with arena_reserve on a NULL-base arena,
// allocate once, then hand out the same sequence of slices. No allocation happens in hot loops.
typedef struct {
    char *base;
    size_t size;
    size_t used;
} grape_arena;

// Returns base + used (or NULL when planning) and advances by align_up(bytes).
void *arena_take(grape_arena *a, size_t bytes);

#endif
