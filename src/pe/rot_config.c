// rot_config.c — the rotation's configuration and parameters: validation, the parameter layout, init, and the
// tables derived from the parameters (θ = exp(λ/scale), B = Cayley(A(skew))), in double. What depends on the kind
// is read from its row of the kind table (rot_kinds.c); it calls the kinds (grape_m.c, grape_m_basis.c,
// grape_m_nc.c, rope.c, xpos.c) and the shared kernels; no kind calls back into it.
// Parameter vector (per set s = head with per_head, else one set): [log_freq (nset, npair) | skew (nset, n_skew)].
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "pe/rot_internal.h"

// ---------------------------------------------------------------------------------------------------------
// Configuration

static grape_status check_scaling(const grape_pe_config *c) {
    if (c->scaling < GRAPE_SCALING_NONE || c->scaling > GRAPE_SCALING_YARN)
        return error_fail(GRAPE_ERR_ARG, "unknown rope scaling %d", (int)c->scaling);
    if (c->scaling == GRAPE_SCALING_NONE) return GRAPE_OK;
    if (!isfinite(c->scaling_factor) || c->scaling_factor < 1.0)
        return error_fail(GRAPE_ERR_ARG, "scaling_factor must be finite and >= 1, got %g", c->scaling_factor);
    if (c->scaling != GRAPE_SCALING_YARN) return GRAPE_OK;
    if (c->yarn_orig_ctx < 1) return error_fail(GRAPE_ERR_ARG, "YaRN needs yarn_orig_ctx >= 1");
    if (!isfinite(c->yarn_attn_factor) || !isfinite(c->yarn_ext_factor) || !(c->yarn_beta_fast > 0) ||
        !(c->yarn_beta_slow > 0) || !isfinite(c->yarn_beta_fast) || !isfinite(c->yarn_beta_slow))
        return error_fail(GRAPE_ERR_ARG, "YaRN factors must be finite (betas > 0)");
    return GRAPE_OK;
}

static grape_status check_config(const grape_pe_config *c, const rot_kind *kd, int R) {
    if (!kd->turns) return GRAPE_OK;
    if (R < 2 || R > c->head_dim || R % 2)
        return error_fail(GRAPE_ERR_ARG, "rotary_dim must be even in [2, head_dim=%d], got %d", c->head_dim, R);
    if (!isfinite(c->rope_base) || c->rope_base <= 1.0)
        return error_fail(GRAPE_ERR_ARG, "rope_base must be finite and > 1, got %g", c->rope_base);
    if (c->interleaved != 0 && c->interleaved != 1)
        return error_fail(GRAPE_ERR_ARG, "interleaved must be 0 or 1, got %d", c->interleaved);
    if (kd->decay && (!(c->xpos_gamma > 0) || !isfinite(c->xpos_gamma) ||
                      !(c->xpos_scale_base > 0) || !isfinite(c->xpos_scale_base)))
        return error_fail(GRAPE_ERR_ARG, "xpos_gamma and xpos_scale_base must be finite and > 0");
    if (kd->x16 && (!(c->log_freq_scale > 0) || !isfinite(c->log_freq_scale)))
        return error_fail(GRAPE_ERR_ARG, "log_freq_scale must be finite and > 0, got %g", c->log_freq_scale);
    if (kd->frame == ROT_FRAME_NC && (c->nc_rank < 2 || c->nc_rank > R || c->nc_rank % 2))
        return error_fail(GRAPE_ERR_ARG, "nc_rank must be even in [2, rotary_dim=%d], got %d", R, c->nc_rank);
    return check_scaling(c);
}

static size_t skew_count(const rot_kind *kd, int R, int r) {
    if (kd->frame == ROT_FRAME_BASIS) return (size_t)R * (size_t)(R - 1) / 2;
    if (kd->frame == ROT_FRAME_NC) return nc_skew_count(R, r);
    return 0;
}

static grape_status alloc_frames(rot_state *r) {
    size_t nft = (size_t)r->nset * (size_t)r->frame * (size_t)r->R;
    if (!(r->ft = mem_alloc(nft * sizeof(float)))) return GRAPE_ERR_NOMEM;
    if (r->kd->frame == ROT_FRAME_BASIS &&
        !(r->fb = mem_alloc((size_t)r->nset * (size_t)r->R * (size_t)r->R * sizeof(float))))
        return GRAPE_ERR_NOMEM;
    if (r->kd->frame == ROT_FRAME_NC &&
        !(r->fe = mem_alloc((size_t)r->nset * (size_t)r->R * (size_t)r->fpad * sizeof(float))))
        return GRAPE_ERR_NOMEM;
    return GRAPE_OK;
}

static grape_status rot_init_tables(rot_state *r) {
    if (!(r->theta0 = mem_alloc((size_t)r->npair * sizeof(double)))) return GRAPE_ERR_NOMEM;
    rope_theta_table(r->theta0, &r->mscale, &r->cfg, r->npair);
    if (r->kd->decay) {
        if (!(r->ln_zeta = mem_alloc((size_t)r->npair * sizeof(double)))) return GRAPE_ERR_NOMEM;
        xpos_ln_zeta(r->ln_zeta, &r->cfg, r->npair);
    }
    grape_status st = rot_tables_alloc(&r->tab, r);
    if (st) return st;
    if (r->n_skew && (st = alloc_frames(r))) return st;
    if (!r->kd->learned_freq) { // fixed frequencies: the tables are final now
        memcpy(r->tab.theta, r->theta0, (size_t)r->npair * sizeof(double));
        r->prepared = 1;
    }
    return GRAPE_OK;
}

