// simd.h — the library's one vector layer: the few float operations the attention tiles, the rotations and the
// model's elementwise loops need, written once for AVX-512, AVX2+FMA and plain C. VW is the vector width in floats;
// every tile dimension that lives in lanes is a multiple of 16. The f1_ lane is one float, for plain loops the
// compiler vectorises itself (a call to libm's expf would keep them scalar).
#ifndef GRAPE_CORE_SIMD_H
#define GRAPE_CORE_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// Denormal floats flushed to zero (MXCSR's FTZ and DAZ bits) for the calling thread, the previous state returned
// for fpu_restore. On Intel cores an operation on a denormal takes a microcode assist of ~100+ cycles, and attention
// under a strong learned decay makes many: FoX's backward forms dS = P (dP - Δ) with P = exp(S - lse) down to
// 1.2e-38, and the products fall below it (on a Xeon this made FoX's attention backward 5.6x nope's). What is
// lost are values below 1.2e-38 in magnitude. The attention kernels set it around their parallel regions, each
// thread its own register, and put the caller's state back (test_attn: the MXCSR is unchanged after a call).
#if defined(__SSE2__)
#include <xmmintrin.h>
#define FPU_FTZ_DAZ 0x8040u
static inline unsigned fpu_flush_denormals(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | FPU_FTZ_DAZ);
    return old;
}
static inline void fpu_restore(unsigned old) { _mm_setcsr(old); }
#else
static inline unsigned fpu_flush_denormals(void) { return 0; }
static inline void fpu_restore(unsigned old) { (void)old; }
#endif

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

// ---- the f1 lane: the operations vf_exp needs, on one float, branch-free so a loop around them vectorises.
static inline float f1_set1(float a) { return a; }
static inline float f1_add(float a, float b) { return a + b; }
static inline float f1_mul(float a, float b) { return a * b; }
static inline float f1_fma(float a, float b, float c) { return a * b + c; }
static inline float f1_max(float a, float b) { return a > b ? a : b; } // NaN in b comes out, as with x86 max
static inline float f1_min(float a, float b) { return a < b ? a : b; }
static inline float f1_select_lt(float a, float b, float y, float x) { return a < b ? y : x; }
// Round to nearest even by adding and removing 1.5·2^23 (|a| < 2^22), which vectorises where rintf may not.
static inline float f1_round(float a) { return (a + 12582912.0f) - 12582912.0f; }
// y·2^n for integral n in [-126, 127], 2^n built in the exponent bits; a NaN n (from a NaN argument, whose y is
// NaN too) is sent to 0 first, since converting it to an integer is undefined behaviour.
static inline float f1_ldexp(float y, float n) {
    int32_t e = ((int32_t)(n == n ? n : 0.0f) + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return y * s;
}

// Arguments below this underflow: exp returns exactly 0 there (and for -inf, the causal mask).
#define VF_EXP_LO -87.33f

// exp(x), max relative error ~1.5e-7 (test_attn_simd, test_layers), written once for a lane L of type T (vf: one
// vector; f1: one float). Cody–Waite reduction x = n ln2 + r, |r| <= ln2/2, then the Cephes expf minimax
// polynomial exp(r) = 1 + r + r^2 p(r). The clamp's operand order lets a NaN in x propagate (x86 max/min).
#define SIMD_DEFINE_EXP(L, T)                                                                                    \
    static inline T L##_exp(T x) {                                                                               \
        const T lo = L##_set1(VF_EXP_LO);                                                                        \
        T xc = L##_min(L##_set1(88.37f), L##_max(lo, x));                                                        \
        T n = L##_round(L##_mul(xc, L##_set1(1.44269504088896341f)));                                             \
        T r = L##_fma(n, L##_set1(-0.693359375f), xc);                                                           \
        r = L##_fma(n, L##_set1(2.12194440e-4f), r);                                                             \
        T p = L##_set1(1.9875691500e-4f);                                                                        \
        p = L##_fma(p, r, L##_set1(1.3981999507e-3f));                                                           \
        p = L##_fma(p, r, L##_set1(8.3334519073e-3f));                                                           \
        p = L##_fma(p, r, L##_set1(4.1665795894e-2f));                                                           \
        p = L##_fma(p, r, L##_set1(1.6666665459e-1f));                                                           \
        p = L##_fma(p, r, L##_set1(5.0000001201e-1f));                                                           \
        T y = L##_add(L##_fma(L##_mul(r, r), p, r), L##_set1(1.0f));                                             \
        return L##_select_lt(x, lo, L##_set1(0.0f), L##_ldexp(y, n));                                            \
    }
SIMD_DEFINE_EXP(vf, vf)
SIMD_DEFINE_EXP(f1, float)

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
