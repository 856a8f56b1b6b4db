// rot_internal.h — state of the multiplicative action and the functions its files share, by layer:
//   shared kernels (rot_kernels.h: pair rotation, frame rows, cos/sin rows, Cayley) ← kinds (rope.c rope_ext.c
//   xpos.c grape_m.c grape_m_ctx.c grape_m_basis.c grape_m_nc.c) ← dispatcher (rot_config.c: validation,
//   layout, derived tables; rot_table.c: the angles of a call; rotation.c: token loops, workspace).
// Each layer calls only the layers to its left.
//
// Every rotation here is G(n) = F · R(φ(n)) · Fᵀ restricted to the first R ("rotary") dims of a head, where
//   R(φ) rotates pairs with the official sign  y_a = a cos φ + b sin φ,  y_b = −a sin φ + b cos φ
//   (github.com/model-architectures/GRAPE model/*.py), pairs (i, i+P) half-split or (2i, 2i+1) interleaved;
//   F = I (rope, xpos, grape-m, grape-m-ctx), B = Cayley(A) (grape-m-basis), or the frame E (grape-m-nc,
//   x ↦ x + E(R − I)Eᵀx). The tail dims R..D are left untouched.
#ifndef GRAPE_PE_ROT_INTERNAL_H
#define GRAPE_PE_ROT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mem.h"
#include "pe/rot_kernels.h"
#include "pe/rot_kinds.h"
#include "pe/rotation.h"

// Calls over fewer tokens than this run on the calling thread: starting a team costs more than the few rows it
// would split (a decode step rotates one token, twice).
#define ROT_PAR_MIN_TOKENS 64

// Tables derived from the parameters, in double (the fast kernels use float copies).
typedef struct {
    double *theta; // (nset, npair) angular frequency of each pair
    double *basis; // (nset, R, R) B = Cayley(A) for grape-m-basis / grape-m-nc, else NULL
    double *cay_m; // (nset, R, R) M = (I + A)^-1, kept for the Cayley backward
    double *scratch; // (n_params + 3 R R) deriving them: the parameters in double, A, the Cayley work; else NULL
} rot_tables;

// The one block every grape_rot_forward/backward call carves its tables and scratch from (rotation.c): sized by
// grape_pe_reserve and grown by a larger call, held by one call at a time.
typedef struct {
    void *mem;
    size_t bytes;
    atomic_flag busy;     // set while a call uses mem; a concurrent call on the same encoding gets a private block
    atomic_size_t allocs; // calls that allocated (grew mem or took a private block); read by tests
} rot_workspace;

struct rot_state {
    grape_pe_config cfg;
    grape_rot_kind kind;
    const rot_kind *kd; // its row of the kind table
    int H, D, R;      // heads, head dim, rotary dims
    int npair;        // rotated pairs: R/2, or r/2 for grape-m-nc
    int frame;        // width of the rotated frame: R, or r for grape-m-nc
    int nset;         // independent parameter sets: H with per_head (learned kinds), else 1
    int phase_heads;  // grape-m-ctx: H when the phase is per head, else 1
    double mscale;    // YaRN attention factor applied to cos and sin (1 otherwise)
    double *theta0;   // (npair) fixed / initial frequencies after context extension
    double *ln_zeta;  // (npair) xPos: ln ζ_i
    size_t n_freq;    // log-frequency floats per set (0 for rope, xpos, nope)
    size_t n_skew;    // skew-parameter floats per set (basis, nc)
    size_t n_params;  // nset · (n_freq + n_skew)
    rot_tables tab;   // derived by rot_prepare
    float *ft;        // (nset, frame, R) float rows of Fᵀ (Bᵀ or Eᵀ) for the fast kernels
    float *fb;        // (nset, R, R) float rows of B (grape-m-basis only)
    float *fe;        // (nset, R, fpad) float rows of E, zero-padded to fpad columns (grape-m-nc projections)
    int fpad;         // frame rounded up to ROT_FRAME_LANES (grape-m-nc)
    int prepared;
    rot_workspace work;
};

// ===================================== kinds =====================================

// ---- rope.c / rope_ext.c: frequencies
// θ_i for npair pairs (n_dims = 2·npair) after the configured context extension; *mscale gets YaRN's factor.
void rope_theta_table(double *theta, double *mscale, const grape_pe_config *cfg, int npair);
// Base after the NTK-aware rescale (unchanged for other scalings).
double rope_ext_base(const grape_pe_config *cfg, int n_dims);
// Apply PI or YaRN to θ in place; returns the cos/sin scale (YaRN mscale, else 1).
double rope_ext_apply(double *theta, const grape_pe_config *cfg, int npair);
// YaRN correction range of pair indices [low, high] (llama.cpp ggml_rope_yarn_corr_dims).
void rope_yarn_corr_dims(double dims[2], int n_dims, int n_ctx_orig, double base, double beta_fast,
                         double beta_slow);

// ---- xpos.c
void xpos_ln_zeta(double *ln_zeta, const grape_pe_config *cfg, int npair);
// Exponent e of ζ^e at absolute position n: (n − c)/sb for queries, (c − n)/sb for keys.
double xpos_exponent(const grape_pe_config *cfg, double n, double anchor, grape_side side);
// A clear error when a call's scale ζ^(±d/sb) would leave the float range (T tokens from pos->pos0).
grape_status xpos_check_range(const rot_state *r, const grape_positions *pos, grape_side side, int T);

