// rotation.c — the multiplicative action: config validation, parameter layout, derived tables, and the
// token loops of grape_rot_forward/backward shared by every rotation (GRAPE §3.1–3.2, grape_paper.md §1).
// Parameter vector (per set s = head with per_head, else one set): [log_freq (nset, npair) | skew (nset, n_skew)].
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "attn/simd.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/mathx.h"
#include "core/mem.h"
#include "pe/pe_internal.h"
#include "pe/rot_internal.h"

// ---------------------------------------------------------------------------------------------------------
// Configuration

static int is_learned(grape_rot_kind k) {
    return k == GRAPE_ROT_GRAPE_M || k == GRAPE_ROT_GRAPE_M_CTX || k == GRAPE_ROT_GRAPE_M_BASIS ||
           k == GRAPE_ROT_GRAPE_M_NC;
}

static grape_status check_scaling(const grape_pe_config *c) {
    if (c->scaling < GRAPE_SCALING_NONE || c->scaling > GRAPE_SCALING_YARN)
        return grape_fail(GRAPE_ERR_ARG, "unknown rope scaling %d", (int)c->scaling);
    if (c->scaling == GRAPE_SCALING_NONE) return GRAPE_OK;
    if (!isfinite(c->scaling_factor) || c->scaling_factor < 1.0)
        return grape_fail(GRAPE_ERR_ARG, "scaling_factor must be finite and >= 1, got %g", c->scaling_factor);
    if (c->scaling != GRAPE_SCALING_YARN) return GRAPE_OK;
    if (c->yarn_orig_ctx < 1) return grape_fail(GRAPE_ERR_ARG, "YaRN needs yarn_orig_ctx >= 1");
    if (!isfinite(c->yarn_attn_factor) || !isfinite(c->yarn_ext_factor) || !(c->yarn_beta_fast > 0) ||
        !(c->yarn_beta_slow > 0) || !isfinite(c->yarn_beta_fast) || !isfinite(c->yarn_beta_slow))
        return grape_fail(GRAPE_ERR_ARG, "YaRN factors must be finite (betas > 0)");
    return GRAPE_OK;
}

static grape_status check_config(const grape_pe_config *c, int R) {
    if (c->rot == GRAPE_ROT_NONE) return GRAPE_OK;
    if (R < 2 || R > c->head_dim || R % 2)
        return grape_fail(GRAPE_ERR_ARG, "rotary_dim must be even in [2, head_dim=%d], got %d", c->head_dim, R);
    if (!isfinite(c->rope_base) || c->rope_base <= 1.0)
        return grape_fail(GRAPE_ERR_ARG, "rope_base must be finite and > 1, got %g", c->rope_base);
    if (c->interleaved != 0 && c->interleaved != 1)
        return grape_fail(GRAPE_ERR_ARG, "interleaved must be 0 or 1, got %d", c->interleaved);
    if (c->rot == GRAPE_ROT_XPOS && (!(c->xpos_gamma > 0) || !isfinite(c->xpos_gamma) ||
                                     !(c->xpos_scale_base > 0) || !isfinite(c->xpos_scale_base)))
        return grape_fail(GRAPE_ERR_ARG, "xpos_gamma and xpos_scale_base must be finite and > 0");
    if (c->rot == GRAPE_ROT_GRAPE_M && (!(c->log_freq_scale > 0) || !isfinite(c->log_freq_scale)))
        return grape_fail(GRAPE_ERR_ARG, "log_freq_scale must be finite and > 0, got %g", c->log_freq_scale);
    if (c->rot == GRAPE_ROT_GRAPE_M_NC && (c->nc_rank < 2 || c->nc_rank > R || c->nc_rank % 2))
        return grape_fail(GRAPE_ERR_ARG, "nc_rank must be even in [2, rotary_dim=%d], got %d", R, c->nc_rank);
    return check_scaling(c);
}

static size_t skew_count(grape_rot_kind k, int R, int r) {
    if (k == GRAPE_ROT_GRAPE_M_BASIS) return (size_t)R * (size_t)(R - 1) / 2;
    if (k == GRAPE_ROT_GRAPE_M_NC) return nc_skew_count(R, r);
    return 0;
}

static grape_status alloc_frames(rot_state *r) {
    size_t nft = (size_t)r->nset * (size_t)r->frame * (size_t)r->R;
    if (!(r->ft = grape_alloc(nft * sizeof(float)))) return GRAPE_ERR_NOMEM;
    if (r->kind == GRAPE_ROT_GRAPE_M_BASIS &&
        !(r->fb = grape_alloc((size_t)r->nset * (size_t)r->R * (size_t)r->R * sizeof(float))))
        return GRAPE_ERR_NOMEM;
    if (r->kind == GRAPE_ROT_GRAPE_M_NC &&
        !(r->fe = grape_alloc((size_t)r->nset * (size_t)r->R * (size_t)r->fpad * sizeof(float))))
        return GRAPE_ERR_NOMEM;
    return GRAPE_OK;
}

static grape_status rot_init_tables(rot_state *r) {
    if (!(r->theta0 = grape_alloc((size_t)r->npair * sizeof(double)))) return GRAPE_ERR_NOMEM;
    rope_theta_table(r->theta0, &r->mscale, &r->cfg, r->npair);
    if (r->kind == GRAPE_ROT_XPOS) {
        if (!(r->ln_zeta = grape_alloc((size_t)r->npair * sizeof(double)))) return GRAPE_ERR_NOMEM;
        xpos_ln_zeta(r->ln_zeta, &r->cfg, r->npair);
    }
    grape_status st = rot_tables_alloc(&r->tab, r);
    if (st) return st;
    if (r->n_skew && (st = alloc_frames(r))) return st;
    if (!is_learned(r->kind)) { // fixed frequencies: the tables are final now
        memcpy(r->tab.theta, r->theta0, (size_t)r->npair * sizeof(double));
        r->prepared = 1;
    }
    return GRAPE_OK;
}

