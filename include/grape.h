// grape.h — public API of libgrape: position encodings as group actions.
//
// A position encoding is a pair of actions on attention:
//   * a multiplicative action G(n) in SO(d) that rotates queries and keys (RoPE, xPos, GRAPE-M, ...);
//   * an additive action, a unipotent element of GL(d+k) whose only effect is a logit bias b(t,j)
//     (ALiBi, FoX, GRAPE-A, GRAPE-AP).
// Any rotation composes with any bias ("ROT+BIAS"), and every encoding streams through a KV cache. The logit of
// (query t, key j) depends on t - j only for rope, xpos, grape-m*, alibi, fox, grape-a and grape-ap's relative
// form as actions; inside the model, with its QK-RMSNorm gain, only under the conditions of "When the relative law
// holds" below the model section (docs/ENCODINGS.md has the same list).
//
// Conventions used throughout:
//   * tensors are float32, row-major, shapes written as (B,T,H,D) = (batch, time, heads, head dim);
//   * a backward ACCUMULATES (+=) into every gradient it is given; callers zero gradients once per step;
//   * every function that can fail returns grape_status; grape_last_error() explains the last failure
//     on the calling thread. The library never prints and never exits.
#ifndef GRAPE_H
#define GRAPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRAPE_VERSION "0.1.0"

// GRAPE_API marks every function libgrape exports: it is built with -fvisibility=hidden, so nothing else leaves
// the shared library (tests/sh/test_exports.sh checks both directions).
#if defined(__GNUC__) || defined(__clang__)
#define GRAPE_API __attribute__((visibility("default")))
#else
#define GRAPE_API
#endif

// ----------------------------------------------------------------------------------------------------------------
// Errors

typedef enum {
    GRAPE_OK = 0,
    GRAPE_ERR_ARG,         // impossible argument or configuration
    GRAPE_ERR_NOMEM,       // allocation failed or a size overflowed
    GRAPE_ERR_IO,          // a file could not be read or written
    GRAPE_ERR_FORMAT,      // a file or string is malformed
    GRAPE_ERR_NUMERIC,     // NaN/Inf where a finite value is required
    GRAPE_ERR_UNSUPPORTED, // valid request this build cannot serve
    GRAPE_ERR_INTERRUPTED, // stopped by a signal (state saved where applicable)
} grape_status;

GRAPE_API const char *grape_status_name(grape_status s);
// Message describing the most recent error on this thread ("" if none).
GRAPE_API const char *grape_last_error(void);

// ----------------------------------------------------------------------------------------------------------------
// Encoding names and configuration

typedef enum {
    GRAPE_ROT_NONE = 0,      // nope: L = 0
    GRAPE_ROT_ROPE,          // fixed canonical planes, theta_i = base^(-2i/R)
    GRAPE_ROT_XPOS,          // RoPE with exponential decay zeta_i^((n-c)/scale_base) (LEX)
    GRAPE_ROT_GRAPE_M,       // learned log-frequencies (official GRAPE-M nonctx)
    GRAPE_ROT_GRAPE_M_CTX,   // contextual phase Phi_t = sum_{tau<t} omega_tau (official GRAPE-M ctx)
    GRAPE_ROT_GRAPE_M_BASIS, // learned commuting orthogonal basis B (Cayley map), learned frequencies
    GRAPE_ROT_GRAPE_M_NC,    // non-commuting mixture of rank r: learned orthonormal frame E (d x r), r/2 angles
    GRAPE_ROT_COUNT
} grape_rot_kind;

typedef enum {
    GRAPE_BIAS_NONE = 0,
    GRAPE_BIAS_ALIBI,      // -m_h (t-j)
    GRAPE_BIAS_FOX,        // c_t - c_j, c = cumsum(log sigmoid(gate logit))
    GRAPE_BIAS_GRAPE_A_K,  // -omega_h (t-j) lambda_k(j)
    GRAPE_BIAS_GRAPE_A_Q,  // -omega_h (t-j) lambda_q(t)
    GRAPE_BIAS_GRAPE_A_QK, // -omega_h (t-j) (lambda_q(t) + lambda_k(j))
    GRAPE_BIAS_GRAPE_AP,   // alpha_h sum_{l=j+1..t} log sigmoid(<p_t, r_l>/P)
    GRAPE_BIAS_GRAPE_A,    // -omega_h (t-j), omega_h = softplus(rho_h) m_h: learned-slope ALiBi, no gate
    GRAPE_BIAS_COUNT
} grape_bias_kind;

typedef enum {
    GRAPE_SCALING_NONE = 0,
    GRAPE_SCALING_LINEAR, // position interpolation: theta *= 1/factor
    GRAPE_SCALING_NTK,    // NTK-aware base: base *= factor^(R/(R-2))
    GRAPE_SCALING_YARN,   // YaRN ramp between interpolation and extrapolation (llama.cpp constants)
} grape_rope_scaling;

typedef struct {
    grape_rot_kind rot;
    grape_bias_kind bias;
    int n_heads;  // H
    int head_dim; // D, even
    int rotary_dim;   // R: leading dims of each head that rotate (even, <= D); 0 means D (partial rotary)
    int interleaved;  // 0: half-split pairs (i, i+R/2) as the official GRAPE code; 1: interleaved (2i, 2i+1)
    double rope_base; // 10000
    // RoPE context extension (rope, xpos, and the initial frequencies of the learned variants)
    grape_rope_scaling scaling;
    double scaling_factor;   // extension factor s = L_target / L_train (>= 1)
    int yarn_orig_ctx;       // training context for YaRN's correction dims
    double yarn_ext_factor;  // < 0: auto (1 for YaRN)
    double yarn_attn_factor; // 1
    double yarn_beta_fast;   // 32
    double yarn_beta_slow;   // 1
    // xPos
    double xpos_gamma;      // 0.4
    double xpos_scale_base; // 512
    // GRAPE-M
    int per_head;          // grape-m: frequencies per head; grape-m-ctx: one phase per head
    double log_freq_scale; // 16: grape-m stores 16*ln(theta) ("x16 trick")
    int nc_rank;           // grape-m-nc rank r (even, 2 <= r <= R); default 8
    // GRAPE-AP
    int ap_probe_dim; // P (even), default 8
    // GRAPE-AP probe form (key probe always r_l = Rot_l(p^_l), p^ = RMS-normalised, rotated at its absolute l):
    //   GRAPE_AP_OFFICIAL (0): official v1, raw query probe p_t: psi(t,l) depends on the absolute l;
    //   GRAPE_AP_PAPER (1): the paper's literal <p^_t, R_l p^_l> (GRAPE §5 eq. 5.1), query probe normalised and
    //     UN-rotated: also absolute;
    //   GRAPE_AP_RELATIVE (2): query probe rotated at its own t, <R_t p^_t, R_l p^_l> = <p^_t, R_(l-t) p^_l>: depends
    //     on t - l only (the relative law holds; grape's "ap_paper = 1" before format v2).
    int ap_form;
    // KV-shift (the "(w/ KV-shift)" rows): k and v mix in the previous token's projection
    int kv_shift;
    // grape-m-basis: 0 (default) applies the spec's B R(n theta) B^T; 1 applies only R(n theta), for callers that
    // fold B^T into the q/k projections (grape_basis_fold). In the model, basis_folded = 1 ("grape-m-basis folded")
    // puts the QK-RMSNorm gain in the B frame: since W_q, W_k are free, that model equals grape-m (the basis adds
    // no capacity). Only valid with grape-m-basis.
    int basis_folded;
    // QK-RMSNorm gain of the model (used by grape_model only): GRAPE_QK_GAIN_DIM (0, default, official code): one
    // gain per head dimension; GRAPE_QK_GAIN_PAIR (1): both coordinates of a rotation pair share one gain (tail
    // dims past rotary_dim keep their own), so the gain commutes with every coordinate-plane rotation and the
    // relative law holds exactly for rope, grape-m and grape-m-ctx (see "When the relative law holds" below).
    int qk_gain;
} grape_pe_config;

