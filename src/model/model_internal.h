// model_internal.h — the grape_model object: one arena holding parameters, gradients, activations and scratch,
// planned up front for (max_batch, max_seq). Shared by model.c (config, plan, init), model_fwd.c (forward,
// backward) and decode.c (streaming decode).
#ifndef GRAPE_MODEL_INTERNAL_H
#define GRAPE_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

#define MODEL_NORM_EPS 1e-5f
#define MODEL_MAX_TENSORS_PER_LAYER 24
#define MODEL_NAME_LEN 48

// Order of q/k RMSNorm and rotation (official GRAPE code, model/llama-mha-*.py): rotations rotate then normalise; xPos
// normalises first so its decay survives; no rotation just normalises.
typedef enum { QK_NORM_ONLY = 0, QK_ROT_THEN_NORM, QK_NORM_THEN_ROT } qk_order;

// Per-token encoding inputs are extra output columns of the fused QKV projection, one block per channel of the
// encoding's list (grape_pe_token_input_info), in its order.
#define MODEL_MAX_INPUTS 8
typedef struct {
    int n;                         // channels
    int width[MODEL_MAX_INPUTS];   // values per token
    int col[MODEL_MAX_INPUTS];     // column offset inside the (3C + E) projection row
    int bias[MODEL_MAX_INPUTS];    // offset of its learned bias inside the layer's b_tok, -1 without
    int E, E_bias;                 // sum of the widths; of the widths with a bias
    int phase, shift_k, shift_v;   // the channels the model applies itself (grape-m-ctx phase, KV-shift gates), or -1
} tok_layout;

// Width of channel i (0 for i = -1: the encoding lacks it).
static inline int tok_width(const tok_layout *tl, int i) { return i >= 0 ? tl->width[i] : 0; }

// Offsets (in floats) of one layer's tensors inside the parameter vector (the gradient vector mirrors it).
typedef struct {
    size_t ln1, wqkv, b_tok, q_norm, k_norm, wo, pe, ln2, w12, w3;
} layer_offsets;

// Pointers to one layer's tensors in either the parameter or the gradient vector.
typedef struct {
    float *ln1;     // (C)
    float *wqkv;    // (3C + E, C): rows wq | wk | wv | w_<name> of each token input channel
    float *b_tok;   // (E_bias): b_<name> of each channel with a bias, in channel order; NULL without
    float *q_norm;  // (G), shared across heads: G = D per-dimension gains, D - R/2 pair-tied (model_qk_gain)
    float *k_norm;  // (G)
    float *wo;      // (C, C)
    float *pe;      // the encoding's parameter vector (may be empty)
    float *ln2;     // (C)
    float *w12;     // (2F, C): rows w1 | w2
    float *w3;      // (C, F)
} layer_view;

// Saved activations of one layer, sized for N = max_batch * max_seq tokens.
typedef struct {
    float *x;            // (N,C) layer input (residual stream)
    float *ln1, *rstd1;  // (N,C), (N)
    float *qraw, *kraw;  // (B,T,H,D) projected q, k (k after KV-shift)
    float *v;            // (B,T,H,D) (after KV-shift)
    float *ko, *vo;      // (B,T,H,D) pre-shift k, v projections (KV-shift only)
    float *qmid, *kmid;  // (B,T,H,D) between rotation and norm (NULL without rotation)
    float *q, *k;        // (B,T,H,D) final q~, k~ fed to attention
    float *rstdq, *rstdk; // (N*H)
    float *qg, *kg;      // (B,T,H,D) ROT+grape-a-* hybrids: un-rotated QKNorm(q), QKNorm(k) the gates read; else NULL
    float *rstdqg, *rstdkg; // (N*H) their RMSNorm statistics
    float *tok;          // (N*E) channel-major: channel i is the block (N, width_i) at N*(col_i - 3C)
    double *phase;       // (N*phase) grape-m-ctx phase Phi, or NULL
    void *bias_ws;       // bias factor workspace (NULL without a bias)
    grape_bias_factors *f; // the factors in bias_ws of the last forward
    float *att, *lse;    // (B,T,H,D), (B,H,T)
    float *xmid;         // (N,C) residual after attention
    float *ln2, *rstd2;  // (N,C), (N)
    float *h12, *act;    // (N,2F), (N,F)
} layer_acts;

// Backward scratch shared by all layers.
typedef struct {
    float *qkv;                // (N, 3C+E) forward projection output before the split
    float *dx, *dln, *datt;    // (N,C)
    float *dq, *dk, *dv;       // (N,C)
    float *dqmid, *dkmid;      // (N,C)
    float *dqraw, *dkraw;      // (N,C)
    float *dko, *dvo;          // (N,C) KV-shift only
    float *dqkv;               // (N, 3C+E)
    float *dwfold;             // (3C+E, C) gradient of the folded projection (grape-m-basis only)
    float *dh12, *dact;        // (N,2F), (N,F)
    float *dlogits;            // (N,V)
    float *dtok;               // (N*E)
    double *dphase;            // (N*phase)
    void *dbias_ws;            // bias gradient workspace
    void *attn_ws;             // attention workspace of forward and backward (attn_workspace_bytes)
    float *dgain;              // (2, D) pair-tied gains: gradient of the expanded q, k gains before tying
} model_scratch;

