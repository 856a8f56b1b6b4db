// lift_bias_ref.h — the reference path of the additive action, in double: the closed-form bias of every kind
// straight from raw inputs (the oracle of the fast factor kernels), and the unipotent group elements themselves
// (GRAPE §2–3), whose action on lifted queries and keys must reproduce the closed forms.
#ifndef GRAPE_PE_LIFT_BIAS_REF_H
#define GRAPE_PE_LIFT_BIAS_REF_H

#include <stdint.h>

#include "grape.h"

// Everything a bias reads, in double. Unused pointers may be NULL.
typedef struct {
    grape_bias_kind kind;
    int ap_form; // grape_pe_config.ap_form
    int B, T, H, D, P;
    int64_t pos0;
    const double *rho;        // (H) grape-a
    const double *u, *v;      // (H,D) grape-a key / query gate vectors (raw; normalised here)
    const double *q, *k;      // (B,T,H,D) what the gates read
    const double *gate_logit; // (B,T,H) fox
    const double *probe;      // (B,T,H,P) grape-ap raw probes
} bias_ref_inputs;

// Closed forms of grape.h from raw inputs. bias: (B,H,T,T), -INFINITY where j > t.
void bias_ref_dense(double *bias, const bias_ref_inputs *in);

// KV-shift in double, the twin of grape_kv_shift_forward: y_t = σ(l_t) o_{t−1} + (1 − σ(l_t)) o_t, o_{−1} = 0.
// y, o: (B,T,H,D); logit: (B,T,H)
void kv_shift_ref(double *y, const double *o, const double *logit, int B, int T, int H, int D);

// --- The unipotent lift

// One generator of the additive action: A (n x n, row-major) with its scale ω.
typedef struct {
    const double *A;
    double omega;
} lift_component;

// G_add(pos) = exp(pos Σ_r ω_r A_r), summed as a power series until a term vanishes (A nilpotent ⇒ I + pos ω A).
// G: (n,n), n <= 64
void lift_group_element(double *G, const lift_component *c, int nc, int n, double pos);
// q̃ᵀ k̃ with q̃ = G_add(i) q̂ and k̃ = G_add(j)^{-T} k̂; the inverse-transpose is solved by Gaussian elimination,
// not by assuming unipotence. qhat, khat: (n)
double lift_logit(const double *qhat, const double *khat, const lift_component *c, int nc, int n, double i,
                  double j);
// GRAPE §3 row-wise path product: b(t,j) read off Π_{l=j+1..t} (I + ψ(t,l) E), E² = 0, as a product of matrices
// acting on the homogeneous block q̂ = e_1, k̂ = e_2. psi: (T,T) indexed [t][l]; bias: (T,T), -INFINITY above.
void lift_path_bias(double *bias, const double *psi, int T);
// The bias of every kind through the lift: alibi and grape-a by lift_logit on n = D + 4 coordinates
// (q̂ = [q; λ_q; 0; 1; 0], k̂ = [k; 0; 1; 0; λ_k], A_1 = e_{D+1} e_Dᵀ, A_2 = e_{D+3} e_{D+2}ᵀ, ω = −slope) minus qᵀk;
// fox (ψ = log f_l) and grape-ap (ψ = α log σ(S)) by lift_path_bias. bias: (B,H,T,T). Returns 0 (and does
// nothing) when D + 4 exceeds the lift's stack matrices (D <= 60).
int lift_bias_dense(double *bias, const bias_ref_inputs *in);

#endif
