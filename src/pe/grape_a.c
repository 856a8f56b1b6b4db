// grape_a.c — GRAPE-A gated slopes (GRAPE, arXiv 2512.07805 §4 eq. 4.6; official model/llama-mha-grape-a-*.py):
// λ = softplus(ŵ_h·x/√D) with ŵ = w/max(‖w‖, 1e-6), read from the QK-RMSNormed q (query gate, w = v) or k (key
// gate, w = u).
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/mathx.h"
#include "pe/bias_internal.h"

// Token-heads above which the gate loops are worth threading.
#define GATE_PAR_MIN 4096

static inline float dot_f(const float *a, const float *b, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// λ_i = softplus(ŵ_h·x_i/√D). gate: (B,T,H); x: (B,T,H,D); w_hat: (H,D)
void gate_forward(float *gate, const float *x, const float *w_hat, int B, int T, int H, int D) {
    size_t rows = (size_t)B * (size_t)T;
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for if (rows * (size_t)H > GATE_PAR_MIN)
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < (size_t)H; h++) {
            size_t i = r * (size_t)H + h;
            gate[i] = softplus_f(dot_f(w_hat + h * (size_t)D, x + i * (size_t)D, D) * scale);
        }
}

// dz = dλ·σ(z)/√D with σ(z) = 1 − e^{−λ} read off the stored gate (λ = softplus(z) ⇒ e^λ = 1 + e^z), so the
// backward needs no second dot product; dx += dz·ŵ; dŵ = Σ dz·x. Threads walk the tokens in memory order, each
// summing dŵ into its own slot of dw_slots, and the slots are added into slot 0 at the end.
// dx: (B,T,H,D) (NULL skips); dw_slots: (n_slots,H,D) double, overwritten; dgate, gate: (B,T,H); x: (B,T,H,D);
// w_hat: (H,D)
void gate_backward(float *dx, double *dw_slots, int n_slots, const float *dgate, const float *gate,
                   const float *x, const float *w_hat, int B, int T, int H, int D) {
    size_t rows = (size_t)B * (size_t)T, HD = (size_t)H * (size_t)D;
    float scale = 1.0f / sqrtf((float)D);
    int nt = rows * (size_t)H > GATE_PAR_MIN ? n_slots : 1;
    memset(dw_slots, 0, (size_t)nt * HD * sizeof(double));
#pragma omp parallel num_threads(nt)
    {
        double *slot = dw_slots + (size_t)omp_get_thread_num() * HD;
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++)
            for (size_t h = 0; h < (size_t)H; h++) {
                size_t i = r * (size_t)H + h;
                if (dgate[i] == 0.0f) continue;
                const float *xi = x + i * (size_t)D, *w = w_hat + h * (size_t)D;
                float dz = dgate[i] * -expm1f(-gate[i]) * scale;
                if (dx) {
                    float *dxi = dx + i * (size_t)D;
#pragma omp simd
                    for (int d = 0; d < D; d++) dxi[d] += dz * w[d];
                }
                double *dw = slot + h * (size_t)D;
#pragma omp simd
                for (int d = 0; d < D; d++) dw[d] += (double)dz * xi[d];
            }
    }
    for (int t = 1; t < nt; t++)
        for (size_t e = 0; e < HD; e++) dw_slots[e] += dw_slots[(size_t)t * HD + e];
}

// ŵ = w / n, n = max(‖w‖, eps). w_hat, w: (H,D); w_norm: (H)
void gate_normalise(float *w_hat, float *w_norm, const float *w, int H, int D) {
    for (int h = 0; h < H; h++) {
        const float *wh = w + (size_t)h * (size_t)D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)wh[d] * wh[d];
        double n = fmax(sqrt(ss), GRAPE_A_NORM_EPS);
        w_norm[h] = (float)n;
        for (int d = 0; d < D; d++) w_hat[(size_t)h * (size_t)D + d] = (float)(wh[d] / n);
    }
}

// dw += (dŵ − ŵ(ŵ·dŵ))/‖w‖ (the projection off ŵ); below the floor the map is w/eps and dw += dŵ/eps.
// dw: (H,D); dw_hat: (H,D); w_hat: (H,D); w_norm: (H)
void gate_norm_backward(float *dw, const double *dw_hat, const float *w_hat, const float *w_norm, int H, int D) {
    for (int h = 0; h < H; h++) {
        const float *wh = w_hat + (size_t)h * (size_t)D;
        const double *g = dw_hat + (size_t)h * (size_t)D;
        int clamped = w_norm[h] <= (float)GRAPE_A_NORM_EPS;
        double proj = 0;
        for (int d = 0; d < D; d++) proj += (double)wh[d] * g[d];
        if (clamped) proj = 0;
        for (int d = 0; d < D; d++) dw[(size_t)h * (size_t)D + d] += (float)((g[d] - wh[d] * proj) / w_norm[h]);
    }
}

// --- init (official): ρ = softplus⁻¹(1) = ln(e−1), so the effective slope starts at m_h; u, v ~ N(0, 1/D).

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_normal(float *x, size_t n, double std, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&s) >> 11) * 0x1.0p-53, v = (double)(splitmix64(&s) >> 11) * 0x1.0p-53;
        x[i] = (float)(std * sqrt(-2.0 * log1p(-u)) * cos(2.0 * M_PI * v));
    }
}

grape_status gate_init(const bias_state *s, float *params, uint64_t seed) {
    size_t HD = (size_t)s->H * (size_t)s->D;
    for (int h = 0; h < s->H; h++) params[h] = (float)log(expm1(1.0));
    if (s->has_u) fill_normal(params + s->off_u, HD, 1.0 / sqrt((double)s->D), seed ^ 0x75ull);
    if (s->has_v) fill_normal(params + s->off_v, HD, 1.0 / sqrt((double)s->D), seed ^ 0x76ull);
    return GRAPE_OK;
}