grape_status rot_create(rot_state **out, const grape_pe_config *cfg) {
    *out = NULL;
    int R = cfg->rotary_dim ? cfg->rotary_dim : cfg->head_dim;
    grape_status st = check_config(cfg, R);
    if (st) return st;
    rot_state *r = grape_alloc(sizeof *r);
    if (!r) return GRAPE_ERR_NOMEM;
    r->cfg = *cfg;
    r->kind = cfg->rot;
    r->H = cfg->n_heads;
    r->D = cfg->head_dim;
    r->R = cfg->rot == GRAPE_ROT_NONE ? 0 : R;
    r->frame = cfg->rot == GRAPE_ROT_GRAPE_M_NC ? cfg->nc_rank : r->R;
    r->npair = r->frame / 2;
    r->fpad = (r->frame + ROT_FRAME_LANES - 1) / ROT_FRAME_LANES * ROT_FRAME_LANES;
    r->mscale = 1.0;
    atomic_flag_clear(&r->work.busy);
    atomic_init(&r->work.allocs, 0);
    r->nset = is_learned(r->kind) && r->kind != GRAPE_ROT_GRAPE_M_CTX && cfg->per_head ? r->H : 1;
    r->phase_heads = r->kind == GRAPE_ROT_GRAPE_M_CTX && cfg->per_head ? r->H : 1;
    r->n_freq = is_learned(r->kind) ? (size_t)r->npair : 0;
    r->n_skew = skew_count(r->kind, r->R, r->frame);
    r->n_params = (size_t)r->nset * (r->n_freq + r->n_skew);
    if (r->kind == GRAPE_ROT_NONE) r->prepared = 1;
    else if ((st = rot_init_tables(r))) {
        rot_free(r);
        return st;
    }
    *out = r;
    return GRAPE_OK;
}

void rot_free(rot_state *r) {
    if (!r) return;
    rot_tables_free(&r->tab);
    grape_free(r->theta0);
    grape_free(r->ln_zeta);
    grape_free(r->ft);
    grape_free(r->fb);
    grape_free(r->fe);
    grape_free(r->work.mem);
    grape_free(r);
}

size_t rot_num_params(const rot_state *r) { return r->n_params; }

static void put_tensor(grape_param_info *out, int n, int max, const char *name, size_t off, int d0, int d1) {
    if (n >= max) return;
    out[n] = (grape_param_info){.name = name, .offset = off, .ndim = d0 > 1 ? 2 : 1, .weight_decay = 1};
    out[n].shape[0] = d0 > 1 ? d0 : d1;
    out[n].shape[1] = d0 > 1 ? d1 : 0;
}

int rot_param_tensors(const rot_state *r, grape_param_info *out, int max, size_t base) {
    int n = 0;
    if (r->n_freq) put_tensor(out, n++, max, "log_freq", base, r->nset, (int)r->n_freq);
    if (r->n_skew)
        put_tensor(out, n++, max, r->kind == GRAPE_ROT_GRAPE_M_BASIS ? "basis_skew" : "frame_skew",
                   base + (size_t)r->nset * r->n_freq, r->nset, (int)r->n_skew);
    return n;
}

// log_freq = scale · ln θ0 (exactly RoPE at init, after any context extension); skews 0 so B = I and
// E = the first r coordinates. Nothing is random, so the seed is unused.
grape_status rot_init_params(const rot_state *r, float *params, uint64_t seed) {
    (void)seed;
    if (!r->n_params) return GRAPE_OK;
    memset(params, 0, r->n_params * sizeof(float));
    for (int s = 0; s < r->nset; s++) rot_log_freq_init(r, params + (size_t)s * r->n_freq);
    return GRAPE_OK;
}

static void fill_float_frames(rot_state *r) {
    size_t R = (size_t)r->R, F = (size_t)r->frame;
    for (size_t s = 0; s < (size_t)r->nset; s++) {
        const double *B = r->tab.basis + s * R * R;
        for (size_t c = 0; c < F; c++)
            for (size_t i = 0; i < R; i++) r->ft[(s * F + c) * R + i] = (float)B[i * R + c];
        for (size_t i = 0; r->fe && i < R; i++) // padding columns stay 0
            for (size_t c = 0; c < F; c++) r->fe[(s * R + i) * (size_t)r->fpad + c] = (float)B[i * R + c];
        if (r->fb)
            for (size_t i = 0; i < R * R; i++) r->fb[s * R * R + i] = (float)B[i];
    }
}

