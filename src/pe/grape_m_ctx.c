// grape_m_ctx.c — contextual phase of GRAPE-M ctx (github.com/model-architectures/GRAPE model/llama-mha-grape-m-ctx.py;
// GRAPE, arXiv 2512.07805 §3.1, phase-modulated):
//   ω_t = sigmoid(logit_t / 16),  Φ_t = Σ_{τ<t} ω_τ (exclusive, running sum in double),
// per batch row, or per (batch, head) with per_head. The rotation angle is Φ_t·θ_i (rot_table.c).
//   Backward: dω_τ = Σ_{t>τ} dΦ_t (reverse exclusive cumsum), dlogit_τ += dω_τ·ω_τ(1 − ω_τ)/16.
#include "core/error.h"
#include "core/mathx.h"
#include "pe/pe_internal.h"
#include "pe/rot_internal.h"

#define CTX_OMEGA_SCALE 16.0 // official ctx_omega_scale

static grape_status check_phase(const grape_pe *pe, const void *a, const void *b, int B, int T) {
    if (!pe || !a || !b) return error_fail(GRAPE_ERR_ARG, "grape_phase: NULL argument");
    if (!pe->rot->kd->phase) return error_fail(GRAPE_ERR_ARG, "grape_phase: not grape-m-ctx");
    if (B < 0 || T < 0) return error_fail(GRAPE_ERR_ARG, "grape_phase: negative shape B=%d T=%d", B, T);
    return GRAPE_OK;
}

// phase, phase_logit: (B,T,Hp) with Hp = H (per_head) or 1.
grape_status grape_phase_forward(double *phase, const float *phase_logit, const grape_pe *pe, int B, int T) {
    grape_status st = check_phase(pe, phase, phase_logit, B, T);
    if (st) return st;
    size_t hp = (size_t)pe->rot->phase_heads;
#pragma omp parallel for schedule(static) if ((int64_t)B * T >= ROT_PAR_MIN_TOKENS)
    for (int64_t bh = 0; bh < (int64_t)B * (int64_t)hp; bh++) {
        size_t b = (size_t)bh / hp, h = (size_t)bh % hp;
        double sum = 0;
        for (size_t t = 0; t < (size_t)T; t++) {
            size_t i = (b * (size_t)T + t) * hp + h;
            phase[i] = sum;
            sum += sigmoid_d(phase_logit[i] / CTX_OMEGA_SCALE);
        }
    }
    return GRAPE_OK;
}

grape_status grape_phase_backward(float *dphase_logit, const double *dphase, const float *phase_logit,
                                  const grape_pe *pe, int B, int T) {
    grape_status st = check_phase(pe, dphase_logit, dphase, B, T);
    if (st) return st;
    if (!phase_logit) return error_fail(GRAPE_ERR_ARG, "grape_phase_backward: phase_logit is NULL");
    size_t hp = (size_t)pe->rot->phase_heads;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < (int64_t)B * (int64_t)hp; bh++) {
        size_t b = (size_t)bh / hp, h = (size_t)bh % hp;
        double later = 0; // Σ_{t>τ} dΦ_t
        for (size_t t = (size_t)T; t-- > 0;) {
            size_t i = (b * (size_t)T + t) * hp + h;
            double w = sigmoid_d(phase_logit[i] / CTX_OMEGA_SCALE);
            dphase_logit[i] += (float)(later * w * (1.0 - w) / CTX_OMEGA_SCALE);
            later += dphase[i];
        }
    }
    return GRAPE_OK;
}