enum { GRAPE_QK_GAIN_DIM = 0, GRAPE_QK_GAIN_PAIR = 1 };
enum { GRAPE_AP_OFFICIAL = 0, GRAPE_AP_PAPER = 1, GRAPE_AP_RELATIVE = 2 };

// Fill *cfg with the defaults above for H heads of dimension D (rot = bias = none).
GRAPE_API void grape_pe_config_default(grape_pe_config *cfg, int n_heads, int head_dim);

// Encoding names with options: "NAME[:key=value,key=value][+NAME[:key=value,...]]", e.g. "rope",
// "rope:rope_base=500000,rotary_dim=32", "grape-m:per_head=1+grape-ap:ap_probe_dim=16", "xpos+fox:kv_shift=1".
// A key is a grape_pe_config field name (or its short alias) from the option table below; enum values go by name
// (scaling=yarn), booleans as 0/1 (or true/false). Each option belongs to the part (ROT or BIAS) it applies to;
// an option that applies to both (kv_shift) may sit on either.
// grape_pe_parse sets rot, bias and EVERY option field: the named ones to their values, the others to their
// defaults, so a name describes the whole encoding; n_heads and head_dim are left as they are.
// A bad name, key or value leaves cfg unchanged and returns GRAPE_ERR_ARG with a message naming the bad key or
// value and its allowed range. Ranges that depend on the head (rotary_dim <= head_dim, nc_rank <= rotary_dim)
// are checked by grape_pe_create.
GRAPE_API grape_status grape_pe_parse(grape_pe_config *cfg, const char *name);
// Canonical name: the kinds plus every option that applies to them and differs from its default, in table order,
// on the part it applies to ("rope:rope_base=500000", "grape-m:per_head=1+grape-ap:ap_probe_dim=16").
// grape_pe_parse of the canonical name gives back every applicable option bit-exactly (doubles print with up to
// 17 significant digits). Writes at most n bytes (NUL included) into buf and returns the length of the full name,
// like snprintf: the name was truncated when the result is >= n. GRAPE_PE_NAME_MAX always suffices.
#define GRAPE_PE_NAME_MAX 1024
GRAPE_API int grape_pe_name(char *buf, size_t n, const grape_pe_config *cfg);

// The option table: one row per grape_pe_config field a name may set. It drives parsing, validation messages,
// canonical names, grape_pe_config_default and `grape encodings --options`.
typedef enum { GRAPE_OPT_INT, GRAPE_OPT_BOOL, GRAPE_OPT_REAL, GRAPE_OPT_ENUM } grape_pe_option_type;
enum { GRAPE_OPT_EVEN = 1, GRAPE_OPT_LO_OPEN = 2 }; // grape_pe_option.flags: value must be even; range is (lo, hi]
typedef struct {
    const char *name;          // the grape_pe_config field name, the key of NAME:key=value
    const char *alias;         // short alias or NULL
    grape_pe_option_type type; // INT/BOOL/ENUM fields are int (enums by value), REAL fields double
    size_t offset;             // offsetof(grape_pe_config, field)
    double def, lo, hi;        // default and allowed range (ENUM: value indices)
    int flags;                 // GRAPE_OPT_EVEN, GRAPE_OPT_LO_OPEN
    const char *const *values; // ENUM: names of the values 0, 1, ... (NULL-terminated); otherwise NULL
    unsigned rot_mask;         // bit k set: applies to rotation kind k
    unsigned bias_mask;        // bit k set: applies to bias kind k
    const char *doc;           // meaning, one line
} grape_pe_option;
GRAPE_API int grape_pe_option_count(void);
GRAPE_API const grape_pe_option *grape_pe_option_at(int i);
// Index of the option named key (full name or alias), -1 if none.
GRAPE_API int grape_pe_option_find(const char *key);
// Does option o change the encoding cfg describes (its rot or bias kind is in o's masks)?
GRAPE_API int grape_pe_option_applies(const grape_pe_option *o, const grape_pe_config *cfg);
// The option's value in cfg as a double (enums and booleans as their index); its text as in a canonical name
// (enum names, the shortest %g that reads back exactly) into buf of n bytes.
GRAPE_API double grape_pe_option_get(const grape_pe_option *o, const grape_pe_config *cfg);
GRAPE_API void grape_pe_option_format(char *buf, size_t n, const grape_pe_option *o, double v);

typedef struct {
    const char *name;
    const char *family; // "multiplicative", "additive", "hybrid"
    const char *params; // learnable parameters, per layer
    const char *source; // where the encoding comes from in the papers
} grape_pe_info;

GRAPE_API int grape_pe_info_count(void);
GRAPE_API const grape_pe_info *grape_pe_info_at(int i);

// ----------------------------------------------------------------------------------------------------------------
// Encoding objects and their learnable parameters

typedef struct grape_pe grape_pe; // opaque; one per layer (it caches tables derived from that layer's parameters)

GRAPE_API grape_status grape_pe_create(grape_pe **out, const grape_pe_config *cfg);
GRAPE_API void grape_pe_free(grape_pe *pe);
GRAPE_API const grape_pe_config *grape_pe_get_config(const grape_pe *pe);

