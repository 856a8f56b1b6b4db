// dmat.h — dense square double matrices for the reference paths and their tests (not for hot loops).
#ifndef GRAPE_CORE_DMAT_H
#define GRAPE_CORE_DMAT_H

#include <stddef.h>
#include <string.h>

// C = A B, all (n,n) row-major; C must not alias A or B. i-k-j order keeps the inner loop contiguous.
static inline void dmat_mul(double *C, const double *A, const double *B, size_t n) {
    memset(C, 0, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n; k++)
            for (size_t j = 0; j < n; j++) C[i * n + j] += A[i * n + k] * B[k * n + j];
}

#endif
