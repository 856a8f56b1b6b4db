// test_attn.c — the fused attention (forward and backward) against its double-precision reference for every
// bias kind, across tile-boundary sizes (T not a multiple of 64, odd T, T = 2048), H not a power of two and
// D in {32, 64, 128}, and BCA windows. Tolerance: 1e-4 normwise relative (max |fast - ref| / max |ref|) on every output.
#include <omp.h>

#include "core/simd.h"
#include "test_attn_fixture.h"

#define TOL 1e-4

static void run(grape_bias_kind kind, int B, int T, int H, int D, int window, uint64_t seed) {
    fx_problem p;
    fx_make(&p, kind, B, T, H, D, 1.0, seed);
    char tag[96];
    snprintf(tag, sizeof tag, "%s B%d T%d H%d D%d W%d", fx_kind_name(kind), B, T, H, D, window);
    fx_check_vs_ref(tag, &p, window, TOL);
    fx_free(&p);
}

// An argument error must come back as a status with a message (nothing written, no crash).
static void expect_error(const char *what, grape_status st) {
    char name[160];
    snprintf(name, sizeof name, "rejects %s (%s)", what, grape_last_error());
    t_true(name, st == GRAPE_ERR_ARG || st == GRAPE_ERR_NOMEM);
}

static void bad_arguments(void) {
    fx_problem p;
    fx_make(&p, GRAPE_BIAS_GRAPE_AP, 1, 8, 2, 16, 1.0, 3);
    float out[256], lse[16], dq[256] = {0}, dk[256] = {0}, dv[256] = {0};
    grape_attn_opts opts = {0.0f, 0}, odd = {0.0f, 5};
    grape_bias_factors no_probe = p.f, wrong_T = p.f;
    no_probe.ch[BF_PROBE_K] = NULL;
    wrong_T.T = 9;
    expect_error("B = 0", grape_attn_forward(out, lse, p.q, p.k, p.v, NULL, &opts, 0, 8, 2, 16));
    expect_error("D above the limit", grape_attn_forward(out, lse, p.q, p.k, p.v, NULL, &opts, 1, 8, 2, ATTN_MAX_D + 2));
    expect_error("B*T*H*D overflow", grape_attn_forward(out, lse, p.q, p.k, p.v, NULL, &opts, 1 << 30, 1 << 20, 1 << 12, 512));
    expect_error("NULL q", grape_attn_forward(out, lse, NULL, p.k, p.v, NULL, &opts, 1, 8, 2, 16));
    expect_error("odd BCA window", grape_attn_forward(out, lse, p.q, p.k, p.v, NULL, &odd, 1, 8, 2, 16));
    expect_error("factors of another shape", grape_attn_forward(out, lse, p.q, p.k, p.v, &wrong_T, &opts, 1, 8, 2, 16));
    expect_error("grape-ap without key probes", grape_attn_forward(out, lse, p.q, p.k, p.v, &no_probe, &opts, 1, 8, 2, 16));
    expect_error("backward NULL dout",
                 grape_attn_backward(dq, dk, dv, NULL, NULL, out, lse, p.q, p.k, p.v, NULL, &opts, 1, 8, 2, 16));
    fx_free(&p);
}

#ifdef FPU_FTZ_DAZ
static unsigned team_ftz_bits(void) {
    unsigned bits = 0;
#pragma omp parallel num_threads(2) reduction(| : bits)
    bits |= _mm_getcsr() & FPU_FTZ_DAZ;
    return bits;
}

// core/simd.h: the kernels flush denormals to zero and give every thread its MXCSR back. FoX with q = 0, cum =
// (0, -87): P(1,0) = e^-87 ~ 1.6e-38 (normal) and out(1) = P(1,0) * 0.5 ~ 8e-39, a denormal, which comes out 0.
static void denormals(void) {
    fx_problem p;
    fx_make(&p, GRAPE_BIAS_FOX, 1, 2, 1, 16, 1.0, 61);
    memset(p.q, 0, p.n * sizeof *p.q);
    p.cum[0] = 0.0, p.cum[1] = -87.0;
    for (int d = 0; d < 16; d++) p.v[d] = 0.5f, p.v[16 + d] = 0.0f;
    float out[32], lse[2], dq[32] = {0}, dk[32] = {0}, dv[32] = {0};
    grape_attn_opts opts = {0.0f, 0};
    unsigned before = _mm_getcsr();
    t_true("the team starts without FTZ/DAZ", team_ftz_bits() == 0);
    t_true("fox forward (denormal case) runs", grape_attn_forward(out, lse, p.q, p.k, p.v, &p.f, &opts, 1, 2, 1, 16) == GRAPE_OK);
    double exact = exp(-87.0) * 0.5;
    int flushed = 1;
    for (int d = 0; d < 16; d++) flushed &= out[16 + d] == 0.0f;
    t_true("a denormal output (exact 8e-39) is flushed to 0", exact > 0 && exact < 1.2e-38 && flushed);
    t_true("fox backward (denormal case) runs", grape_attn_backward(dq, dk, dv, NULL, p.dout, out, lse, p.q, p.k, p.v,
                                                                    &p.f, &opts, 1, 2, 1, 16) == GRAPE_OK);
    t_true("the caller's MXCSR is unchanged after forward and backward", _mm_getcsr() == before);
    t_true("no thread of the team keeps FTZ/DAZ", team_ftz_bits() == 0);
    _mm_setcsr(before | FPU_FTZ_DAZ);
    grape_attn_forward(out, lse, p.q, p.k, p.v, &p.f, &opts, 1, 2, 1, 16);
    t_true("a caller's own FTZ/DAZ is kept, not cleared", (_mm_getcsr() & FPU_FTZ_DAZ) == FPU_FTZ_DAZ);
    _mm_setcsr(before);
    fx_free(&p);
}
#endif

int main(void) {
    bad_arguments();
#ifdef FPU_FTZ_DAZ
    denormals();
#endif
    for (int kind = 0; kind < GRAPE_BIAS_COUNT; kind++) {
        run((grape_bias_kind)kind, 2, 1, 3, 32, 0, 10 + kind);    // one token
        run((grape_bias_kind)kind, 1, 77, 3, 64, 0, 20 + kind);   // odd, partial tile
        run((grape_bias_kind)kind, 1, 200, 3, 128, 0, 30 + kind); // 4 tiles, the last partial, H = 3
    }
    run(GRAPE_BIAS_GRAPE_AP, 1, 2048, 1, 32, 0, 42);
    run(GRAPE_BIAS_FOX, 1, 2048, 1, 32, 0, 43);
    run(GRAPE_BIAS_ALIBI, 1, 130, 5, 24, 0, 44); // D not a multiple of the vector width
    // BCA (forward and backward): blocks inside a tile, blocks not dividing the tile, long windows
    run(GRAPE_BIAS_GRAPE_AP, 1, 200, 2, 64, 6, 51);
    run(GRAPE_BIAS_FOX, 1, 300, 2, 64, 100, 52);
    run(GRAPE_BIAS_GRAPE_A_QK, 2, 257, 3, 32, 128, 53);
    run(GRAPE_BIAS_NONE, 1, 300, 1, 64, 2, 54);
    return t_finish();
}