// ---- grape_m.c: learned log-frequencies
// θ = exp(λ / scale) (grape-m, scale = log_freq_scale) or exp(λ) (grape-m-ctx).
double rot_freq_scale(const rot_state *r);
void rot_log_freq_init(const rot_state *r, float *log_freq);
// dλ += dθ · θ / scale for every set.
void rot_log_freq_backward(const rot_state *r, float *dlog_freq, const double *dtheta);

// ---- grape_m_basis.c / grape_m_nc.c: skew parameters ↔ A
// A (R×R, skew) from one set's skew params; dS += the adjoint of that map applied to dA.
void basis_skew_to_A(double *A, const double *skew, int R);
void basis_skew_backward(float *dskew, const double *dA, int R);
void nc_skew_to_A(double *A, const double *skew, int R, int r, int interleaved);
void nc_skew_backward(float *dskew, const double *dA, int R, int r, int interleaved);
size_t nc_skew_count(int R, int r);

// ---- grape_m_basis.c: the unfolded basis runs on all rows of a call through GEMMs
// out = in·B_s (trans 0) or in·B_sᵀ + beta·out (trans 1) for the (token, head) rows of a call.
grape_status basis_rows(float *out, size_t ld_out, const float *in, size_t ld_in, const rot_state *r, size_t ntok,
                        int trans, float beta);
// V: (B·T·H, R) scratch rows.
grape_status basis_forward(float *y, float *V, const float *x, const rot_table *tb, const rot_state *r, int B, int T);
// In place on the head's rows: v = Bᵀx → u = R(nθ) v, g = Bᵀdy → gv = R(nθ)ᵀ g; dφ; dx gets only the tail dims.
void basis_head_backward(float *dx, float *dphi, float *vrow, float *grow, const float *dy, const float *cs,
                         const float *sn, const rot_state *r, float *scratch);
// grape_basis_fold's checks (NULL, kind, C, aliasing, prepared), with a message.
grape_status basis_fold_check(const grape_pe *pe, const void *a, const void *b, int C);
// The fold's backward (grape_basis_fold_backward) on a workspace of basis_fold_work_bytes(r), which the dispatcher
// takes from the encoding's reserved block.
size_t basis_fold_work_bytes(const rot_state *r);
grape_status basis_fold_backward(float *dw, float *dparams, const float *dw_folded, const float *w, const rot_state *r,
                                 int C, void *work);

// ---- grape_m_nc.c: one head through the frame E (scratch: ROT_SCRATCH(R) floats)
// Besides dx and dφ the backward writes the head's frame-gradient coefficients [u − v | gv − g] (2·fpad floats) to
// coef when non-NULL; nc_frame_grad_tokens turns a block of them into dEᵀ.
void nc_head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                     float *scratch);
void nc_head_backward(float *dx, float *dphi, float *coef, const float *dy, const float *x, const float *cs,
                      const float *sn, const rot_state *r, int set, float *scratch);
// dEᵀ (nset, frame, R) += the frame-gradient terms of nb tokens from token bt0, from the coefficients the backward
// wrote for them: coef (nb, H, 2·fpad).
void nc_frame_grad_tokens(double *dF, const float *coef, const float *dy, const float *x, const rot_state *r,
                          int64_t bt0, int nb);

// =================================== dispatcher ===================================

// ---- rot_config.c: derive tables from a parameter slice in double (shared by rot_prepare and the reference)
grape_status rot_tables_alloc(rot_tables *t, const rot_state *r);
void rot_tables_free(rot_tables *t);
grape_status rot_tables_derive(rot_tables *t, const rot_state *r, const double *params);

// dskew += the chain of accumulated frame gradients dF (nset, frame, R) (rows of dFᵀ) through Cayley and the
// kind's skew layout (grape-m-basis, grape-m-nc). work: ROT_CHAIN_WORK(nset, R) doubles.
#define ROT_CHAIN_WORK(nset, R) (((size_t)(nset) + 2) * (size_t)(R) * (size_t)(R))
void rot_frame_chain(float *dskew, const double *dF, const rot_state *r, double *work);

// ---- rot_table.c: the angles of one call
// Angle multiplier of token (b, t, h): the absolute position n = pos0 + t, or the phase Φ (grape-m-ctx).
double rot_token_mult(const rot_state *r, const grape_positions *pos, int b, int t, int h, int T);
// Per-pair scale (xPos ζ^e times YaRN mscale) of a token at absolute position n.
double rot_pair_scale(const rot_state *r, const grape_positions *pos, double n, grape_side side, int p);

// Strides of the call's cos/sin table and its slices from the arena a (a NULL base only sizes; *ov flags overflow).
void rot_table_plan(rot_table *tb, grape_arena *a, int *ov, const rot_state *r, int B, int T);
// Fill the planned table for B × T tokens of one side (query or key).
void rot_table_fill(rot_table *tb, const rot_state *r, const grape_positions *pos, grape_side side, int B, int T);

#endif
