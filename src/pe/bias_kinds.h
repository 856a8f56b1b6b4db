// bias_kinds.h — the table of additive encoding kinds (GRAPE §4-5), one entry per grape_bias_kind: its name and
// documentation, its parameters and their init, the per-token input channel the model computes for it, the factors
// it produces, and its closed form b(t,j) with the gradient. Every scalar evaluation of a bias reads this one
// definition: the block oracle (bias.c), the double reference of the attention (attention_ref.c), the KV cache
// (kv_cache.c) and the lift reference (lift_bias_ref.c). Only the SIMD tile kernels of attention.c are specialised,
// one per closed form (bias_form), next to each other there. Adding a kind: docs/ARCHITECTURE.md, "Adding an
// encoding".
#ifndef GRAPE_PE_BIAS_KINDS_H
#define GRAPE_PE_BIAS_KINDS_H

#include "core/mathx.h"
#include "grape.h"
#include "pe/kind_table.h"

// The closed forms; a kind is one of them plus its parameters and gates.
typedef enum {
    BIAS_FORM_NONE,   // b = 0 (nope)
    BIAS_FORM_LINEAR, // b = -slope_h (t-j) Λ(t,j): Λ = 1 ungated, else gate_q(t) + gate_k(j) over the kind's gates
    BIAS_FORM_CUM,    // b = c_t - c_j, c = cumsum of a per-token potential (FoX: log f)
    BIAS_FORM_PATH,   // b = slope_h Σ_{l=j+1..t} ψ(t,l), ψ = log σ(<probe_q(t), probe_k(l)>/P) (GRAPE-AP)
} bias_form;

// The factor channels (grape_bias_factor lists a kind's in this order), by index. The factors and their gradients
// are these lists (struct grape_bias_factors below); the SIMD tile kernels read them by index.
enum { BF_SLOPE, BF_GATE_Q, BF_GATE_K, BF_CUM, BF_PROBE_Q, BF_PROBE_K, BF_COUNT };
#define BF_BIT(i) (1u << (i))

// A factor channel: its name, dtype and shape: (H) when per_head, else (B,T,H), times P when probe-wide.
typedef struct {
    const char *name;
    grape_dtype dtype;
    int per_head, probe_wide;
} bias_factor_desc;
extern const bias_factor_desc bias_factor_descs[BF_COUNT];


typedef struct {
    grape_pe_info info;  // name, family, parameters, source: the row `grape encodings` prints
    bias_form form;
    unsigned factors;    // BF_BIT(BF_*) of the channels it produces
    // Parameters, in this order in the bias's slice of the encoding's vector:
    //   learned_slope: "rho" (H), ω_h = softplus(ρ_h)·m_h, init ρ = softplus⁻¹(1) so ω starts at the ALiBi m_h;
    //     otherwise the slope is m_h itself (alibi) or GRAPE-AP's α_h = m_h;
    //   gate_k: "u" (H,D), λ_k(j) = softplus(û_h·k_j/√D); gate_q: "v" (H,D), λ_q(t) = softplus(v̂_h·q_t/√D);
    //     both initialised N(0, 1/D) (official model/llama-mha-grape-a-*.py).
    int learned_slope, gate_q, gate_k;
    token_input_desc inputs[KIND_MAX_INPUTS]; // the token inputs the model computes for it (name NULL ends)
} bias_kind;

// The row of kind k; that of none for a k outside [0, GRAPE_BIAS_COUNT) (callers that take a kind from the user
// validate it first, with a message).
const bias_kind *bias_kind_of(grape_bias_kind k);
// Kind whose name is the len bytes at s, or -1.
int bias_kind_find(const char *s, size_t len);

static inline int bias_kind_gated(const bias_kind *k) { return k->gate_q || k->gate_k; }

static inline int bias_kind_has(const bias_kind *k, int bf) { return (k->factors & BF_BIT(bf)) != 0; }

// The factors: a handle at the start of its workspace, the channels after it (bias.c).
struct grape_bias_factors {
    grape_bias_kind kind;
    int B, T, H, P;
    int64_t pos0;
    void *ch[BF_COUNT]; // by BF_* index; NULL where the kind lacks the channel
};
struct grape_bias_grads {
    grape_bias_kind kind;
    int B, T, H, P;
    void *ch[BF_COUNT];
};
static inline const float *bf_f32(const grape_bias_factors *f, int i) { return (const float *)f->ch[i]; }
static inline const double *bf_f64(const grape_bias_factors *f, int i) { return (const double *)f->ch[i]; }
static inline float *bg_f32(const grape_bias_grads *g, int i) { return g ? (float *)g->ch[i] : NULL; }
static inline double *bg_f64(const grape_bias_grads *g, int i) { return g ? (double *)g->ch[i] : NULL; }

// --- The scalar closed forms, in double. One (query t, key j) pair of one head: the values it reads (fields the
// kind lacks are ignored) and the gradient of b with respect to them.
typedef struct {
    double slope, dist;     // slope_h, t - j
    double gate_q, gate_k;  // λ_q(t), λ_k(j)
    double cum_q, cum_k;    // c_t, c_j
} bias_pair;

typedef struct {
    double slope, gate_q, gate_k, cum_q, cum_k;
} bias_pair_grad;

// Λ(t,j) of the linear form.
static inline double bias_lambda(const bias_kind *k, const bias_pair *p) {
    if (!bias_kind_gated(k)) return 1.0;
    return (k->gate_q ? p->gate_q : 0.0) + (k->gate_k ? p->gate_k : 0.0);
}

// b(t,j) of the pointwise forms (GRAPE §4 eq. 4.6, ALiBi, FoX); 0 for none and path.
static inline double bias_pair_value(const bias_kind *k, const bias_pair *p) {
    switch (k->form) {
    case BIAS_FORM_LINEAR: return -p->slope * p->dist * bias_lambda(k, p);
    case BIAS_FORM_CUM: return p->cum_q - p->cum_k;
    default: return 0.0;
    }
}

// d += G ∂b(t,j)/∂(slope, gate_q, gate_k, cum_q, cum_k) for the pointwise forms.
static inline void bias_pair_backward(bias_pair_grad *d, const bias_kind *k, const bias_pair *p, double G) {
    if (k->form == BIAS_FORM_LINEAR) {
        d->slope -= p->dist * bias_lambda(k, p) * G;
        if (k->gate_q) d->gate_q -= p->slope * p->dist * G;
        if (k->gate_k) d->gate_k -= p->slope * p->dist * G;
    } else if (k->form == BIAS_FORM_CUM) {
        d->cum_q += G;
        d->cum_k -= G;
    }
}

// The path form's edge potential ψ(S) = log σ(S) of the edge score S = <probe_q(t), probe_k(l)>/P, and dψ/dS.
static inline double bias_path_edge(double S) { return log_sigmoid_d(S); }
static inline double bias_path_edge_grad(double S) { return sigmoid_d(-S); }

#endif
