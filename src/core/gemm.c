// gemm.c — see gemm.h. C = alpha op(A) op(B) + beta C through dnnl_sgemm (row-major, like cblas RowMajor).
#include "core/gemm.h"

#include <dnnl.h>

#include "core/error.h"
#include "core/prof.h"

grape_status gemm_ld(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb, int64_t M,
                     int64_t N, int64_t K, int trans_a, int trans_b, float alpha, float beta) {
    if (M < 0 || N < 0 || K < 0) return error_fail(GRAPE_ERR_ARG, "gemm: negative size %ldx%ldx%ld", (long)M,
                                                   (long)N, (long)K);
    if (M == 0 || N == 0) return GRAPE_OK;
    dnnl_status_t s;
    PROF(PROF_GEMM, s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, a, lda, b, ldb, beta, c,
                                   ldc));
    if (s != dnnl_success)
        return error_fail(GRAPE_ERR_ARG, "gemm: dnnl_sgemm failed (status %d) for %ldx%ldx%ld", (int)s, (long)M,
                          (long)N, (long)K);
    return GRAPE_OK;
}

grape_status gemm(float *c, const float *a, const float *b, int64_t M, int64_t N, int64_t K, int trans_a,
                  int trans_b, float beta) {
    return gemm_ld(c, N, a, trans_a ? M : K, b, trans_b ? K : N, M, N, K, trans_a, trans_b, 1.0f, beta);
}