typedef struct {
    const char *name; // e.g. "log_freq"
    size_t offset;    // in floats, into the encoding's parameter vector
    int ndim;
    int shape[4];
    int weight_decay; // 1 if AdamW should decay it (official code: every PE parameter)
} grape_param_info;

// Number of learnable floats of this encoding (0 for rope, alibi, ...).
GRAPE_API size_t grape_pe_num_params(const grape_pe *pe);
GRAPE_API int grape_pe_num_param_tensors(const grape_pe *pe);
GRAPE_API const grape_param_info *grape_pe_param_tensor(const grape_pe *pe, int i);
// Initialise params as the official code does (seeded for the random parts).
GRAPE_API grape_status grape_pe_init_params(const grape_pe *pe, float *params, uint64_t seed);
// Derive tables from params (frequencies, Cayley basis, frames, slopes). Call after every parameter update,
// before any forward or backward. A grape_pe is therefore not re-entrant across different parameter vectors.
GRAPE_API grape_status grape_pe_prepare(grape_pe *pe, const float *params);
// Plan the rotation's workspace (cos/sin tables, scratch, gradient sums) for grape_rot_forward/backward calls of up
// to max_B x max_T tokens at the current OpenMP thread count, so that such calls allocate nothing (decode calls
// with B = T = 1 once per token and layer). A larger call grows the workspace to its size (one allocation, kept
// for later calls); a call made while another thread's call on the same encoding holds the workspace uses a
// private one for its duration. Optional: without it the first call allocates.
GRAPE_API grape_status grape_pe_reserve(grape_pe *pe, int max_B, int max_T);

// Per-token inputs: values the model computes from its own activations x_t (rows of its fused projection) and hands
// to the encoding. Each encoding declares them as a list of named channels (its kinds' rows of the kind tables:
// the rotation's first, then the bias's, then KV-shift's two gates). A call that takes token inputs takes an array
// of grape_pe_num_token_inputs(pe) pointers in that order, channel i shaped (B,T,width_i); a call that takes their
// gradients takes an array of the same shape (an entry may be NULL to skip that gradient).
typedef struct {
    const char *name;  // "phase" (grape-m-ctx logit: omega = sigmoid(logit/16)), "gate" (FoX forget-gate logit:
                       // log f = log sigmoid(logit)), "probe" (GRAPE-AP raw probes p_t, H*P), "shift_k", "shift_v"
                       // (KV-shift key and value gate logits: alpha = sigmoid(logit))
    int width;         // floats per token: 1, H or H*P
    int zero_init;     // the model's projection rows for it start at 0 (else N(0, std^2) like W_q)
    int has_bias;      // the model adds a learned bias "attn.b_<name>" (width floats) to the projection
    double bias_init;  // its initial value
} grape_token_input_info;
GRAPE_API int grape_pe_num_token_inputs(const grape_pe *pe);
// Channel i (NULL outside [0, grape_pe_num_token_inputs)).
GRAPE_API const grape_token_input_info *grape_pe_token_input_info(const grape_pe *pe, int i);
// Index of the channel named name, -1 if the encoding has none.
GRAPE_API int grape_pe_token_input_find(const grape_pe *pe, const char *name);

// ----------------------------------------------------------------------------------------------------------------
// Multiplicative action (rotation of queries and keys)

typedef enum { GRAPE_QUERY = 0, GRAPE_KEY = 1 } grape_side;

typedef struct {
    int64_t pos0;        // position of token t is pos0 + t
    double xpos_anchor;  // xPos centering c: q scaled zeta^((n-c)/sb), k scaled zeta^((c-n)/sb)
    const double *phase; // grape-m-ctx: phase Phi, (B,T) or (B,T,H); replaces the integer position
} grape_positions;

// y = G(n) x for every token and head. x, y: (B,T,H,D); y == x is allowed.
GRAPE_API grape_status grape_rot_forward(float *y, const float *x, const grape_pe *pe, const grape_positions *pos,
                                         grape_side side, int B, int T);
// dx += G(n)^T dy; dparams += d/dparams; dphase += d/dPhi (grape-m-ctx). x is the forward input.
// dparams and dphase may be NULL when the encoding has none.
GRAPE_API grape_status grape_rot_backward(float *dx, float *dparams, double *dphase, const float *dy, const float *x,
                                          const grape_pe *pe, const grape_positions *pos, grape_side side, int B,
                                          int T);

// grape-m-ctx phase: omega = sigmoid(logit/16), Phi_t = sum_{tau<t} omega_tau (exclusive, double).
// phase: (B,T) or (B,T,H); phase_logit: same shape.
GRAPE_API grape_status grape_phase_forward(double *phase, const float *phase_logit, const grape_pe *pe, int B, int T);
GRAPE_API grape_status grape_phase_backward(float *dphase_logit, const double *dphase, const float *phase_logit,
                                            const grape_pe *pe, int B, int T);

// grape-m-basis fast path. q~^T k~ = (R_i B^T q)^T (R_j B^T k): the outer B cancels in every logit, so B^T can be
// folded into the q/k projection: w_folded = blockdiag(B_h^T) w on each head's R rotary rows (tail rows copied).
// Use with cfg.basis_folded = 1 (the rotation then applies only R(n theta)); exact when nothing elementwise
// (e.g. an RMSNorm gain) sits between the projection and the rotation. w, w_folded: (H*D, C), not aliased.
GRAPE_API grape_status grape_basis_fold(float *w_folded, const float *w, const grape_pe *pe, int C);
// dw += blockdiag(B_h) dw_folded; dparams (the basis_skew slice of the encoding's vector) += through B = Cayley(A).
GRAPE_API grape_status grape_basis_fold_backward(float *dw, float *dparams, const float *dw_folded, const float *w,
                                                 const grape_pe *pe, int C);

// ----------------------------------------------------------------------------------------------------------------
// Additive action (logit bias). An encoding turns its inputs into per-token "factors"; the bias of any
// (query t, key j) pair, j <= t, is a closed form of the factors of t and j (absolute positions pos0 + index):
//   alibi       -slope_h (t-j)                   grape-a    -slope_h (t-j), slope_h = softplus(rho_h) m_h
//   grape-a-k   -slope_h (t-j) gate_k(j)        grape-a-q  -slope_h (t-j) gate_q(t)
//   grape-a-qk  -slope_h (t-j) (gate_q(t) + gate_k(j))
//   fox         cum(t) - cum(j)
//   grape-ap    slope_h sum_{l=j+1..t} log sigmoid(<probe_q(t), probe_k(l)> / P)
// and -inf for j > t. The fused attention generates the bias from these factors inside its tiles.