// Every step calls this (grape_model_params_changed): its scratch was planned with the tables (rot_tables_alloc).
grape_status rot_prepare(rot_state *r, const float *params) {
    if (!r->n_params) return GRAPE_OK;
    double *p = r->tab.scratch + 3 * (size_t)r->R * (size_t)r->R;
    for (size_t i = 0; i < r->n_params; i++) p[i] = params[i];
    grape_status st = rot_tables_derive(&r->tab, r, p);
    if (st) return st;
    if (r->n_skew) fill_float_frames(r);
    r->prepared = 1;
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Derived tables (double): θ = exp(λ/scale); B = Cayley(A(skew)).

grape_status rot_tables_alloc(rot_tables *t, const rot_state *r) {
    *t = (rot_tables){0};
    size_t RR = (size_t)r->R * (size_t)r->R, n = (size_t)r->nset * RR * sizeof(double);
    if (!(t->theta = grape_alloc((size_t)r->nset * (size_t)r->npair * sizeof(double))) ||
        !(t->scratch = grape_alloc((r->n_params + 3 * RR) * sizeof(double)))) {
        rot_tables_free(t);
        return GRAPE_ERR_NOMEM;
    }
    if (!r->n_skew) return GRAPE_OK;
    if (!(t->basis = grape_alloc(n)) || !(t->cay_m = grape_alloc(n))) {
        rot_tables_free(t);
        return GRAPE_ERR_NOMEM;
    }
    return GRAPE_OK;
}

void rot_tables_free(rot_tables *t) {
    grape_free(t->theta);
    grape_free(t->basis);
    grape_free(t->cay_m);
    grape_free(t->scratch);
    *t = (rot_tables){0};
}

grape_status rot_tables_derive(rot_tables *t, const rot_state *r, const double *params) {
    double scale = rot_freq_scale(r);
    size_t np = (size_t)r->npair, R = (size_t)r->R;
    for (size_t s = 0; s < (size_t)r->nset; s++)
        for (size_t p = 0; p < np; p++) {
            t->theta[s * np + p] = exp(params[s * r->n_freq + p] / scale);
            if (!isfinite(t->theta[s * np + p]))
                return grape_fail(GRAPE_ERR_NUMERIC, "log_freq[%zu] gives a non-finite frequency", s * np + p);
        }
    if (!r->n_skew) return GRAPE_OK;
    double *A = t->scratch, *work = A + R * R; // params may sit after them (rot_prepare)
    grape_status st = GRAPE_OK;
    const double *skew = params + (size_t)r->nset * r->n_freq;
    for (size_t s = 0; s < (size_t)r->nset && !st; s++) {
        if (r->kind == GRAPE_ROT_GRAPE_M_BASIS) basis_skew_to_A(A, skew + s * r->n_skew, r->R);
        else nc_skew_to_A(A, skew + s * r->n_skew, r->R, r->frame, r->cfg.interleaved);
        st = cayley_forward_ws(t->basis + s * R * R, t->cay_m + s * R * R, A, r->R, work);
    }
    return st;
}

// ---------------------------------------------------------------------------------------------------------
// Pair kernels. cs/sn carry any scale (xPos, YaRN mscale). y == x is allowed.
// Half-split pairs (i, i+P), the official GRAPE sign: y_a = a c + b s, y_b = −a s + b c (sg = +1).
// Interleaved pairs (2i, 2i+1), the sign of torchscale's xPos, GPT-J and llama.cpp's NORMAL rope:
// y_a = a c − b s, y_b = a s + b c (sg = −1), so their weights port unchanged. Either way q̃·k̃ depends on t − j only.

// Pair p is (st·p, st·p + off): half-split st = 1, off = npair; interleaved st = 2, off = 1. The wrappers pass
// literal strides and signs so each layout gets its own vectorised specialisation.
static inline void pairs_forward(float *y, const float *x, const float *cs, const float *sn, int npair, int st,
                                 int off, float sg) {
#pragma omp simd
    for (int p = 0; p < npair; p++) {
        int i0 = st * p, i1 = i0 + off;
        float a = x[i0], b = x[i1], s = sg * sn[p];
        y[i0] = a * cs[p] + b * s;
        y[i1] = b * cs[p] - a * s;
    }
}

void rot_pairs_forward(float *y, const float *x, const float *cs, const float *sn, int npair, int interleaved) {
    if (interleaved) pairs_forward(y, x, cs, sn, npair, 2, 1, -1.0f);
    else pairs_forward(y, x, cs, sn, npair, 1, npair, 1.0f);
}

// The transpose (same kernel, angle negated) accumulated into dx, and dφ = sg (dy_a·y_b − dy_b·y_a) from the
// forward output y recomputed from x (the pair turns by sg·φ: ∂y_a/∂(sg φ) = y_b, ∂y_b/∂(sg φ) = −y_a).
static inline void pairs_backward(float *dx, float *dphi, const float *dy, const float *x, const float *cs,
                                  const float *sn, int npair, int st, int off, float sg) {
#pragma omp simd
    for (int p = 0; p < npair; p++) {
        int i0 = st * p, i1 = i0 + off;
        float a = x[i0], b = x[i1], ga = dy[i0], gb = dy[i1], s = sg * sn[p];
        float ya = a * cs[p] + b * s, yb = b * cs[p] - a * s;
        dphi[p] = sg * (ga * yb - gb * ya);
        dx[i0] += ga * cs[p] - gb * s;
        dx[i1] += ga * s + gb * cs[p];
    }
}

void rot_pairs_backward(float *dx, float *dphi, const float *dy, const float *x, const float *cs, const float *sn,
                        int npair, int interleaved) {
    if (interleaved) pairs_backward(dx, dphi, dy, x, cs, sn, npair, 2, 1, -1.0f);
    else pairs_backward(dx, dphi, dy, x, cs, sn, npair, 1, npair, 1.0f);
}

// out[0..n) = base + add + Σ_k coef[k]·M[k][0..n) (M: (nrows, n) row-major; add may be NULL; out may alias base).
// Tiled over out so a tile of ROWS_VECS vectors stays in registers across all rows (instead of a load and a store of
// out per row), with two accumulators over alternate rows so consecutive FMAs do not wait on each other; then single
// vectors, then scalars.
#define ROWS_VECS 4

// Inlined at each call so nv is a literal and va, vb live in registers (a shared clone spilled them).
static inline __attribute__((always_inline)) void rows_axpy_tile(float *out, const float *base, const float *add,
                                                                 const float *coef, const float *M, int nrows, int n,
                                                                 int nv) {
    vf va[ROWS_VECS], vb[ROWS_VECS];
    for (int v = 0; v < nv; v++) va[v] = vf_load(base + v * VW), vb[v] = add ? vf_load(add + v * VW) : vf_set1(0.0f);
    int k = 0;
    for (; k + 1 < nrows; k += 2) {
        const float *m0 = M + (size_t)k * (size_t)n, *m1 = m0 + n;
        vf c0 = vf_set1(coef[k]), c1 = vf_set1(coef[k + 1]);
        for (int v = 0; v < nv; v++) {
            va[v] = vf_fma(c0, vf_load(m0 + v * VW), va[v]);
            vb[v] = vf_fma(c1, vf_load(m1 + v * VW), vb[v]);
        }
    }
    if (k < nrows) { // odd row count
        const float *m = M + (size_t)k * (size_t)n;
        for (int v = 0; v < nv; v++) va[v] = vf_fma(vf_set1(coef[k]), vf_load(m + v * VW), va[v]);
    }
    for (int v = 0; v < nv; v++) vf_store(out + v * VW, vf_add(va[v], vb[v]));
}

void rot_rows_axpy(float *out, const float *base, const float *add, const float *coef, const float *M, int nrows,
                   int n) {
    int i = 0;
    for (; i + ROWS_VECS * VW <= n; i += ROWS_VECS * VW)
        rows_axpy_tile(out + i, base + i, add ? add + i : NULL, coef, M + i, nrows, n, ROWS_VECS);
    for (; i + VW <= n; i += VW) rows_axpy_tile(out + i, base + i, add ? add + i : NULL, coef, M + i, nrows, n, 1);
    for (int j = i; j < n; j++) {
        float s = base[j] + (add ? add[j] : 0.0f);
        for (int k = 0; k < nrows; k++) s += coef[k] * M[(size_t)k * (size_t)n + j];
        out[j] = s;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Per-token angle sources

double rot_token_mult(const rot_state *r, const grape_positions *pos, int b, int t, int h, int T) {
    if (r->kind != GRAPE_ROT_GRAPE_M_CTX) return (double)(pos->pos0 + t);
    size_t i = ((size_t)b * (size_t)T + (size_t)t) * (size_t)r->phase_heads + (r->phase_heads > 1 ? h : 0);
    return pos->phase[i];
}

double rot_pair_scale(const rot_state *r, const grape_positions *pos, double n, grape_side side, int p) {
    if (r->kind != GRAPE_ROT_XPOS) return r->mscale;
    return r->mscale * exp(xpos_exponent(&r->cfg, n, pos->xpos_anchor, side) * r->ln_zeta[p]);
}

// ---------------------------------------------------------------------------------------------------------
// cos/sin table of one call, shared across batch and heads where the angles are: (nb, T, nh, npair) with
// nb = B only for contextual phases and nh = H only for per-head frequencies or phases.

// sin and cos of m·θ_p for one row of pairs, times g. Range reduction in double (Cody–Waite: k = rint(a·2/π),
// r = a − k·π/2 with π/2 split in a 33-bit head, exact for |k| < 2^20), then Taylor polynomials on |r| ≤ π/4
// (truncation < 1e-11, below float rounding) and the quadrant by selects: vectorises, unlike libm's sin/cos.
// Rows whose largest angle reaches 2^19 take angle_sincos (remainder) instead.
#define PIO2_HI 1.57079632673412561417e+00
#define PIO2_LO 6.07710050650619224932e-11

static void sincos_row(float *cs, float *sn, double m, const double *theta, double theta_max, double g,
                       size_t np) {
    if (fabs(m) * theta_max >= 524288.0) {
        for (size_t p = 0; p < np; p++) {
            double s, c;
            angle_sincos(m, theta[p], &s, &c);
            cs[p] = (float)(g * c), sn[p] = (float)(g * s);
        }
        return;
    }
#pragma omp simd
    for (size_t p = 0; p < np; p++) {
        double a = m * theta[p], k = nearbyint(a * (2.0 / M_PI));
        double r = (a - k * PIO2_HI) - k * PIO2_LO, r2 = r * r;
        // Horner in r² with reciprocal constants: a division per term (vdivpd) dominated the grape-m-ctx table.
        double sp = r * (1 - r2 * (1.0 / 6) * (1 - r2 * (1.0 / 20) * (1 - r2 * (1.0 / 42) * (1 - r2 * (1.0 / 72) *
                                                                                        (1 - r2 * (1.0 / 110))))));
        double cp = 1 - r2 * 0.5 * (1 - r2 * (1.0 / 12) * (1 - r2 * (1.0 / 30) * (1 - r2 * (1.0 / 56) *
                                                          (1 - r2 * (1.0 / 90) * (1 - r2 * (1.0 / 132))))));
        int q = (int)((int64_t)k & 3);
        double s = (q & 1) ? cp : sp, c = (q & 1) ? sp : cp;
        sn[p] = (float)(g * ((q & 2) ? -s : s));
        cs[p] = (float)(g * (((q + 1) & 2) ? -c : c));
    }
}

// Contextual phases are arbitrary reals: every row is evaluated at its own phase.
static void table_fill_phase(rot_table *tb, const rot_state *r, const grape_positions *pos, int nb, int T, int nh) {
    size_t np = (size_t)r->npair;
    double theta_max = 0;
    for (size_t p = 0; p < np; p++) theta_max = fmax(theta_max, r->tab.theta[p]);
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < (int64_t)nb * T; bt++) {
        int b = (int)(bt / T), t = (int)(bt % T);
        for (int h = 0; h < nh; h++) {
            size_t off = (size_t)bt * tb->st + (size_t)h * np;
            sincos_row(tb->cs + off, tb->sn + off, rot_token_mult(r, pos, b, t, h, T), r->tab.theta, theta_max,
                       r->mscale, np);
        }
    }
}

// Integer positions: exact range-reduced angle (and xPos scale) every TABLE_RESYNC positions, then the rotation
// recurrence (c, s) ← (c cδ − s sδ, s cδ + c sδ) and g ← g·gδ in double in between (error ~TABLE_RESYNC·1e-16,
// far below float), so a call costs a few flops per entry instead of a sin, a cos and an exp.
#define TABLE_RESYNC 32

// Ratio of the per-pair scale between positions n + 1 and n: ζ^(±1/sb) for xPos, 1 otherwise (a ratio of two
// scales would be 0/0 where ζ^e underflows far from the anchor).
static double pair_scale_step(const rot_state *r, grape_side side, int p) {
    if (r->kind != GRAPE_ROT_XPOS) return 1.0;
    return exp(xpos_exponent(&r->cfg, 1.0, 0.0, side) * r->ln_zeta[p]);
}

static void table_fill_positions(rot_table *tb, const rot_state *r, const grape_positions *pos, grape_side side,
                                 int T, int nh) {
    size_t np = (size_t)r->npair;
    int64_t nblk = ((int64_t)T + TABLE_RESYNC - 1) / TABLE_RESYNC;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int t0 = (int)(blk * TABLE_RESYNC), t1 = t0 + TABLE_RESYNC < T ? t0 + TABLE_RESYNC : T;
        double n0 = (double)(pos->pos0 + t0);
        for (int h = 0; h < nh; h++)
            for (size_t p = 0; p < np; p++) {
                double theta = r->tab.theta[(r->nset > 1 ? (size_t)h * np : 0) + p], s, c, sd, cd;
                double g = rot_pair_scale(r, pos, n0, side, (int)p);
                double gd = pair_scale_step(r, side, (int)p);
                angle_sincos(n0, theta, &s, &c);
                angle_sincos(1.0, theta, &sd, &cd);
                for (int t = t0; t < t1; t++) {
                    size_t off = (size_t)t * tb->st + (size_t)h * np + p;
                    tb->cs[off] = (float)(g * c);
                    tb->sn[off] = (float)(g * s);
                    double c2 = c * cd - s * sd;
                    s = s * cd + c * sd, c = c2, g *= gd;
                }
            }
    }
}

// Strides of the call's table and its slices in the workspace (plan or hand out).
static void table_plan(rot_table *tb, grape_arena *a, int *ov, const rot_state *r, int B, int T) {
    int nb = r->kind == GRAPE_ROT_GRAPE_M_CTX ? B : 1;
    int nh = (r->nset > 1 || r->phase_heads > 1) ? r->H : 1;
    size_t np = (size_t)r->npair, n;
    if (!size_mul(&n, (size_t)nb * (size_t)T, (size_t)nh * np) || !size_mul(&n, n, sizeof(float))) *ov = 1;
    tb->sh = np;
    tb->st = (size_t)nh * np;
    tb->sb = (size_t)T * tb->st;
    tb->cs = arena_take(a, n);
    tb->sn = arena_take(a, n);
    tb->head_varies = nh > 1;
}

static void table_fill(rot_table *tb, const rot_state *r, const grape_positions *pos, grape_side side, int B, int T) {
    int nh = tb->head_varies ? r->H : 1;
    if (r->kind == GRAPE_ROT_GRAPE_M_CTX) table_fill_phase(tb, r, pos, B, T, nh);
    else table_fill_positions(tb, r, pos, side, T, nh);
}

// xPos scales q by zeta^((n-c)/sb) and k by zeta^((c-n)/sb) with zeta_min = gamma/(1+gamma) < 1. A scale grows for
// queries before the anchor and keys after it; its ln must stay below this so it and its products with normalised
// values (|x| < e^4) stay finite floats. The other side only shrinks (to 0 far away), which is harmless: its partner
// is bounded by e^84, so the logit's absolute error stays below e^84 * FLT_TRUE_MIN ~ 1e-8 (the KV cache relies on
// it when it re-scales a query against old key blocks).
#define XPOS_MAX_LN_SCALE 84.0

static grape_status check_xpos_range(const rot_state *r, const grape_positions *pos, grape_side side, int T) {
    double lnz = 0, c = pos->xpos_anchor;
    for (int p = 0; p < r->npair; p++) lnz = fmax(lnz, fabs(r->ln_zeta[p]));
    double far = side == GRAPE_QUERY ? c - (double)pos->pos0 : (double)pos->pos0 + T - 1 - c, reach;
    reach = XPOS_MAX_LN_SCALE * r->cfg.xpos_scale_base / lnz;
    if (!(far * lnz / r->cfg.xpos_scale_base > XPOS_MAX_LN_SCALE)) return GRAPE_OK;
    return grape_fail(GRAPE_ERR_UNSUPPORTED,
                      "xpos: a position lies %.0f tokens from the anchor %.0f; the scale zeta^(+-d/%g) leaves the "
                      "float range past %.0f tokens (a centred anchor serves T <= %.0f; the KV cache has no limit)",
                      far, c, r->cfg.xpos_scale_base, floor(reach), 2 * floor(reach));
}

static grape_status check_call(const grape_pe *pe, const grape_positions *pos, grape_side side, const void *a,
                               const void *b, int B, int T) {
    if (!pe || !a || !b || !pos) return grape_fail(GRAPE_ERR_ARG, "rotation: NULL argument");
    if (B < 0 || T < 0) return grape_fail(GRAPE_ERR_ARG, "rotation: negative shape B=%d T=%d", B, T);
    if (!pe->rot->prepared) return grape_fail(GRAPE_ERR_ARG, "rotation: call grape_pe_prepare first");
    if (pe->rot->kind == GRAPE_ROT_GRAPE_M_CTX && !pos->phase)
        return grape_fail(GRAPE_ERR_ARG, "grape-m-ctx: positions need a phase (grape_phase_forward)");
    return pe->rot->kind == GRAPE_ROT_XPOS && T > 0 ? check_xpos_range(pe->rot, pos, side, T) : GRAPE_OK;
}

// True when the action is a plain pair rotation of the head's coordinates (no frame to apply).
static int coordinate_planes(const rot_state *r) {
    return r->kind != GRAPE_ROT_GRAPE_M_NC && (r->kind != GRAPE_ROT_GRAPE_M_BASIS || r->cfg.basis_folded);
}

// ---------------------------------------------------------------------------------------------------------
// Workspace. A call carves its table and scratch from one block, planned with grape_arena (a NULL base only sizes
// it). The block lives in rot_state, sized by grape_pe_reserve; a call that does not fit grows it (one allocation,
// kept), so repeated calls of one shape allocate nothing. One call holds it at a time: a call that finds it held
// (another thread on the same encoding) allocates a private block for its duration.

// The unfolded basis is dense in the rotary dims: it runs through GEMMs over all rows (grape_m_basis.c).
static int basis_unfolded(const rot_state *r) { return r->kind == GRAPE_ROT_GRAPE_M_BASIS && !r->cfg.basis_folded; }

static int frame_grads(const rot_state *r, const float *dparams) {
    return dparams && r->n_skew && !r->cfg.basis_folded;
}

// Tokens per block of the backward's token loop. grape-m-nc keeps the frame-gradient coefficients of a block's
// token-heads and turns them into dEᵀ at its end: register tiles summed over the block's rows, then added into
// double (so a float sum runs over at most TOKEN_BLOCK·H rows however long the call).
#define TOKEN_BLOCK 16

// n elements of elem bytes from a; *ov flags a size that overflows.
static void *take(grape_arena *a, int *ov, size_t n, size_t elem) {
    size_t bytes;
    if (!size_mul(&bytes, n, elem) || bytes > SIZE_MAX / 16) *ov = 1;
    return *ov ? NULL : arena_take(a, bytes);
}

typedef struct {
    rot_table tb;
    float *scratch; // (threads, ROT_SCRATCH(R)) frame heads
    float *V;       // (B·T·H, R) unfolded basis rows, else NULL
} fwd_work;

static void fwd_plan(fwd_work *w, grape_arena *a, int *ov, const rot_state *r, int B, int T, int nt) {
    table_plan(&w->tb, a, ov, r, B, T);
    w->scratch = take(a, ov, (size_t)nt, ROT_SCRATCH(r->R) * sizeof(float));
    w->V = basis_unfolded(r) ? take(a, ov, (size_t)B * (size_t)T * (size_t)r->H, (size_t)r->R * sizeof(float)) : NULL;
}

typedef struct {
    rot_table tb;
    size_t n_acc;   // doubles per thread: dθ (nset·npair)
    size_t n_float; // floats per thread: dφ (npair), Σ_h dφ (nset·npair), frame scratch
    size_t n_frame; // frame-gradient entries per thread: nset·frame·R when frame gradients are wanted, else 0
    size_t n_coef;  // grape-m-nc: floats per thread of a token block's frame-gradient coefficients, else 0
    double *acc;    // (threads, n_acc)
    float *ws;      // (threads, n_float)
    float *coef;    // (threads, TOKEN_BLOCK·H, 2·fpad) grape-m-nc: [u − v | gv − g] of the block's token-heads
    double *dF;     // (threads, n_frame) grape-m-nc: sums over the blocks; (n_frame) unfolded basis: GEMM result
    float *fu, *fg; // unfolded basis: (B·T·H, R) rows v = Bᵀx → u and g = Bᵀdy → gv that dx and dB are GEMMs of
    float *c;       // unfolded basis: (R, R) float GEMM output
    double *chain;  // ROT_CHAIN_WORK(R) doubles for the Cayley chain
} bwd_work;

static void bwd_plan(bwd_work *w, grape_arena *a, int *ov, const rot_state *r, int want_frame, int B, int T,
                     int nt) {
    size_t rows = (size_t)B * (size_t)T * (size_t)r->H, fr = (size_t)r->frame * (size_t)r->R, n = (size_t)nt;
    int basis = basis_unfolded(r);
    table_plan(&w->tb, a, ov, r, B, T);
    w->n_acc = (size_t)r->nset * (size_t)r->npair;
    w->n_float = (size_t)r->npair * (1 + (size_t)r->nset) + ROT_SCRATCH(r->R);
    w->n_frame = want_frame ? (size_t)r->nset * fr : 0;
    w->n_coef = want_frame && !basis ? (size_t)TOKEN_BLOCK * (size_t)r->H * 2 * (size_t)r->fpad : 0;
    w->acc = take(a, ov, n * w->n_acc, sizeof(double));
    w->ws = take(a, ov, n * w->n_float, sizeof(float));
    w->coef = w->n_coef ? take(a, ov, n * w->n_coef, sizeof(float)) : NULL;
    w->dF = want_frame ? take(a, ov, (basis ? 1 : n) * w->n_frame, sizeof(double)) : NULL;
    w->fu = basis ? take(a, ov, rows, (size_t)r->R * sizeof(float)) : NULL;
    w->fg = basis ? take(a, ov, rows, (size_t)r->R * sizeof(float)) : NULL;
    w->c = want_frame && basis ? take(a, ov, fr, sizeof(float)) : NULL;
    w->chain = want_frame ? take(a, ov, ROT_CHAIN_WORK(r->R), sizeof(double)) : NULL;
}

// Bytes of the workspace of forward and backward calls (with frame gradients) of B × T tokens on nt threads.
static size_t reserve_bytes(const rot_state *r, int B, int T, int nt, int *ov) {
    fwd_work fw;
    bwd_work bw;
    grape_arena af = {0}, ab = {0};
    fwd_plan(&fw, &af, ov, r, B, T, nt);
    bwd_plan(&bw, &ab, ov, r, r->n_skew > 0, B, T, nt);
    return af.used > ab.used ? af.used : ab.used;
}

// A block of `bytes` for a call of B × T tokens: the encoding's when free (grown to reserve B × T when too small,
// so the other direction of the same shape fits too), else a private one of `bytes` (*own = 0).
static void *work_acquire(rot_state *r, size_t bytes, int B, int T, int nt, int *own) {
    rot_workspace *ws = &r->work;
    *own = !atomic_flag_test_and_set_explicit(&ws->busy, memory_order_acquire);
    if (*own && bytes <= ws->bytes) return ws->mem;
    int ov = 0;
    size_t keep = *own ? reserve_bytes(r, B, T, nt, &ov) : bytes;
    if (ov || keep < bytes) keep = bytes;
    atomic_fetch_add_explicit(&ws->allocs, 1, memory_order_relaxed);
    void *mem = grape_alloc(keep);
    if (!*own) return mem;
    if (!mem) {
        atomic_flag_clear_explicit(&ws->busy, memory_order_release);
        return NULL;
    }
    grape_free(ws->mem);
    ws->mem = mem, ws->bytes = keep;
    return mem;
}

static void work_release(rot_state *r, void *mem, int own) {
    if (own) atomic_flag_clear_explicit(&r->work.busy, memory_order_release);
    else grape_free(mem);
}

static grape_status plan_overflow(int B, int T) {
    return grape_fail(GRAPE_ERR_NOMEM, "rotation workspace size overflows (B=%d T=%d)", B, T);
}

grape_status rot_reserve(rot_state *r, int max_B, int max_T) {
    if (r->kind == GRAPE_ROT_NONE) return GRAPE_OK;
    int nt = omp_get_max_threads(), ov = 0, own;
    size_t bytes = reserve_bytes(r, max_B, max_T, nt, &ov);
    if (ov) return plan_overflow(max_B, max_T);
    void *mem = work_acquire(r, bytes, max_B, max_T, nt, &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    if (!own) {
        grape_free(mem);
        return grape_fail(GRAPE_ERR_ARG, "grape_pe_reserve: a rotation call on this encoding is running");
    }
    work_release(r, mem, own);
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Forward: y = G(n) x for every (b, t, h); threads over tokens.

static void head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                         float *scratch) {
    if (coordinate_planes(r)) {
        rot_pairs_forward(y, x, cs, sn, r->npair, r->cfg.interleaved);
        if (y != x) memcpy(y + r->R, x + r->R, (size_t)(r->D - r->R) * sizeof(float));
    } else
        nc_head_forward(y, x, cs, sn, r, set, scratch);
}

static void forward_tokens(float *y, const float *x, const fwd_work *w, const rot_state *r, int B, int T) {
    int ctx = r->kind == GRAPE_ROT_GRAPE_M_CTX;
    const rot_table *tb = &w->tb;
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++) {
        float *ws = w->scratch + (size_t)omp_get_thread_num() * ROT_SCRATCH(r->R);
        size_t row = (ctx ? (size_t)bt : (size_t)(bt % T)) * tb->st;
        for (int h = 0; h < r->H; h++) {
            size_t off = ((size_t)bt * (size_t)r->H + (size_t)h) * (size_t)r->D;
            size_t toff = row + (tb->head_varies ? (size_t)h * tb->sh : 0);
            head_forward(y + off, x + off, tb->cs + toff, tb->sn + toff, r, r->nset > 1 ? h : 0, ws);
        }
    }
}

grape_status grape_rot_forward(float *y, const float *x, const grape_pe *pe, const grape_positions *pos,
                               grape_side side, int B, int T) {
    grape_status st = check_call(pe, pos, side, y, x, B, T);
    if (st) return st;
    const rot_state *r = pe->rot;
    size_t n = (size_t)B * (size_t)T * (size_t)r->H * (size_t)r->D;
    if (r->kind == GRAPE_ROT_NONE) {
        if (y != x) memmove(y, x, n * sizeof(float));
        return GRAPE_OK;
    }
    if (!n) return GRAPE_OK;
    int nt = omp_get_max_threads(), ov = 0, own;
    fwd_work w;
    grape_arena a = {0};
    fwd_plan(&w, &a, &ov, r, B, T, nt);
    if (ov) return plan_overflow(B, T);
    void *mem = work_acquire(pe->rot, a.used, B, T, nt, &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    a = (grape_arena){mem, a.used, 0};
    fwd_plan(&w, &a, &ov, r, B, T, nt);
    table_fill(&w.tb, r, pos, side, B, T);
    if (basis_unfolded(r)) st = basis_forward(y, w.V, x, &w.tb, r, B, T);
    else forward_tokens(y, x, &w, r, B, T);
    work_release(pe->rot, mem, own);
    return st;
}

// ---------------------------------------------------------------------------------------------------------
// Backward: dx += G(n)ᵀ dy; dφ per pair chains into dθ (Σ n·dφ, or Σ Φ·dφ) and dΦ (Σ θ·dφ); frames chain
// their dF into the skew parameters through the Cayley backward: grape-m-nc sums dEᵀ per thread as it goes, the
// unfolded basis forms dBᵀ with two GEMMs over its rows.

// coef: the head's frame-gradient coefficients (grape-m-nc) or NULL; frow: the head's row in the basis buffers.
static void head_backward(float *dx, float *dphi, float *coef, const bwd_work *w, size_t frow, const float *dy,
                          const float *x, const float *cs, const float *sn, const rot_state *r, int set, float *ws) {
    if (coordinate_planes(r)) {
        rot_pairs_backward(dx, dphi, dy, x, cs, sn, r->npair, r->cfg.interleaved);
        for (int i = r->R; i < r->D; i++) dx[i] += dy[i];
    } else if (basis_unfolded(r))
        basis_head_backward(dx, dphi, w->fu + frow, w->fg + frow, dy, cs, sn, r, ws);
    else
        nc_head_backward(dx, dphi, coef, dy, x, cs, sn, r, set, ws);
}

// dBᵀ (nset, R, R) = Σ_rows U_rowᵀ dy_row + G_rowᵀ x_row over the (token, head) rows of each set: two GEMMs per set
// (K = tokens·heads sharing it).
static grape_status frame_grad_gemm(double *dF, float *c, const bwd_work *w, const float *dy, const float *x,
                                    const rot_state *r, size_t ntok) {
    size_t F = (size_t)r->frame, R = (size_t)r->R, H = (size_t)r->H, D = (size_t)r->D;
    grape_status st = GRAPE_OK;
    int shared = r->nset == 1;
    int64_t K = (int64_t)(shared ? ntok * H : ntok), ldu = (int64_t)(shared ? F : H * F), ldx = (int64_t)(shared ? D : H * D);
    for (size_t s = 0; s < (size_t)r->nset && !st; s++) {
        st = gemm_ld(c, (int64_t)R, w->fu + s * F, ldu, dy + s * D, ldx, (int64_t)F, (int64_t)R, K, 1, 0, 1.0f, 0.0f);
        if (!st) st = gemm_ld(c, (int64_t)R, w->fg + s * F, ldu, x + s * D, ldx, (int64_t)F, (int64_t)R, K, 1, 0, 1.0f, 1.0f);
        for (size_t i = 0; i < F * R; i++) dF[s * F * R + i] = c[i];
    }
    return st;
}

// dθ_p += m·dφ_p with m the token's position or phase.
static inline void accumulate_dtheta(double *acc, const float *dphi, double m, size_t np) {
#pragma omp simd
    for (size_t p = 0; p < np; p++) acc[p] += m * dphi[p];
}

// dΦ = Σ_p θ_p·dφ_p (grape-m-ctx: the angle is Φ·θ).
static inline double dot_theta(const double *theta, const float *dphi, size_t np) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t p = 0; p < np; p++) s += theta[p] * dphi[p];
    return s;
}

