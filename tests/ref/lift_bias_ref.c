// lift_bias_ref.c — reference path of the additive action in double (see lift_bias_ref.h). Slow on purpose:
// it builds the group elements and follows the spec literally; the fast kernels are measured against it.
#include "lift_bias_ref.h"

#include <math.h>
#include <string.h>

#include "dmat.h"
#include "core/mathx.h"
#include "pe/bias_internal.h"

#define LIFT_MAX_N 64 // largest lifted dimension (d + extra coordinates); the matrices live on the stack

static size_t at3(const bias_ref_inputs *in, int b, int t, int h) {
    return ((size_t)b * (size_t)in->T + (size_t)t) * (size_t)in->H + (size_t)h;
}

// ω_h = softplus(ρ_h)·m_h for a learned slope, m_h otherwise (official model/llama-mha-grape-a-*.py, -grape-ap-v1.py).
static double ref_slope(const bias_ref_inputs *in, int h) {
    double m = alibi_slope(h, in->H);
    return bias_kind_of(in->kind)->learned_slope ? softplus_d(in->rho[h]) * m : m;
}

// λ = softplus(ŵ_h·x/√D), ŵ = w/max(‖w‖, 1e-6); NAN when the gate is absent. w: (H,D); x: (B,T,H,D)
static double ref_gate(const bias_ref_inputs *in, const double *w, const double *x, int b, int t, int h) {
    if (!w) return NAN;
    const double *wh = w + (size_t)h * (size_t)in->D, *xr = x + at3(in, b, t, h) * (size_t)in->D;
    double ss = 0, dot = 0;
    for (int d = 0; d < in->D; d++) ss += wh[d] * wh[d], dot += wh[d] * xr[d];
    return softplus_d(dot / fmax(sqrt(ss), GRAPE_A_NORM_EPS) / sqrt((double)in->D));
}

// Probe p̂ = p/rms (raw p when normalise is 0), rotated at absolute position n when rotate (half-split, base 1,
// official sign).
static void ref_probe(double *out, const bias_ref_inputs *in, int b, int t, int h, int normalise, int rotate) {
    int P = in->P, half = P / 2;
    const double *p = in->probe + at3(in, b, t, h) * (size_t)P;
    double ss = 0;
    for (int i = 0; i < P; i++) ss += p[i] * p[i];
    double r = normalise ? 1.0 / sqrt(ss / P + GRAPE_AP_RMS_EPS) : 1.0, s = 0, c = 1;
    if (rotate) angle_sincos((double)(in->pos0 + t), 1.0, &s, &c);
    for (int i = 0; i < half; i++) {
        double a = p[i] * r, bb = p[i + half] * r;
        out[i] = a * c + bb * s;
        out[i + half] = -a * s + bb * c;
    }
}

// Edge potentials ψ(t,l) of one (b,h) for l <= t (0 above): cum form (fox) log f_l; path form (grape-ap)
// α log σ(<p_q(t), r_l>/P).
// psi: (T,T)
static void ref_psi(double *psi, const bias_ref_inputs *in, int b, int h) {
    int T = in->T, P = in->P;
    double pq[GRAPE_AP_MAX_P], pk[GRAPE_AP_MAX_P];
    for (int t = 0; t < T; t++)
        for (int l = 0; l < T; l++) {
            double *o = psi + (size_t)t * (size_t)T + (size_t)l;
            *o = 0;
            if (l > t) continue;
            if (bias_kind_of(in->kind)->form == BIAS_FORM_CUM) {
                *o = log_sigmoid_d(in->gate_logit[at3(in, b, l, h)]);
                continue;
            }
            ref_probe(pq, in, b, t, h, in->ap_form != GRAPE_AP_OFFICIAL, in->ap_form == GRAPE_AP_RELATIVE);
            ref_probe(pk, in, b, l, h, 1, 1);
            double S = 0;
            for (int i = 0; i < P; i++) S += pq[i] * pk[i];
            *o = ref_slope(in, h) * bias_path_edge(S / P);
        }
}