// The factors are an opaque handle that lives at the start of its workspace; they, and their gradients, are read
// as a list of channels. A kind's channels are those of its row of the kind table, in this order where present:
// "slope" (H), "gate_q" (B,T,H), "gate_k" (B,T,H), "cum" (B,T,H) double, "probe_q" (B,T,H,P), "probe_k" (B,T,H,P).
typedef struct grape_bias_factors grape_bias_factors;
typedef struct grape_bias_grads grape_bias_grads;
typedef enum { GRAPE_F32 = 0, GRAPE_F64 = 1 } grape_dtype;
typedef struct {
    const char *name;
    grape_dtype dtype;
    int ndim;
    int shape[4];
    void *data; // writable: a caller may fill factors it bound itself (grape_bias_factors_bind)
} grape_channel;

// Bytes of workspace (64-byte aligned) that hold the factors (or their gradients) for a (B,T) batch, handle
// included; SIZE_MAX when the size overflows.
GRAPE_API size_t grape_bias_workspace_bytes(const grape_pe *pe, int B, int T);

// Lay out zeroed factors of pe's kind for a (B,T) batch at positions pos0 + t in ws and set *f to them, without
// computing them (a caller that builds factors itself fills them through grape_bias_factor).
GRAPE_API grape_status grape_bias_factors_bind(grape_bias_factors **f, void *ws, const grape_pe *pe, int64_t pos0,
                                               int B, int T);
// Compute the factors into ws and set *f to them. q, k: (B,T,H,D), the normalised queries/keys the gates read
// (grape-a); may be NULL for other kinds. in: the token inputs (see grape_pe_num_token_inputs).
GRAPE_API grape_status grape_bias_factors_forward(grape_bias_factors **f, void *ws, const grape_pe *pe, const float *q,
                                                  const float *k, const float *const *in, int64_t pos0, int B, int T);
// Channels of the factors: their count, and channel i (GRAPE_ERR_ARG outside [0, count)).
GRAPE_API int grape_bias_num_factors(const grape_bias_factors *f);
GRAPE_API grape_status grape_bias_factor(const grape_bias_factors *f, int i, grape_channel *out);
// Set *g to zeroed gradient channels inside ws (grape_bias_workspace_bytes), shaped like f's channels.
GRAPE_API grape_status grape_bias_grads_bind(grape_bias_grads **g, void *ws, const grape_bias_factors *f);
// Gradient channel i, named and shaped as factor channel i.
GRAPE_API grape_status grape_bias_grad(const grape_bias_grads *g, int i, grape_channel *out);
// Chain factor gradients into parameters (dparams), queries/keys (dq, dk: (B,T,H,D)) and token inputs (din).
GRAPE_API grape_status grape_bias_factors_backward(float *dparams, float *dq, float *dk, float *const *din,
                                                   const grape_bias_grads *g, const grape_bias_factors *f,
                                                   const grape_pe *pe, const float *q, const float *k,
                                                   const float *const *in);

// ALiBi slopes m_h for any head count H (powers of two: 2^(-8h/H); otherwise the interleaved extra slopes).
// slope: (H)
GRAPE_API grape_status grape_alibi_slopes(float *slope, int H);

// KV-shift (official GRAPE code, kv_shift_torch.py): k'_t = alpha_t o_{t-1} + (1 - alpha_t) o_t, o_{-1} = 0,
// alpha = sigmoid(logit), applied to the k (and, separately, v) projections before rotation, QK-RMSNorm and gates.
// y, o: (B,T,H,D), y must not alias o; shift_logit: (B,T,H).
GRAPE_API grape_status grape_kv_shift_forward(float *y, const float *o, const float *shift_logit, int B, int T, int H,
                                              int D);
// do_ += dy-chain into o; dshift_logit += d/dlogit. do_, dy, o: (B,T,H,D); dshift_logit, shift_logit: (B,T,H).
GRAPE_API grape_status grape_kv_shift_backward(float *do_, float *dshift_logit, const float *dy, const float *o,
                                               const float *shift_logit, int B, int T, int H, int D);
// Streaming: one new token per sequence. prev holds o_{t-1} (zeros before the first token) and is replaced by o_t.
// y, o, prev: (B,H,D), y may alias o; shift_logit: (B,H).
GRAPE_API grape_status grape_kv_shift_step(float *y, float *prev, const float *o, const float *shift_logit, int B,
                                           int H, int D);

// ----------------------------------------------------------------------------------------------------------------
// Fused causal attention (flash-style: online softmax over key tiles, the bias generated inside the tiles)

typedef struct {
    float scale;    // logit scale; 0 means 1/sqrt(D)
    int bca_window; // 0: full causal attention; W > 0: LEX blockwise causal attention, window W, query blocks W/2
} grape_attn_opts;

// out: (B,T,H,D); lse: (B,H,T) per-query log-sum-exp, kept for the backward.
// q, k, v: (B,T,H,D) with the rotation already applied to q and k; bias: NULL (no additive action) or factors.
// These two calls allocate their per-thread workspace on every call (the model and the evaluator plan it in their
// arenas instead). The backward's dq, dk, dv and per-token factor gradients have the same bits on any thread
// count that divides B*H evenly (each thread then owns whole (b,h) slices; test_repro).
GRAPE_API grape_status grape_attn_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                          const grape_bias_factors *bias, const grape_attn_opts *opts, int B, int T,
                                          int H, int D);
// dq, dk, dv += gradients; dbias += gradients of the bias factors (NULL when bias is NULL).
GRAPE_API grape_status grape_attn_backward(float *dq, float *dk, float *dv, grape_bias_grads *dbias, const float *dout,
                                           const float *out, const float *lse, const float *q, const float *k,
                                           const float *v, const grape_bias_factors *bias, const grape_attn_opts *opts,
                                           int B, int T, int H, int D);
// BCA (bca_window = W > 0, T > W): query block c = [c W/2, (c+1) W/2) attends keys [(c-1) W/2, t] (LEX, arXiv
// 2212.10554). LEX re-bases positions per window; wherever the relative law holds (the actions rope, xpos with one
// shared anchor, grape-m*, alibi, fox, grape-a; in the model only under the conditions of "When the relative law
// holds") that leaves logits unchanged, so the kernel takes q, k and factors at absolute positions (test_attn_bca
// checks rope and xpos). GRAPE-AP official and paper forms are not relative (key probes are rotated at the absolute
// position l): grape keeps the absolute rotation under BCA, exactly what the streaming cache (which never rewrites
// a cached probe) computes; pass factors from re-based positions yourself to get LEX-style per-window probes.

