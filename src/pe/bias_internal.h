// bias_internal.h — state of the additive action and the per-kind kernels behind grape_bias_*.
// Shapes: B batch, T time, H heads, D head dim, P probe dim. Factor layouts are those of grape.h.
#ifndef GRAPE_PE_BIAS_INTERNAL_H
#define GRAPE_PE_BIAS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pe/bias.h"
#include "pe/bias_kinds.h"

// GRAPE-A gate normalisation floor: û = u / max(‖u‖, GRAPE_A_NORM_EPS) (official code).
#define GRAPE_A_NORM_EPS 1e-6
// GRAPE-AP key-probe RMSNorm epsilon: finfo(bf16).eps = 2^-7, torch's default for F.rms_norm on bf16.
#define GRAPE_AP_RMS_EPS 0.0078125
// Largest GRAPE-AP probe dim (the backward keeps two probe rows on the stack).
#define GRAPE_AP_MAX_P 256

struct bias_state {
    grape_bias_kind kind;
    const bias_kind *kd;  // its row of the kind table
    int H, D, P;
    int ap_form; // GRAPE_AP_OFFICIAL | GRAPE_AP_PAPER | GRAPE_AP_RELATIVE
    int has_u, has_v;     // grape-a: key gate u, query gate v
    size_t off_u, off_v;  // offsets of u, v in the bias's parameter slice (rho is at 0)
    size_t n_params;
    void *tables;         // the one allocation every table below points into
    float *m;             // (H) fixed ALiBi slopes
    float *slope;         // (H) effective slope: m, or softplus(rho)*m for grape-a
    float *dslope_drho;   // (H) m*sigmoid(rho)
    float *u_hat, *v_hat; // (H,D) L2-normalised gate vectors
    float *u_norm, *v_norm; // (H) max(‖u‖, eps)
    int n_slots;          // OpenMP threads the backward may use (omp_get_max_threads() at create)
    double *dw_hat;       // (n_slots,H,D) scratch: per-thread dû (or dv̂) sums of the backward; the total in slot 0
};

// --- bias.c: the block oracle, the closed forms of bias_kinds.h over a block in double (resolution.c and, through
// grape_testing.h, the tests). Query t and key j are indices into T of batch b, head h.
// bias: (Tq,Tk) for queries [t0, t0+Tq) and keys [j0, j0+Tk); -INFINITY where key > query.
void bias_block(float *bias, const grape_bias_factors *f, int b, int h, int t0, int Tq, int j0, int Tk);
// The values pair (t, j) reads from the factors (those the kind lacks stay 0).
bias_pair bias_block_pair(const grape_bias_factors *f, int b, int h, int t, int j);
// The path form's edge score S(t,l) = <probe_q(t), probe_k(l)> / P (official model/llama-mha-grape-ap-v1.py).
double bias_block_score(const grape_bias_factors *f, int b, int h, int t, int l);
// Index of token (b, t), head h into the factors' (B,T,H) arrays.
static inline size_t bias_tok(const grape_bias_factors *f, int b, int t, int h) {
    return ((size_t)b * (size_t)f->T + (size_t)t) * (size_t)f->H + (size_t)h;
}

// --- alibi.c
// m_h of the standard recipe for any head count (power-of-two slopes, then interleaved extras).
double alibi_slope(int h, int H);

// --- fox.c
// cum: (B,T,H) double; gate_logit: (B,T,H).
void fox_cum_forward(double *cum, const float *gate_logit, int B, int T, int H);
// dgate_logit: (B,T,H) +=; dcum: (B,T,H).
void fox_cum_backward(float *dgate_logit, const double *dcum, const float *gate_logit, int B, int T, int H);

// --- grape_a.c: the GRAPE-A gates (gate_*)
// gate: (B,T,H); x: (B,T,H,D); w_hat: (H,D).
void gate_forward(float *gate, const float *x, const float *w_hat, int B, int T, int H, int D);
// dx: (B,T,H,D) += (NULL skips); dw_slots: (n_slots,H,D), slot 0 = dŵ on return; dgate, gate: (B,T,H) (gate: the
// forward's λ).
void gate_backward(float *dx, double *dw_slots, int n_slots, const float *dgate, const float *gate,
                   const float *x, const float *w_hat, int B, int T, int H, int D);
// dw: (H,D) += through w_hat = w / max(‖w‖, eps).
void gate_norm_backward(float *dw, const double *dw_hat, const float *w_hat, const float *w_norm, int H, int D);
void gate_normalise(float *w_hat, float *w_norm, const float *w, int H, int D);
grape_status gate_init(const bias_state *s, float *params, uint64_t seed);

// --- grape_ap.c
// probe_q, probe_k: (B,T,H,P); probe: (B,T,H,P) raw.
void ap_probes_forward(float *probe_q, float *probe_k, const float *probe, int64_t pos0, int form, int B, int T,
                       int H, int P);
// dprobe: (B,T,H,P) +=; dprobe_q, dprobe_k: (B,T,H,P).
void ap_probes_backward(float *dprobe, const float *dprobe_q, const float *dprobe_k, const float *probe,
                        int64_t pos0, int form, int B, int T, int H, int P);

#endif