// bias: (B,H,T,T)
void bias_ref_dense(double *bias, const bias_ref_inputs *in) {
    const bias_kind *kd = bias_kind_of(in->kind);
    int T = in->T;
    size_t TT = (size_t)T * (size_t)T;
    double *psi = bias; // fox/ap: ψ is built in place of the block it sums into, row by row from the right
    for (int b = 0; b < in->B; b++)
        for (int h = 0; h < in->H; h++) {
            double *blk = bias + ((size_t)b * (size_t)in->H + (size_t)h) * TT;
            int path = kd->form == BIAS_FORM_CUM || kd->form == BIAS_FORM_PATH;
            if (path) ref_psi(psi = blk, in, b, h);
            for (int t = 0; t < T; t++) {
                double *row = blk + (size_t)t * (size_t)T, acc = 0;
                for (int j = T - 1; j >= 0; j--) {
                    if (j > t) {
                        row[j] = -INFINITY;
                        continue;
                    }
                    if (path) { // b(t,j) = Σ_{l=j+1..t} ψ(t,l): reverse running sum, ψ(t,j) read before overwrite
                        double here = row[j];
                        row[j] = acc;
                        acc += here;
                        continue;
                    }
                    bias_pair p = {.slope = ref_slope(in, h), .dist = (double)(t - j),
                                   .gate_q = kd->gate_q ? ref_gate(in, in->v, in->q, b, t, h) : 0.0,
                                   .gate_k = kd->gate_k ? ref_gate(in, in->u, in->k, b, j, h) : 0.0};
                    row[j] = bias_pair_value(kd, &p);
                }
            }
        }
}

// y, o: (B,T,H,D); logit: (B,T,H)
void kv_shift_ref(double *y, const double *o, const double *logit, int B, int T, int H, int D) {
    size_t HD = (size_t)H * (size_t)D;
    for (size_t r = 0; r < (size_t)B * (size_t)T; r++)
        for (size_t h = 0; h < (size_t)H; h++) {
            double a = sigmoid_d(logit[r * (size_t)H + h]);
            for (size_t i = r * HD + h * (size_t)D; i < r * HD + (h + 1) * (size_t)D; i++)
                y[i] = (1 - a) * o[i] + (r % (size_t)T ? a * o[i - HD] : 0.0);
        }
}

// ---------------------------------------------------------------------------------------------------------------
// The unipotent lift

// G: (n,n), n <= LIFT_MAX_N
void lift_group_element(double *G, const lift_component *c, int nc, int n, double pos) {
    double M[LIFT_MAX_N * LIFT_MAX_N], term[LIFT_MAX_N * LIFT_MAX_N], next[LIFT_MAX_N * LIFT_MAX_N];
    size_t nn = (size_t)n * (size_t)n;
    memset(M, 0, nn * sizeof(double));
    for (int r = 0; r < nc; r++)
        for (size_t e = 0; e < nn; e++) M[e] += pos * c[r].omega * c[r].A[e];
    memset(G, 0, nn * sizeof(double));
    memset(term, 0, nn * sizeof(double));
    for (int d = 0; d < n; d++) G[(size_t)d * n + d] = term[(size_t)d * n + d] = 1.0;
    for (int k = 1; k <= n; k++) { // (pos ω A)^k / k!, zero from k = 2 on when A² = 0
        dmat_mul(next, term, M, n);
        double mx = 0;
        for (size_t e = 0; e < nn; e++) {
            term[e] = next[e] / k;
            G[e] += term[e];
            mx = fmax(mx, fabs(term[e]));
        }
        if (mx == 0) break;
    }
}