// ----------------------------------------------------------------------------------------------------------------
// Streaming decode: one KV cache per layer and sequence. Appending token t and attending equals row t of
// grape_attn_forward over the whole prefix (test_kv_cache). The cache owns the position bookkeeping: the next
// position, the grape-m-ctx running phase S (Phi_t = S before adding omega_t), the FoX running sum of log f, and
// it forms the new token's factors with grape_bias_factors_forward (B = T = 1). Cached keys are never rewritten:
// per key it keeps k, v and the key factors (grape-a gate_k, FoX c_j, GRAPE-AP rotated probe r_j).
// Per token (q, k, v of one token: (H,D) each):
//   1. grape_kv_cache_rotate(c, q, k)      rotates q and k in place at the cache's next position;
//   2. the model normalises where its architecture says (QK-RMSNorm after the rotation for rope/grape-m*,
//      before it for xpos: then normalise first and rotate second);
//   3. grape_kv_cache_attend(c, out, q, k, v, gq, gk, in) appends (k, v), attends with q and advances the
//      position. grape-a gates read the q, k given here (the normalised ones), or gq / gk when set (ROT+grape-a
//      hybrids: QKNorm of the un-rotated q, k, so the gates do not depend on the position).
// Encodings without rotation may skip step 1. xPos keeps no single anchor: keys are scaled against the anchor of
// their 256-token block and the query is re-scaled once per block, so magnitudes stay within zeta^(+-1/2) of
// the true ones at any stream length (one global anchor overflows fp32 past ~36k tokens).
// BCA (bca_window = W > 0): a sliding window over the last W keys plus the new one (LEX decoding); the cache is a
// ring of W + 1 keys and the stream is unbounded. Otherwise at most `capacity` tokens. Memory is planned at
// create; nothing is allocated per token by the cache itself. The pe must stay prepared and unchanged.
typedef struct grape_kv_cache grape_kv_cache;

GRAPE_API grape_status grape_kv_cache_create(grape_kv_cache **out, const grape_pe *pe, int capacity, int bca_window);
GRAPE_API void grape_kv_cache_free(grape_kv_cache *c);
// Forget every token (position back to 0, running sums to 0); keeps the memory.
GRAPE_API void grape_kv_cache_reset(grape_kv_cache *c);
// Forget every token; the next token takes position pos0 >= 0 (grape-m-ctx: the running phase starts at S = pos0).
GRAPE_API void grape_kv_cache_reset_at(grape_kv_cache *c, int64_t pos0);
// Position the next token will take (= pos0 of the last reset + tokens appended since).
GRAPE_API int64_t grape_kv_cache_position(const grape_kv_cache *c);
// q, k: (H,D), rotated in place (y == x allowed by grape_rot_forward) at the next position.
GRAPE_API grape_status grape_kv_cache_rotate(grape_kv_cache *c, float *q, float *k);
// out: (H,D); q, k, v: (H,D); in: this token's inputs (grape_pe_num_token_inputs pointers, channel i (width_i)),
// NULL if the encoding has none. gq, gk: (H,D), the q, k the grape-a gates read (NULL: q, k). scale 1/sqrt(D).
GRAPE_API grape_status grape_kv_cache_attend(grape_kv_cache *c, float *out, const float *q, const float *k,
                                             const float *v, const float *gq, const float *gk,
                                             const float *const *in);

// ----------------------------------------------------------------------------------------------------------------
// Byte-level Llama-style language model (pre-norm RMSNorm, SwiGLU, QK-RMSNorm, tied embedding, no biases)
// Per layer: q, k, v and the encoding's token inputs (grape_pe_token_input_info, in its order) are rows of one
// fused projection ("layers.N.attn.wq|wk|wv|w_<name>": w_phase, w_gate, w_probe, w_shift_k, w_shift_v; biases
// "attn.b_<name>" for the channels with one: b_phase, b_gate); the encoding's
// own parameters are "layers.N.pe.<name>". Order: rotate then QK-RMSNorm (official), xpos: QK-RMSNorm then xPos
// (anchor at the batch's centre: a forward serves T <= 2*84*sb/|ln zeta_0| = 68660 tokens at the defaults, longer
// ones fail with GRAPE_ERR_UNSUPPORTED; the decoder's block anchors need no such limit). grape-m-basis applies the spec's B R B^T, then
// QK-RMSNorm; pe.basis_folded = 1 folds B^T into the q/k rows instead (the gain then acts in the B frame and the
// model equals grape-m). Pure grape-a gates read QKNorm(q), QKNorm(k); ROT+grape-a-* gates read QKNorm of the
// UN-rotated q, k. QK-RMSNorm gains: per dimension (official) or pair-tied (pe.qk_gain = GRAPE_QK_GAIN_PAIR).
// KV-shift (pe.kv_shift) mixes the previous token's k, v projections (gate rows "w_shift") in before rotation,
// QK-RMSNorm and gates.
//
// When the relative law holds (logits unchanged by grape_model_set_position_offset, tested at 1, 1e3, 1e6):
//   rope, grape-m, grape-m-ctx (phase origin): when the two gains of every rotation pair are equal (always with
//     qk_gain = pair; with per-dimension gains only while they stay equal, e.g. all 1);
//   xpos: always (the gain precedes the rotation); ROT+grape-a-*: whenever ROT's law holds (gates are position-free);
//   grape-m-basis (spec order) and grape-m-nc: only when the gain is constant on the rotary dims (pair-tied gains do
//     not commute with B or E); grape-m-basis folded: as grape-m;
//   alibi, fox, grape-a: always; grape-ap: official v1 is absolute (see GRAPE-AP), the relative form is relative.

typedef struct {
    int n_layer;    // L
    int n_embd;     // C
    int n_head;     // H (head dim D = C/H)
    int vocab_size; // 256 (bytes)
    int max_batch;  // B the activation arena is planned for
    int max_seq;    // T the activation arena is planned for
    grape_pe_config pe; // encoding (n_heads/head_dim are filled in from n_head and n_embd)
} grape_model_config;

typedef struct grape_model grape_model; // opaque: one arena for params, grads and activations

typedef struct {
    const char *name; // e.g. "layers.0.attn.wq"
    size_t offset;    // in floats into the parameter (and gradient) vector
    int ndim;
    int shape[4];
    int weight_decay; // 0 for RMSNorm gains
} grape_tensor_info;

