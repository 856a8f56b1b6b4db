// grape_ap.c — GRAPE-AP probes (GRAPE §3 path-integral additive; official v1 §2.7).
// Key side: p̂ = p/sqrt(mean(p²) + 2^-7) (no weight), r_l = Rot_l(p̂_l): half-split pairs (i, i+P/2), base 1, so
// every plane turns 1 rad per token, with the official sign y_i = a cos φ + b sin φ, y_{i+P/2} = −a sin φ + b cos φ.
// Query side (ap_form): official v1 keeps the raw p_t; the paper's literal form (GRAPE §5 eq. 5.1) the normalised,
// un-rotated p̂_t; in both ψ depends on the absolute l. The relative form uses Rot_t(p̂_t), so
// <Rot_t p̂_t, Rot_l p̂_l> = <p̂_t, Rot_{l-t} p̂_l> depends on t − l only.
#include <math.h>

#include "core/mathx.h"
#include "pe/bias_internal.h"

#define AP_PAR_MIN 4096

// 1/sqrt(mean(p²) + eps). p: (P)
static float rms_inv(const float *p, int P) {
    double ss = 0;
    for (int i = 0; i < P; i++) ss += (double)p[i] * p[i];
    return (float)(1.0 / sqrt(ss / P + GRAPE_AP_RMS_EPS));
}

// y = Rot(φ)(scale·(x + add)) on half-split pairs, official sign; add may be NULL. The transpose is the same map
// with s → −s. y must not alias x or add.
static void rot_half(float *y, const float *x, const float *add, float scale, int P, float s, float c) {
    int half = P / 2;
    for (int i = 0; i < half; i++) {
        float a = scale * (x[i] + (add ? add[i] : 0.0f)), b = scale * (x[i + half] + (add ? add[i + half] : 0.0f));
        y[i] = a * c + b * s;
        y[i + half] = -a * s + b * c;
    }
}

// Everything one head's probe row reads or writes; rows are at offset o = ((b*T + t)*H + h)*P.
typedef struct {
    float *probe_q, *probe_k, *dprobe;         // outputs (forward: probe_q/k; backward: dprobe +=)
    const float *probe, *dprobe_q, *dprobe_k; // (B,T,H,P)
    int form, P;
} ap_rows;

// One row forward: r = Rot(p̂); probe_q = r (relative), p̂ (paper) or p (official).
static void ap_row_forward(const ap_rows *a, size_t o, float s, float c) {
    int P = a->P;
    float ri = rms_inv(a->probe + o, P);
    rot_half(a->probe_k + o, a->probe + o, NULL, ri, P, s, c);
    for (int i = 0; i < P; i++)
        a->probe_q[o + i] = a->form == GRAPE_AP_RELATIVE ? a->probe_k[o + i]
                            : a->form == GRAPE_AP_PAPER  ? ri * a->probe[o + i]
                                                         : a->probe[o + i];
}

// One row backward: dp̂ = Rotᵀ dr, plus Rotᵀ dprobe_q (relative) or dprobe_q (paper);
// dp += r (dp̂ − p̂ mean(p̂ ⊙ dp̂)), r = 1/rms; official v1 adds dprobe_q to dp directly (raw query probe).
static void ap_row_backward(const ap_rows *a, size_t o, float s, float c) {
    int P = a->P;
    float dr[GRAPE_AP_MAX_P], ph[GRAPE_AP_MAX_P];
    rot_half(dr, a->dprobe_k + o, a->form == GRAPE_AP_RELATIVE ? a->dprobe_q + o : NULL, 1.0f, P, -s, c);
    for (int i = 0; a->form == GRAPE_AP_PAPER && i < P; i++) dr[i] += a->dprobe_q[o + i];
    float ri = rms_inv(a->probe + o, P), m = 0;
    for (int i = 0; i < P; i++) {
        ph[i] = a->probe[o + i] * ri;
        m += ph[i] * dr[i];
    }
    m /= (float)P;
    for (int i = 0; i < P; i++)
        a->dprobe[o + i] += ri * (dr[i] - ph[i] * m) + (a->form == GRAPE_AP_OFFICIAL ? a->dprobe_q[o + i] : 0.0f);
}

// Run row() over every (b,t,h) with the sin/cos of the token's absolute position pos0 + t (range-reduced in double).
static void ap_for_rows(void (*row)(const ap_rows *, size_t, float, float), const ap_rows *a, int64_t pos0, int B,
                        int T, int H) {
    size_t rows = (size_t)B * (size_t)T;
#pragma omp parallel for if (rows * (size_t)H > AP_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        double s, c;
        angle_sincos((double)(pos0 + (int64_t)(r % (size_t)T)), 1.0, &s, &c);
        for (int h = 0; h < H; h++) row(a, (r * (size_t)H + (size_t)h) * (size_t)a->P, (float)s, (float)c);
    }
}

// probe_q, probe_k, probe: (B,T,H,P)
void ap_probes_forward(float *probe_q, float *probe_k, const float *probe, int64_t pos0, int form, int B, int T,
                       int H, int P) {
    ap_rows a = {probe_q, probe_k, NULL, probe, NULL, NULL, form, P};
    ap_for_rows(ap_row_forward, &a, pos0, B, T, H);
}

// dprobe: (B,T,H,P) +=; dprobe_q, dprobe_k, probe: (B,T,H,P)
void ap_probes_backward(float *dprobe, const float *dprobe_q, const float *dprobe_k, const float *probe,
                        int64_t pos0, int form, int B, int T, int H, int P) {
    ap_rows a = {NULL, NULL, dprobe, probe, dprobe_q, dprobe_k, form, P};
    ap_for_rows(ap_row_backward, &a, pos0, B, T, H);
}