// One token (b, t), every head. dφ of heads sharing a set and a multiplier is summed first, so dθ += m·Σ_h dφ and
// (grape-m-ctx) dΦ += θ·Σ_h dφ run once per token (per head only for per-head phases). ws: dφ (npair) | Σ dφ
// (nset·npair) | frame scratch; coef: the token's (H, 2·fpad) frame-gradient coefficients (grape-m-nc) or NULL.
static void token_backward(float *dx, double *dphase, double *acc, float *ws, float *coef, const bwd_work *w,
                           const float *dy, const float *x, const rot_state *r, const grape_positions *pos,
                           int want_dtheta, int b, int t, int T) {
    const rot_table *tb = &w->tb;
    size_t np = (size_t)r->npair, bt = (size_t)b * (size_t)T + (size_t)t, ns = (size_t)r->nset;
    int ctx = r->kind == GRAPE_ROT_GRAPE_M_CTX, head_mult = r->phase_heads > 1, want_dphase = ctx && dphase;
    int sum = !head_mult && (want_dtheta || want_dphase);
    float *dphi = ws, *tok = ws + np, *scratch = tok + ns * np;
    size_t row = (ctx ? bt : (size_t)t) * tb->st;
    if (sum) memset(tok, 0, ns * np * sizeof(float));
    for (int h = 0; h < r->H; h++) {
        size_t set = ns > 1 ? (size_t)h : 0, off = (bt * (size_t)r->H + (size_t)h) * (size_t)r->D;
        size_t toff = row + (tb->head_varies ? (size_t)h * tb->sh : 0);
        size_t frow = (bt * (size_t)r->H + (size_t)h) * (size_t)r->frame;
        head_backward(dx + off, dphi, coef ? coef + (size_t)h * 2 * (size_t)r->fpad : NULL, w, frow, dy + off, x + off,
                      tb->cs + toff, tb->sn + toff, r, (int)set, scratch);
        if (sum) {
#pragma omp simd
            for (size_t p = 0; p < np; p++) tok[set * np + p] += dphi[p];
            continue;
        }
        if (want_dphase) dphase[bt * (size_t)r->phase_heads + (size_t)h] += dot_theta(r->tab.theta, dphi, np);
        if (want_dtheta) accumulate_dtheta(acc, dphi, rot_token_mult(r, pos, b, t, h, T), np);
    }
    if (!sum) return;
    if (want_dphase) dphase[bt] += dot_theta(r->tab.theta, tok, np); // grape-m-ctx has one set
    if (!want_dtheta) return;
    double m = rot_token_mult(r, pos, b, t, 0, T);
    for (size_t s = 0; s < ns; s++) accumulate_dtheta(acc + s * np, tok + s * np, m, np);
}