GRAPE_API grape_status grape_model_create(grape_model **out, const grape_model_config *cfg);
GRAPE_API void grape_model_free(grape_model *m);
GRAPE_API const grape_model_config *grape_model_get_config(const grape_model *m);
GRAPE_API size_t grape_model_num_params(const grape_model *m);
GRAPE_API float *grape_model_params(grape_model *m); // contiguous, so a gradient step can be all-reduced as one vector
GRAPE_API float *grape_model_grads(grape_model *m);
GRAPE_API int grape_model_num_tensors(const grape_model *m);
GRAPE_API const grape_tensor_info *grape_model_tensor(const grape_model *m, int i);
// Initialise as the official GRAPE code does (init_llama_mha_weights), deterministically from seed.
GRAPE_API grape_status grape_model_init(grape_model *m, uint64_t seed);
// Re-derive encoding tables after the parameters changed (optimizer step, checkpoint load, any write through
// grape_model_params): forwards, decoders and evaluators use the tables of the last call, they do not re-derive them.
GRAPE_API grape_status grape_model_params_changed(grape_model *m);
// tokens, targets: (B,T) bytes. Computes the mean cross-entropy (nats) into *loss; targets NULL skips the loss.
GRAPE_API grape_status grape_model_forward(grape_model *m, const uint8_t *tokens, const uint8_t *targets, int B, int T,
                                           float *loss);
// Gradients of the last forward's mean loss, accumulated (+=) into grape_model_grads.
GRAPE_API grape_status grape_model_backward(grape_model *m);
GRAPE_API void grape_model_zero_grad(grape_model *m);
// Logits of the last forward: (B,T,V).
GRAPE_API const float *grape_model_logits(const grape_model *m);

// Presets: "tiny" (L=4, C=256, H=4, T=256, max_batch 16), "small" (L=6, C=384, H=6, T=512,
// max_batch 8); and "micro" (L=2, C=64, H=2, T=64, max_batch 8) for CI's end-to-end runs; vocab 256, encoding nope (set cfg->pe with grape_pe_parse afterwards). Any other size: fill
// grape_model_config directly.
GRAPE_API grape_status grape_model_preset(grape_model_config *cfg, const char *name);
// Attention options of every layer (default: scale 1/sqrt(D), full causal; bca_window > 0 for LEX BCA eval).
GRAPE_API grape_status grape_model_set_attn_opts(grape_model *m, const grape_attn_opts *opts);
// Position of token 0 in later forwards and in decoder streams started after it (default 0); grape-m-ctx's phase
// then starts at Phi_0 = pos0. Where the relative law holds (see above) the logits do not depend on it
// (test_model checks rope, xpos, grape-m, grape-m-ctx and the ROT+grape-a-* hybrids at pos0 = 1, 1e3, 1e6).
GRAPE_API grape_status grape_model_set_position_offset(grape_model *m, int64_t pos0);

// Checkpoints: DIR/model.safetensors, the file `grape train` writes and `grape sample` reads (format:
// docs/TRAINING.md). Tensors are F32 under their grape_tensor_info names; the configuration is in the metadata.
// Build the model described by DIR's checkpoint and load its weights (AdamW moments, if any, are ignored).
// max_batch, max_seq: the activation plan; 0 keeps the checkpoint's. A missing file is GRAPE_ERR_IO, a corrupt
// or foreign one GRAPE_ERR_FORMAT (a tensor of the wrong shape, a non-finite weight, an extra tensor, a config
// needing more parameters than the file holds: docs/RELIABILITY.md), each with a message naming the file; *out
// is NULL on failure.
GRAPE_API grape_status grape_model_load(grape_model **out, const char *dir, int max_batch, int max_seq);
// Write m's weights and configuration to DIR/model.safetensors (DIR created with its parents), atomically.
// The checkpoint holds no optimizer or training state: grape_model_load and `grape sample` read it; `grape train
// --resume` refuses it.
GRAPE_API grape_status grape_model_save(grape_model *m, const char *dir);

// Streaming decode (sampling, step-by-step evaluation): one grape_kv_cache per layer and sequence, `batch`
// sequences advancing in lockstep. Each step projects the new tokens, applies KV-shift, QK-RMSNorm and the rotation
// in the model's order, and attends through the cache (bias rows regenerated from cached key factors). Step t's
// logits equal the full forward's logits at position t. With grape_model_set_attn_opts(bca_window = W) the caches
// are LEX sliding windows (W keys + the new one) and the stream is unbounded; otherwise at most max_len tokens.
// Memory is allocated at create; the decoder sees the parameters as they are at its first step after a reset.
typedef struct grape_decoder grape_decoder;
GRAPE_API grape_status grape_decoder_create(grape_decoder **out, const grape_model *m, int batch, int max_len);
GRAPE_API void grape_decoder_free(grape_decoder *d);
// Forget every cached token (start new sequences at position 0).
GRAPE_API void grape_decoder_reset(grape_decoder *d);
// Tokens consumed so far per sequence.
GRAPE_API int64_t grape_decoder_position(const grape_decoder *d);
// Feed tokens (batch) at position grape_decoder_position(d); logits: (batch, V) predicting the next token.
// The model's parameters must not change between grape_decoder_reset and the last step of a stream; the model's
// attention scale must be the default 1/sqrt(D) (GRAPE_ERR_UNSUPPORTED at create otherwise).
GRAPE_API grape_status grape_model_decode_step(grape_model *m, grape_decoder *d, const uint8_t *tokens, float *logits);

// ----------------------------------------------------------------------------------------------------------------
// Evaluation: forward-only scoring of long windows (grape eval). No gradient arena and memory O(T): the residual
// stream and the attention inputs of one layer are kept for the whole window (the fused attention needs every
// key), everything token-wise (norms, projections, MLP, logits, loss) runs in chunks of GRAPE_EVAL_CHUNK tokens.
// It runs the training forward's own pieces, so its logits are the full forward's (test_eval: same BPB within
// 1e-5 relative as grape_model_forward and grape_model_decode_step). Attention as grape_model_set_attn_opts says
// (full causal, or LEX BCA with bca_window > 0).
#define GRAPE_EVAL_CHUNK 512

