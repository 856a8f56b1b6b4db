// simd.h — the few float vector operations the attention tiles need, written once for AVX-512, AVX2+FMA and
// plain C. VW is the vector width in floats; every tile dimension that lives in lanes is a multiple of 16.
#ifndef GRAPE_ATTN_SIMD_H
#define GRAPE_ATTN_SIMD_H

#include <math.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define VW 16
typedef __m512 vf;
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf x) { _mm512_storeu_ps(p, x); }
static inline vf vf_set1(float a) { return _mm512_set1_ps(a); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); } // a*b + c
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline float vf_hsum(vf a) { return _mm512_reduce_add_ps(a); }
// where a < b take y, else x
static inline vf vf_select_lt(vf a, vf b, vf y, vf x) {
    return _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y);
}
static inline vf vf_round(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vf vf_ldexp(vf y, vf n) { return _mm512_scalef_ps(y, n); } // y * 2^n, n integral
static inline vf vf_rcp_approx(vf a) { return _mm512_rcp14_ps(a); }       // relative error < 2^-14
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VW 8
typedef __m256 vf;
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf x) { _mm256_storeu_ps(p, x); }
static inline vf vf_set1(float a) { return _mm256_set1_ps(a); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline float vf_hsum(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline vf vf_select_lt(vf a, vf b, vf y, vf x) { return _mm256_blendv_ps(x, y, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
static inline vf vf_round(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vf vf_rcp_approx(vf a) { return _mm256_rcp_ps(a); } // relative error < 1.5 * 2^-12
static inline vf vf_ldexp(vf y, vf n) { // n in [-126, 127]: build 2^n in the exponent field
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}
#else
#define VW 1
typedef float vf;
static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf x) { *p = x; }
static inline vf vf_set1(float a) { return a; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_fma(vf a, vf b, vf c) { return a * b + c; }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_min(vf a, vf b) { return a < b ? a : b; }
static inline vf vf_abs(vf a) { return fabsf(a); }
static inline float vf_hsum(vf a) { return a; }
static inline vf vf_select_lt(vf a, vf b, vf y, vf x) { return a < b ? y : x; }
static inline vf vf_round(vf a) { return rintf(a); }
static inline vf vf_ldexp(vf y, vf n) { return ldexpf(y, (int)n); }
static inline vf vf_rcp_approx(vf a) { return 1.0f / a; }
#endif

// Pin a vector in a register: an empty asm the compiler cannot see through, so it keeps one load instead of
// folding the same 64-byte memory operand into every FMA that uses it (GCC does, and Zen4 has one 512-bit load
// port, so the folded form runs at half the FMA rate).
#if VW > 1
#define VF_PIN(x) __asm__("" : "+v"(x))
#else
#define VF_PIN(x) ((void)0)
#endif

// Arguments below this underflow: exp returns exactly 0 there (and for -inf, the causal mask).
#define VF_EXP_LO -87.33f

// exp(x) for float vectors, max relative error ~1.5e-7 (test_attn_simd). Cody–Waite reduction x = n ln2 + r,
// |r| <= ln2/2, then the Cephes expf minimax polynomial exp(r) = 1 + r + r^2 p(r).
static inline vf vf_exp(vf x) {
    const vf lo = vf_set1(VF_EXP_LO);
    vf xc = vf_min(vf_set1(88.37f), vf_max(lo, x)); // operand order lets a NaN in x propagate (x86 max/min)
    vf n = vf_round(vf_mul(xc, vf_set1(1.44269504088896341f)));
    vf r = vf_fma(n, vf_set1(-0.693359375f), xc);
    r = vf_fma(n, vf_set1(2.12194440e-4f), r);
    vf p = vf_set1(1.9875691500e-4f);
    p = vf_fma(p, r, vf_set1(1.3981999507e-3f));
    p = vf_fma(p, r, vf_set1(8.3334519073e-3f));
    p = vf_fma(p, r, vf_set1(4.1665795894e-2f));
    p = vf_fma(p, r, vf_set1(1.6666665459e-1f));
    p = vf_fma(p, r, vf_set1(5.0000001201e-1f));
    vf y = vf_add(vf_fma(vf_mul(r, r), p, r), vf_set1(1.0f));
    return vf_select_lt(x, lo, vf_set1(0.0f), vf_ldexp(y, n));
}

// 1/a by the hardware estimate and one Newton step r(2 - a r): squares the estimate's error (<= 4e-9 on
// AVX-512, 1.3e-7 on AVX2), several times cheaper than a vector divide.
static inline vf vf_rcp(vf a) {
    vf r = vf_rcp_approx(a);
    return vf_mul(r, vf_sub(vf_set1(2.0f), vf_mul(a, r)));
}

// log sigmoid(x) = min(x,0) - log1p(e), e = exp(-|x|) in (0,1]. log1p(e) = 2 atanh(z), z = e/(2+e) <= 1/3,
// by its odd series to z^15 (truncation < 2e-9 relative): no cancellation for tiny e, no integer tricks.
static inline vf vf_log_sigmoid(vf x) {
    vf e = vf_exp(vf_sub(vf_set1(0.0f), vf_abs(x)));
    vf z = vf_mul(e, vf_rcp(vf_add(e, vf_set1(2.0f))));
    vf z2 = vf_mul(z, z);
    vf p = vf_set1(2.0f / 15.0f);
    p = vf_fma(p, z2, vf_set1(2.0f / 13.0f));
    p = vf_fma(p, z2, vf_set1(2.0f / 11.0f));
    p = vf_fma(p, z2, vf_set1(2.0f / 9.0f));
    p = vf_fma(p, z2, vf_set1(2.0f / 7.0f));
    p = vf_fma(p, z2, vf_set1(2.0f / 5.0f));
    p = vf_fma(p, z2, vf_set1(2.0f / 3.0f));
    p = vf_fma(p, z2, vf_set1(2.0f));
    return vf_sub(vf_min(x, vf_set1(0.0f)), vf_mul(p, z));
}

#endif