// dEᵀ += the frame-gradient terms of nb tokens from bt0 (grape-m-nc): one pass over the block per set.
static void frame_grad_block(const bwd_work *w, size_t tid, const float *dy, const float *x, const rot_state *r,
                             int64_t bt0, int nb) {
    size_t H = (size_t)r->H, D = (size_t)r->D, lc = 2 * (size_t)r->fpad, row0 = (size_t)bt0 * H;
    double *dF = w->dF + tid * w->n_frame;
    const float *coef = w->coef + tid * w->n_coef;
    if (r->nset == 1) {
        nc_frame_grad_block(dF, coef, lc, dy + row0 * D, x + row0 * D, D, nb * r->H, r);
        return;
    }
    for (size_t s = 0; s < H; s++) // per-head frames: the set's rows are every H-th
        nc_frame_grad_block(dF + s * (size_t)r->frame * (size_t)r->R, coef + s * lc, H * lc, dy + (row0 + s) * D,
                            x + (row0 + s) * D, H * D, nb, r);
}

static void backward_tokens(float *dx, double *dphase, const bwd_work *w, const float *dy, const float *x,
                            const rot_state *r, const grape_positions *pos, int want_dtheta, int B, int T) {
    int64_t ntok = (int64_t)B * T, nblk = (ntok + TOKEN_BLOCK - 1) / TOKEN_BLOCK;
    size_t ltok = (size_t)r->H * 2 * (size_t)r->fpad;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
        size_t tid = (size_t)omp_get_thread_num();
        float *coef = w->coef ? w->coef + tid * w->n_coef : NULL;
        int64_t bt0 = blk * TOKEN_BLOCK, end = bt0 + TOKEN_BLOCK < ntok ? bt0 + TOKEN_BLOCK : ntok;
        for (int64_t bt = bt0; bt < end; bt++)
            token_backward(dx, dphase, w->acc + tid * w->n_acc, w->ws + tid * w->n_float,
                           coef ? coef + (size_t)(bt - bt0) * ltok : NULL, w, dy, x, r, pos, want_dtheta,
                           (int)(bt / T), (int)(bt % T), T);
        if (coef) frame_grad_block(w, tid, dy, x, r, bt0, (int)(end - bt0));
    }
}