typedef struct grape_evaluator grape_evaluator;
// Plan for windows of up to max_T tokens of one sequence. The model's own activation plan may be as small as
// 1 x 1 (grape_model_load(&m, dir, 1, 1)). Scoring uses the parameters as they are here: after changing them,
// call grape_model_params_changed (as after any optimizer step) before the next grape_model_score.
GRAPE_API grape_status grape_evaluator_create(grape_evaluator **out, grape_model *m, int max_T);
GRAPE_API void grape_evaluator_free(grape_evaluator *e);
// Bytes the evaluator allocated (its buffers, not the model's).
GRAPE_API size_t grape_evaluator_bytes(const grape_evaluator *e);
// Score one window scored from an empty context. tokens, targets: (T) bytes; loss: (T) cross-entropy in nats at
// every position, or NULL; *nats: their sum in double. A NaN or infinite logit is GRAPE_ERR_NUMERIC.
GRAPE_API grape_status grape_model_score(grape_evaluator *e, const uint8_t *tokens, const uint8_t *targets, int T,
                                         float *loss, double *nats);
// Optional observer: called in every layer of grape_model_score after the attention inputs are ready, with the
// encoded q, k (T,H,D) and the bias factors (NULL without an additive action), e.g. to measure LEX attention
// resolution; a status it returns other than GRAPE_OK stops the scoring with it. fn NULL removes it.
typedef grape_status (*grape_eval_observer)(void *ctx, int layer, const float *q, const float *k,
                                    const grape_bias_factors *bias, int T);
GRAPE_API void grape_evaluator_observe(grape_evaluator *e, grape_eval_observer fn, void *ctx);
// Optional output of grape_model_score: argmax[t] := the most likely next byte at position t (the first of equal
// largest logits), for t < T; argmax must hold the evaluator's max_T bytes. NULL stops it. (grape passkey: exact
// match under teacher forcing.)
GRAPE_API void grape_evaluator_argmax(grape_evaluator *e, uint8_t *argmax);

// ----------------------------------------------------------------------------------------------------------------
// Training: the trainer behind `grape train` (docs/TRAINING.md, "Embedding the trainer"). A run lives in a
// directory: DIR/model.safetensors (weights, AdamW moments, this configuration and the trainer's state, written
// atomically) and DIR/metrics.jsonl (one line per logged step). A step samples batch x seq windows (grad_accum
// micro-batches), runs forward and backward, sums the gradient over the group (if any), clips it, applies AdamW
// with warmup + cosine decay, then validates, logs and checkpoints on the configured intervals. Same
// configuration, seed and OpenMP thread count => the same bytes; a resumed run continues bit-exactly.

#define GRAPE_CHECKPOINT_FILE "model.safetensors"
#define GRAPE_METRICS_FILE "metrics.jsonl"
#define GRAPE_TRAIN_PATH_MAX 1024
#define GRAPE_TASK_MIX_MAX 64

typedef struct {
    double lr;           // peak learning rate [1e-3]
    double min_lr_ratio; // cosine floor as a fraction of the peak [0.1]
    int64_t warmup;      // linear warmup steps; < 0: min(100, steps/10)
    int64_t decay_steps; // the cosine reaches the floor at this step and stays there; < 0: steps
    double beta1, beta2, eps; // [0.9, 0.95, 1e-8]
    double weight_decay;      // decoupled (p *= 1 - lr*wd), not on RMSNorm gains [0.1]
    double clip;              // global gradient-norm limit, <= 0: none [1.0]
} grape_adamw_config;

// Every field that shapes the trajectory is stored in the checkpoint. Defaults in [] (grape_train_config_default),
// each the `grape train` flag of the same name.
typedef struct {
    char preset[16];                    // "micro", "tiny", "small": the model shape when model is unset [tiny]
    char pe_name[GRAPE_PE_NAME_MAX];    // encoding name with options (grape_pe_parse) [rope]
    grape_model_config model;           // vocab_size 0: built by grape_train_config_resolve from preset, pe_name
                                        // and n_layer/n_embd/n_head (> 0 overrides the preset's); else as given
    char data[GRAPE_TRAIN_PATH_MAX];    // corpus file or directory [data/kjv.txt]
    char doc_sep[64];                   // document separator of a single-file corpus, "" = none
    char task_mix[GRAPE_TASK_MIX_MAX];  // "passkey:F[,key=N][,pairs=P][,same=0|1]" rows mixed in, "" = none
    int batch, seq;                     // sequences per micro-batch and their length; 0: the preset's
    int grad_accum;                     // micro-batches per step [1]
    int accum_mean;                     // 0: sum the micro-batch mean losses (official GRAPE code); 1: average
    int64_t steps;                      // optimizer steps of the run [1000]
    grape_adamw_config opt;
    uint64_t seed;                      // model init and data order [42]
    int64_t eval_interval;              // steps between validations, 0: only at the last step [250]
    int64_t eval_batches;               // validation batches of `batch` fixed windows [8]
    int64_t log_interval;               // steps between metrics.jsonl lines [10]
    int64_t save_interval;              // steps between checkpoints, 0: only at the last step [1000]
    int threads;                        // OpenMP threads: > 0 is set (omp_set_num_threads) at create/resume, 0 keeps
                                        // the current count; the count is recorded (another count may change the
                                        // last bits)
    int skip_nonfinite;                 // a NaN/Inf loss or gradient: 0 fails the step (GRAPE_ERR_NUMERIC), 1
                                        // skips it (batch consumed, no update, no metrics line). Not stored.
} grape_train_config;

// Where a run stands; stored in the checkpoint (elapsed excepted: it continues from metrics.jsonl).
typedef struct {
    int64_t step;                   // optimizer steps completed
    uint64_t rng;                   // data sampler state
    int64_t tokens;                 // training tokens consumed
    double elapsed;                 // wall-clock seconds of training, all runs
    double last_val;                // last validation BPB of the loop, NaN before the first
    uint64_t data_bytes, data_docs; // identity of the corpus, checked on resume
} grape_train_state;

// One completed step (grape_trainer_step).
typedef struct {
    int64_t step, steps;
    double loss;          // mean micro-batch loss (nats)
    double lr, grad_norm; // grad_norm before clipping
    double tokens_per_s;  // over the steps since the previous logged step
    double elapsed, eta;  // seconds
    double val_bpb;       // this step's validation, NaN if none ran
    double last_val_bpb;  // latest validation so far, NaN if none
    int logged;           // this step wrote a metrics.jsonl line
    int skipped;          // non-finite loss or gradient, skipped (skip_nonfinite)
} grape_train_report;