struct grape_model {
    grape_model_config cfg;
    int C, H, D, F, V, L, Ctot; // Ctot = 3C + E
    qk_order order;
    tok_layout tl;
    grape_pe **pe;           // (L) one encoding object per layer
    layer_offsets *off;      // (L)
    size_t off_wte, off_lnf, n_params;
    int n_tensors;
    grape_tensor_info *tensors;
    char (*names)[MODEL_NAME_LEN];
    size_t bias_ws_bytes;
    size_t attn_ws_bytes;    // for max_seq and the threads of model creation (at least one per core)
    // arena
    void *arena;
    size_t arena_bytes;
    float *params, *grads;
    layer_acts *acts;        // (L+1): acts[L].x is the final residual
    float **wfold;           // (L) grape-m-basis folded: wqkv with B^T folded into the q, k rows (Ctot, C); else NULL
    int G;                   // QK-RMSNorm gain parameters per tensor: D, or D - R/2 pair-tied
    int *gain_idx;           // (D) pair-tied: parameter index of each head dimension's gain; NULL per-dimension
    float *gain_full;        // (L, 2, D) pair-tied: the expanded q, k gains (refreshed by params_changed); else NULL
    int64_t pos0;            // position of token 0 (grape_model_set_position_offset)
    int gated;               // ROT+grape-a-* hybrid: the gates read QKNorm of the un-rotated q, k
    float *lnf, *rstdf, *logits, *lse_ce; // (N,C), (N), (N,V), (N)
    uint8_t *tokens, *targets;            // (N) copies of the last batch
    model_scratch s;
    grape_attn_opts attn_opts;
    // Parameter versions: grape_model_params_changed bumps version; the tables (encodings, fold, gains) were
    // derived at version prepared. A forward re-derives them only when the two differ (a failed derivation).
    uint64_t version, prepared;
    // last forward
    int B, T, has_loss;
};

// The encoding step of q or k for a (B,T) block at positions pos0 + t (grape-m-ctx: phase, which includes pos0).
typedef struct {
    grape_pe *pe;
    int64_t pos0;
    const double *phase;
    int B, T, H, D;
    qk_order order;
} qk_ctx;

layer_view model_layer(const grape_model *m, float *base, int l);
// The fused projection the GEMMs use: the folded copy for grape-m-basis, else the parameters.
const float *model_wqkv(const grape_model *m, int l);
// Split n fused projection rows (n, 3C+E) into rows [n0, n0+n) of q, k, v (N,C) and of the kind-major token
// inputs (N*E, biases added).
void model_split_qkv(float *q, float *k, float *v, float *tok, const float *qkv, const layer_view *p,
                     const grape_model *m, size_t n0, size_t n, size_t N);
// out = QKNorm/rotation of raw in c->order; mid: the intermediate (NULL for QK_NORM_ONLY); rstd: (B*T*H);
// g: the (D) gain (model_qk_gain). xPos takes the anchor at the block's centre (model_fwd.c: why).
grape_status model_qk_forward(float *out, float *mid, float *rstd, const float *raw, const float *g,
                              const qk_ctx *c, grape_side side);
// The vectors the grape-a gates of layer l read (*gq, *gk): the attention's a->q, a->k, or for ROT+grape-a-*
// hybrids QKNorm of the un-rotated a->qraw, a->kraw written to a->qg, a->kg (GRAPE App. E: gates of rotated vectors
// would depend on the absolute position). Call after model_qk_forward; N = B*T tokens.
void model_gate_inputs(const grape_model *m, layer_acts *a, int l, size_t N, const float **gq, const float **gk);
// The (D) QK-RMSNorm gain of layer l: the parameters (per-dimension) or their pair-tied expansion.
const float *model_qk_gain(const grape_model *m, int l, grape_side side);
// Tie a (D) gain gradient dg_full into the layer's gain tensor gradient dg (G floats): dg[idx[i]] += dg_full[i].
void model_qk_gain_tie(const grape_model *m, float *dg, const float *dg_full);
// Forward pieces on the buffers of a layer_acts view, shared by the training forward (every row at once) and the
// evaluator (model_infer.c: token chunks, whole-window attention). Projection of rows [n0, n0+n) of N from the n
// rows of a->ln1; qkv: (n, Ctot) scratch.
grape_status model_attn_project(const grape_model *m, int l, const layer_acts *a, float *qkv, size_t n0, size_t n,
                                size_t N);
// KV-shift, ctx phase, q/k path, bias factors (into a->f) and attention over (B,T) into a->att, a->lse.
grape_status model_attn_mix(const grape_model *m, int l, layer_acts *a, int B, int T, void *attn_ws,
                            size_t attn_ws_bytes);
// GRAPE-AP's probe dim P (the attention workspace plans P-wide tiles), 0 for other encodings.
int model_probe_dim(const grape_model *m);
// Derive the parameter tables unless they are current (grape_model_params_changed bumps the version).
grape_status model_prepare(grape_model *m);
// n rows: a->xmid = a->x + a->att W_o^T; a->xmid may alias a->x.
grape_status model_attn_out(const grape_model *m, int l, const layer_acts *a, size_t n);
// n rows: next = a->xmid + W_3 SwiGLU(W_12 RMSNorm(a->xmid)) through a's ln2, rstd2, h12, act; next may alias xmid.
grape_status model_mlp_forward(const grape_model *m, int l, const layer_acts *a, float *next, size_t n);
// Pointers in[i] to the channels of a channel-major token block tok of N tokens (in: MODEL_MAX_INPUTS), token
// `first` of each channel's block.
void model_token_inputs(float **in, const grape_model *m, const float *tok, size_t N, size_t first);

#endif