// Sum the per-thread accumulators (dθ; grape-m-nc's dF) into thread 0's slot.
static void bwd_reduce(bwd_work *w, int nt) {
    for (size_t k = 1; k < (size_t)nt; k++) {
        for (size_t i = 0; i < w->n_acc; i++) w->acc[i] += w->acc[k * w->n_acc + i];
        for (size_t i = 0; w->coef && i < w->n_frame; i++) w->dF[i] += w->dF[k * w->n_frame + i];
    }
}

static grape_status chain_params(float *dparams, const rot_state *r, const bwd_work *w, const float *dy,
                                 const float *x, size_t ntok) {
    if (!dparams || !r->n_params) return GRAPE_OK;
    rot_log_freq_backward(r, dparams, w->acc);
    if (!w->dF) return GRAPE_OK;
    grape_status st = basis_unfolded(r) ? frame_grad_gemm(w->dF, w->c, w, dy, x, r, ntok) : GRAPE_OK;
    if (!st) frame_chain_skew(dparams + (size_t)r->nset * r->n_freq, w->dF, r, w->chain);
    return st;
}

// The sums the token loop adds into start at 0 (a reused workspace holds the last call's values).
static void bwd_zero(bwd_work *w, int nt) {
    memset(w->acc, 0, (size_t)nt * w->n_acc * sizeof(double));
    if (w->coef) memset(w->dF, 0, (size_t)nt * w->n_frame * sizeof(double));
}