// Data parallelism (docs/DISTRIBUTED.md): the processes training one model, each on rows
// [rank*B/size, (rank+1)*B/size) of every micro-batch (size divides batch). The trainer calls these collectives,
// never a transport itself (grape's CLI plugs MPI in from src/cli/dist_mpi.c; libgrape never links MPI). Each must
// return the same bits on every rank. Per step: sum_f32 once on the whole gradient vector (one contiguous
// float32 vector, grape_model_grads), sum_f64 once on {loss, stop request}; per checkpoint: gather_u64 once (the
// ranks' checksums of parameters and AdamW moments, compared before saving). With size 1 they are still called
// once per step, so a caller may observe or alter the gradient.
typedef struct {
    int rank, size;
    void *ctx;
    grape_status (*sum_f32)(float *v, size_t n, void *ctx);           // v: (n) -> element-wise sum over ranks
    grape_status (*sum_f64)(double *v, size_t n, void *ctx);          // v: (n) -> element-wise sum over ranks
    grape_status (*gather_u64)(uint64_t v, uint64_t *all, void *ctx); // all: (size), rank r's v in all[r]
} grape_train_group;

// Defaults above (model unset, batch and seq 0: the preset's).
GRAPE_API void grape_train_config_default(grape_train_config *cfg);
// Fill what the configuration leaves to defaults: the model (vocab_size 0) from preset and the size overrides,
// batch and seq from the preset when 0, model.max_batch/max_seq = batch/seq, the schedule (warmup, decay_steps
// < 0); pe_name and task_mix become canonical (pe_name parsed onto model.pe). A bad preset, encoding or task mix
// is GRAPE_ERR_ARG naming it. grape_trainer_create calls it; calling it first shows the resolved values.
GRAPE_API grape_status grape_train_config_resolve(grape_train_config *cfg);
// The configuration and state stored in DIR's checkpoint (either may be NULL), checked as grape_trainer_resume
// checks them before allocating anything: GRAPE_ERR_IO when it is missing, GRAPE_ERR_FORMAT naming the file and
// the problem when it is malformed, weights-only (grape_model_save) or describes an impossible model.
GRAPE_API grape_status grape_train_checkpoint(grape_train_config *cfg, grape_train_state *st, const char *dir);

typedef struct grape_trainer grape_trainer; // opaque: model, AdamW state, corpus, sampler, metrics log

// A fresh run into dir (created with its parents): the model initialised from cfg->seed, metrics.jsonl truncated.
// Nothing is written to the checkpoint before the first save. group NULL: one process; else every rank creates
// its trainer with the same cfg, and only rank 0 writes files and validates. Impossible values are GRAPE_ERR_ARG
// naming the `grape train` flag; a missing corpus GRAPE_ERR_IO. *out is NULL on failure.
GRAPE_API grape_status grape_trainer_create(grape_trainer **out, const grape_train_config *cfg, const char *dir,
                                            const grape_train_group *group);
// Continue dir's checkpoint bit-exactly. cfg NULL: its stored configuration; else the run takes cfg's steps, data
// (the same corpus bytes: checked), eval_interval, eval_batches, log_interval, save_interval, threads and
// skip_nonfinite, and everything else from the checkpoint. metrics.jsonl is cut after the checkpoint's step.
// A weights-only or corrupt checkpoint is GRAPE_ERR_FORMAT, a missing one GRAPE_ERR_IO, each naming the file.
GRAPE_API grape_status grape_trainer_resume(grape_trainer **out, const char *dir, const grape_train_config *cfg,
                                            const grape_train_group *group);
GRAPE_API void grape_trainer_free(grape_trainer *t);
// One optimizer step, then its validation, metrics line and checkpoint when their intervals say (the last step
// always validates and saves), reported in *r. With a group every rank calls it. A step past the configured steps
// is GRAPE_ERR_ARG. When a stop was requested (one process: grape_trainer_request_stop since the last step; a
// group: on any rank, seen at the previous step's sum, so every rank stops after the same step) it saves a
// checkpoint instead and returns GRAPE_ERR_INTERRUPTED. A non-finite loss or gradient norm is GRAPE_ERR_NUMERIC
// (no update applied, the checkpoint on disk stays the last good one) unless skip_nonfinite.
GRAPE_API grape_status grape_trainer_step(grape_trainer *t, grape_train_report *r);
// Ask the trainer to save and stop at its next grape_trainer_step. Call it between steps (not from a signal
// handler: set a flag there and call this from the training thread).
GRAPE_API void grape_trainer_request_stop(grape_trainer *t);
// Called after every step of grape_trainer_run; a nonzero return requests a stop.
typedef int (*grape_train_callback)(const grape_train_report *r, void *ctx);
// Step until the configured steps (a run already there saves its checkpoint once), calling fn (may be NULL) after
// each step (with a group: on every rank). Returns the first failure of grape_trainer_step.
GRAPE_API grape_status grape_trainer_run(grape_trainer *t, grape_train_callback fn, void *ctx);
// Validation bits per byte over the configured eval_batches x batch fixed windows of the validation split, as
// the loop validates (a measurement: the state and the checkpoint do not change; no collective).
GRAPE_API grape_status grape_trainer_evaluate(grape_trainer *t, double *val_bpb);
// Write the checkpoint now (atomically). With a group every rank calls it: the ranks' checksums are compared
// first (GRAPE_ERR_NUMERIC naming the ranks when they differ, nothing written), rank 0 writes.
GRAPE_API grape_status grape_trainer_save(grape_trainer *t);
// The model being trained (its parameters change at every step: call grape_model_params_changed after writing
// them), the run's resolved configuration and its state.
GRAPE_API grape_model *grape_trainer_model(grape_trainer *t);
GRAPE_API const grape_train_config *grape_trainer_config(const grape_trainer *t);
GRAPE_API const grape_train_state *grape_trainer_state(const grape_trainer *t);

// ----------------------------------------------------------------------------------------------------------------
// Bindings: the layouts of the public structs a binding fills or reads, so it is built from the library rather
// than from a copy of this header (tests/torch/common.py builds its ctypes structures this way).

typedef struct {
    const char *name; // the field's name in this header
    size_t offset;    // offsetof
    size_t size;      // sizeof the field
    const char *type; // "int" (also enums), "int64", "size_t", "float", "double", "float*", "double*", "void*",
                      // "char*", "int[4]", or the name of a described struct ("grape_pe_config")
} grape_field_info;
// Fields of the struct named `name` in declaration order, their count and sizeof the struct. Described:
// grape_pe_config, grape_model_config, grape_param_info, grape_tensor_info, grape_positions,
// grape_token_input_info, grape_channel, grape_attn_opts. GRAPE_ERR_ARG for any other name. (Token inputs and
// bias factors are lists of channels read through grape_pe_token_input_info and grape_bias_factor.)
GRAPE_API grape_status grape_struct_describe(const char *name, const grape_field_info **fields, int *n_fields,
                                             size_t *size);

#ifdef __cplusplus
}
#endif
#endif // GRAPE_H
