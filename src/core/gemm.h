// gemm.h — the one fp32 matrix multiply every linear layer and benchmark uses (row-major, oneDNN's dnnl_sgemm).
//
// Why oneDNN: it picks its AVX-512 JIT kernel from CPUID feature bits, so it runs at full speed on AMD CPUs too
// with no environment variable, and it threads through the same libgomp pool as grape's OpenMP kernels
// (no second spinning thread pool). Measurements and the alternatives: docs/BENCHMARKS.md, "GEMM".
#ifndef GRAPE_CORE_GEMM_H
#define GRAPE_CORE_GEMM_H

#include <stdint.h>

#include "grape.h"

// C = alpha op(A) op(B) + beta C, row-major. c: (M,N) with row stride ldc; op(a): (M,K); op(b): (K,N).
// a is stored (M,K) with stride lda (or (K,M) when trans_a); b is (K,N) with stride ldb (or (N,K) when trans_b).
grape_status gemm_ld(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb, int64_t M,
                     int64_t N, int64_t K, int trans_a, int trans_b, float alpha, float beta);
// Dense operands (strides implied by the shapes), alpha = 1.
grape_status gemm(float *c, const float *a, const float *b, int64_t M, int64_t N, int64_t K, int trans_a,
                  int trans_b, float beta);

#endif