// Solve Aᵀ x = y by Gaussian elimination with partial pivoting (A: (n,n), destroyed; y: (n), overwritten by x).
static void solve_transposed(double *A, double *y, int n) {
    for (int r = 0; r < n; r++) // transpose in place
        for (int c = r + 1; c < n; c++) {
            double t = A[(size_t)r * n + c];
            A[(size_t)r * n + c] = A[(size_t)c * n + r];
            A[(size_t)c * n + r] = t;
        }
    for (int col = 0; col < n; col++) {
        int piv = col;
        for (int r = col + 1; r < n; r++)
            if (fabs(A[(size_t)r * n + col]) > fabs(A[(size_t)piv * n + col])) piv = r;
        for (int c = 0; c < n; c++) {
            double t = A[(size_t)col * n + c];
            A[(size_t)col * n + c] = A[(size_t)piv * n + c];
            A[(size_t)piv * n + c] = t;
        }
        double t = y[col];
        y[col] = y[piv];
        y[piv] = t;
        for (int r = col + 1; r < n; r++) {
            double f = A[(size_t)r * n + col] / A[(size_t)col * n + col];
            for (int c = col; c < n; c++) A[(size_t)r * n + c] -= f * A[(size_t)col * n + c];
            y[r] -= f * y[col];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = y[r];
        for (int c = r + 1; c < n; c++) s -= A[(size_t)r * n + c] * y[c];
        y[r] = s / A[(size_t)r * n + r];
    }
}

double lift_logit(const double *qhat, const double *khat, const lift_component *c, int nc, int n, double i,
                  double j) {
    double G[LIFT_MAX_N * LIFT_MAX_N], kt[LIFT_MAX_N];
    lift_group_element(G, c, nc, n, j);
    memcpy(kt, khat, (size_t)n * sizeof(double));
    solve_transposed(G, kt, n); // k̃ = G(j)^{-T} k̂
    lift_group_element(G, c, nc, n, i);
    double s = 0;
    for (int r = 0; r < n; r++) {
        double qt = 0; // q̃_r = (G(i) q̂)_r
        for (int e = 0; e < n; e++) qt += G[(size_t)r * n + e] * qhat[e];
        s += qt * kt[r];
    }
    return s;
}

// bias: (T,T); psi: (T,T)
void lift_path_bias(double *bias, const double *psi, int T) {
    for (int t = 0; t < T; t++)
        for (int j = 0; j < T; j++) {
            if (j > t) {
                bias[(size_t)t * T + j] = -INFINITY;
                continue;
            }
            double M[4] = {1, 0, 0, 1}; // Π (I + ψ E) on the homogeneous block, E = e_1 e_2ᵀ
            for (int l = j + 1; l <= t; l++) {
                double U[4] = {1, psi[(size_t)t * T + l], 0, 1}, R[4];
                R[0] = M[0] * U[0] + M[1] * U[2], R[1] = M[0] * U[1] + M[1] * U[3];
                R[2] = M[2] * U[0] + M[3] * U[2], R[3] = M[2] * U[1] + M[3] * U[3];
                memcpy(M, R, sizeof R);
            }
            bias[(size_t)t * T + j] = M[1]; // q̂ᵀ M k̂ − q̂ᵀ k̂ with q̂ = e_1, k̂ = e_2
        }
}

// q̂ = [q; λ_q; 0; 1; 0], k̂ = [k; 0; 1; 0; λ_k] (an ungated kind's single component has λ_q = 1, λ_k = 0).
static void lift_vectors(double *qh, double *kh, const bias_ref_inputs *in, int b, int h, int t, int j) {
    int D = in->D;
    memset(qh, 0, (size_t)(D + 4) * sizeof(double));
    memset(kh, 0, (size_t)(D + 4) * sizeof(double));
    memcpy(qh, in->q + at3(in, b, t, h) * (size_t)D, (size_t)D * sizeof(double));
    memcpy(kh, in->k + at3(in, b, j, h) * (size_t)D, (size_t)D * sizeof(double));
    const bias_kind *kd = bias_kind_of(in->kind);
    qh[D] = kd->gate_q ? ref_gate(in, in->v, in->q, b, t, h) : bias_kind_gated(kd) ? 0.0 : 1.0;
    kh[D + 1] = 1;
    qh[D + 2] = 1;
    kh[D + 3] = kd->gate_k ? ref_gate(in, in->u, in->k, b, j, h) : 0.0;
}

// bias: (B,H,T,T)
int lift_bias_dense(double *bias, const bias_ref_inputs *in) {
    int T = in->T, D = in->D, n = D + 4;
    if (n > LIFT_MAX_N) return 0;
    size_t TT = (size_t)T * (size_t)T, nn = (size_t)n * (size_t)n;
    double A1[LIFT_MAX_N * LIFT_MAX_N], A2[LIFT_MAX_N * LIFT_MAX_N], qh[LIFT_MAX_N], kh[LIFT_MAX_N];
    memset(A1, 0, nn * sizeof(double));
    memset(A2, 0, nn * sizeof(double));
    A1[(size_t)(D + 1) * n + D] = 1; // e_{D+1} e_Dᵀ: query-gate component
    A2[(size_t)(D + 3) * n + D + 2] = 1; // e_{D+3} e_{D+2}ᵀ: key-gate component
    for (int b = 0; b < in->B; b++)
        for (int h = 0; h < in->H; h++) {
            double *blk = bias + ((size_t)b * (size_t)in->H + (size_t)h) * TT;
            bias_form form = bias_kind_of(in->kind)->form;
            if (form == BIAS_FORM_CUM || form == BIAS_FORM_PATH) {
                ref_psi(blk, in, b, h);
                lift_path_bias(blk, blk, T); // reads row t of ψ before writing it: rows are independent
                continue;
            }
            lift_component c[2] = {{A1, -ref_slope(in, h)}, {A2, -ref_slope(in, h)}};
            for (int t = 0; t < T; t++)
                for (int j = 0; j < T; j++) {
                    if (j > t) {
                        blk[(size_t)t * T + j] = -INFINITY;
                        continue;
                    }
                    lift_vectors(qh, kh, in, b, h, t, j);
                    double qk = 0;
                    for (int d = 0; d < D; d++) qk += qh[d] * kh[d];
                    blk[(size_t)t * T + j] =
                        lift_logit(qh, kh, c, 2, n, (double)(in->pos0 + t), (double)(in->pos0 + j)) - qk;
                }
        }
    return 1;
}