grape_status grape_rot_backward(float *dx, float *dparams, double *dphase, const float *dy, const float *x,
                                const grape_pe *pe, const grape_positions *pos, grape_side side, int B, int T) {
    grape_status st = check_call(pe, pos, side, dx, dy, B, T);
    if (st) return st;
    const rot_state *r = pe->rot;
    if (!x && r->kind != GRAPE_ROT_NONE) return grape_fail(GRAPE_ERR_ARG, "grape_rot_backward: x is NULL");
    size_t ntok = (size_t)B * (size_t)T, R = (size_t)r->R, D = (size_t)r->D;
    if (r->kind == GRAPE_ROT_NONE) {
        size_t n = ntok * (size_t)r->H * D;
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return GRAPE_OK;
    }
    if (!ntok) return GRAPE_OK;
    int nt = omp_get_max_threads(), ov = 0, own;
    bwd_work w;
    grape_arena a = {0};
    bwd_plan(&w, &a, &ov, r, frame_grads(r, dparams), B, T, nt);
    if (ov) return plan_overflow(B, T);
    void *mem = work_acquire(pe->rot, a.used, B, T, nt, &own);
    if (!mem) return GRAPE_ERR_NOMEM;
    a = (grape_arena){mem, a.used, 0};
    bwd_plan(&w, &a, &ov, r, frame_grads(r, dparams), B, T, nt);
    bwd_zero(&w, nt);
    table_fill(&w.tb, r, pos, side, B, T);
    if (basis_unfolded(r) && !(st = basis_rows(w.fu, R, x, D, r, ntok, 0, 0.0f))) // rows v = Bᵀx, g = Bᵀdy
        st = basis_rows(w.fg, R, dy, D, r, ntok, 0, 0.0f);
    backward_tokens(dx, dphase, &w, dy, x, r, pos, dparams && r->n_freq, B, T);
    bwd_reduce(&w, nt);
    if (!st && basis_unfolded(r)) st = basis_rows(dx, D, w.fg, R, r, ntok, 1, 1.0f); // dx_R += B gv
    if (!st) st = chain_params(dparams, r, &w, dy, x, ntok);
    work_release(pe->rot, mem, own);
    return st;
}