grape_status rot_create(rot_state **out, const grape_pe_config *cfg) {
    *out = NULL;
    int R = cfg->rotary_dim ? cfg->rotary_dim : cfg->head_dim;
    const rot_kind *kd = rot_kind_of(cfg->rot);
    grape_status st = check_config(cfg, kd, R);
    if (st) return st;
    rot_state *r = mem_alloc(sizeof *r);
    if (!r) return GRAPE_ERR_NOMEM;
    r->cfg = *cfg;
    r->kind = cfg->rot;
    r->kd = kd;
    r->H = cfg->n_heads;
    r->D = cfg->head_dim;
    r->R = kd->turns ? R : 0;
    r->frame = kd->frame == ROT_FRAME_NC ? cfg->nc_rank : r->R;
    r->npair = r->frame / 2;
    r->fpad = (r->frame + ROT_FRAME_LANES - 1) / ROT_FRAME_LANES * ROT_FRAME_LANES;
    r->mscale = 1.0;
    atomic_flag_clear(&r->work.busy);
    atomic_init(&r->work.allocs, 0);
    r->nset = kd->per_head_sets && cfg->per_head ? r->H : 1;
    r->phase_heads = kd->phase && cfg->per_head ? r->H : 1;
    r->n_freq = kd->learned_freq ? (size_t)r->npair : 0;
    r->n_skew = skew_count(kd, r->R, r->frame);
    r->n_params = (size_t)r->nset * (r->n_freq + r->n_skew);
    if (!kd->turns) r->prepared = 1;
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
    mem_free(r->theta0);
    mem_free(r->ln_zeta);
    mem_free(r->ft);
    mem_free(r->fb);
    mem_free(r->fe);
    mem_free(r->work.mem);
    mem_free(r);
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
        put_tensor(out, n++, max, r->kd->skew_name,
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
    if (!(t->theta = mem_alloc((size_t)r->nset * (size_t)r->npair * sizeof(double))) ||
        !(t->scratch = mem_alloc((r->n_params + 3 * RR) * sizeof(double)))) {
        rot_tables_free(t);
        return GRAPE_ERR_NOMEM;
    }
    if (!r->n_skew) return GRAPE_OK;
    if (!(t->basis = mem_alloc(n)) || !(t->cay_m = mem_alloc(n))) {
        rot_tables_free(t);
        return GRAPE_ERR_NOMEM;
    }
    return GRAPE_OK;
}

void rot_tables_free(rot_tables *t) {
    mem_free(t->theta);
    mem_free(t->basis);
    mem_free(t->cay_m);
    mem_free(t->scratch);
    *t = (rot_tables){0};
}

grape_status rot_tables_derive(rot_tables *t, const rot_state *r, const double *params) {
    double scale = rot_freq_scale(r);
    size_t np = (size_t)r->npair, R = (size_t)r->R;
    for (size_t s = 0; s < (size_t)r->nset; s++)
        for (size_t p = 0; p < np; p++) {
            t->theta[s * np + p] = exp(params[s * r->n_freq + p] / scale);
            if (!isfinite(t->theta[s * np + p]))
                return error_fail(GRAPE_ERR_NUMERIC, "log_freq[%zu] gives a non-finite frequency", s * np + p);
        }
    if (!r->n_skew) return GRAPE_OK;
    double *A = t->scratch, *work = A + R * R; // params may sit after them (rot_prepare)
    grape_status st = GRAPE_OK;
    const double *skew = params + (size_t)r->nset * r->n_freq;
    for (size_t s = 0; s < (size_t)r->nset && !st; s++) {
        if (r->kd->frame == ROT_FRAME_BASIS) basis_skew_to_A(A, skew + s * r->n_skew, r->R);
        else nc_skew_to_A(A, skew + s * r->n_skew, r->R, r->frame, r->cfg.interleaved);
        st = cayley_forward_ws(t->basis + s * R * R, t->cay_m + s * R * R, A, r->R, work);
    }
    return st;
}

// dskew += the chain of the accumulated frame gradients dF (nset, frame, R) (rows of dFᵀ) through Cayley and the
// kind's skew layout. work: ROT_CHAIN_WORK(nset, R) doubles.
void rot_frame_chain(float *dskew, const double *dF, const rot_state *r, double *work) {
    size_t RR = (size_t)r->R * (size_t)r->R;
    double *dA = work, *cw = work + (size_t)r->nset * RR;
    cayley_frames_backward(dA, dF, r->tab.cay_m, r->nset, r->R, r->frame, cw);
    for (size_t s = 0; s < (size_t)r->nset; s++) {
        float *ds = dskew + s * r->n_skew;
        if (r->kd->frame == ROT_FRAME_BASIS) basis_skew_backward(ds, dA + s * RR, r->R);
        else nc_skew_backward(ds, dA + s * RR, r->R, r->frame, r->cfg.interleaved);
    }
}
