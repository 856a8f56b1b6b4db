// bias.c — the additive action: the bias part of grape_pe, the factor workspace, and the block oracle that turns
// factors into a bias block (its backward, which only the tests need, is in tests/ref/bias_block_ref.c). What
// depends on the kind is read from its row of the kind table (bias_kinds.c); the factor kernels live in alibi.c,
// fox.c, grape_a.c, grape_ap.c.
//
// GRAPE §2 (unipotent lift): every additive encoding is q̂ᵀ G_add(t)ᵀ G_add(j)^{-T} k̂ = qᵀk + b(t,j), and b is a
// closed form of per-token factors (grape.h). The closed forms (bias_kinds.h) are evaluated in double here so
// that the tiles of the fused attention and the tests see the same numbers.
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/error.h"
#include "core/mathx.h"
#include "core/mem.h"
#include "pe/bias_internal.h"
#include "pe/pe_internal.h"

// ---------------------------------------------------------------------------------------------------------------
// The bias part of grape_pe

// One arena for every table, sized by a planning pass (base NULL) and then handed out for real.
static void state_take(bias_state *s, grape_arena *a) {
    size_t H = (size_t)s->H, HD = H * (size_t)s->D;
    s->tables = a->base;
    s->m = arena_take(a, H * sizeof(float));
    s->slope = arena_take(a, H * sizeof(float));
    s->dslope_drho = arena_take(a, H * sizeof(float));
    s->u_hat = s->has_u ? arena_take(a, HD * sizeof(float)) : NULL;
    s->v_hat = s->has_v ? arena_take(a, HD * sizeof(float)) : NULL;
    s->u_norm = s->has_u ? arena_take(a, H * sizeof(float)) : NULL;
    s->v_norm = s->has_v ? arena_take(a, H * sizeof(float)) : NULL;
    s->dw_hat = s->has_u || s->has_v ? arena_take(a, (size_t)s->n_slots * HD * sizeof(double)) : NULL;
}

grape_status bias_create(bias_state **out, const grape_pe_config *cfg) {
    *out = NULL;
    grape_bias_kind k = cfg->bias;
    const bias_kind *kd = bias_kind_of(k);
    if (bias_kind_has(kd, BF_PROBE_Q) && (cfg->ap_probe_dim < 2 || cfg->ap_probe_dim % 2 ||
                                     cfg->ap_probe_dim > GRAPE_AP_MAX_P))
        return error_fail(GRAPE_ERR_ARG, "grape-ap: ap_probe_dim must be even in [2, %d], got %d", GRAPE_AP_MAX_P,
                          cfg->ap_probe_dim);
    if (cfg->ap_form < GRAPE_AP_OFFICIAL || cfg->ap_form > GRAPE_AP_RELATIVE)
        return error_fail(GRAPE_ERR_ARG, "ap_form must be 0 (official), 1 (paper) or 2 (relative), got %d",
                          cfg->ap_form);
    bias_state tmp = {.kind = k, .kd = kd, .H = cfg->n_heads, .D = cfg->head_dim, .ap_form = cfg->ap_form,
                      .n_slots = omp_get_max_threads()};
    tmp.P = bias_kind_has(kd, BF_PROBE_Q) ? cfg->ap_probe_dim : 0;
    tmp.has_u = kd->gate_k;
    tmp.has_v = kd->gate_q;
    size_t HD = (size_t)tmp.H * (size_t)tmp.D;
    tmp.off_u = kd->learned_slope ? (size_t)tmp.H : 0; // parameters: [rho | u | v], each where the kind has it
    tmp.off_v = tmp.off_u + (tmp.has_u ? HD : 0);
    tmp.n_params = tmp.off_v + (tmp.has_v ? HD : 0);
    grape_arena plan = {0};
    state_take(&tmp, &plan);
    bias_state *s = mem_alloc(sizeof *s);
    char *base = mem_alloc(plan.used);
    if (!s || !base) {
        mem_free(s);
        mem_free(base);
        return GRAPE_ERR_NOMEM;
    }
    *s = tmp;
    grape_arena a = {base, plan.used, 0};
    state_take(s, &a);
    for (int h = 0; h < s->H; h++) s->m[h] = s->slope[h] = (float)alibi_slope(h, s->H);
    *out = s;
    return GRAPE_OK;
}

void bias_free(bias_state *s) {
    if (!s) return;
    mem_free(s->tables);
    mem_free(s);
}

size_t bias_num_params(const bias_state *s) { return s->n_params; }

int bias_param_tensors(const bias_state *s, grape_param_info *out, int max, size_t base) {
    grape_param_info all[3];
    int n = 0;
    if (s->kd->learned_slope) all[n++] = (grape_param_info){"rho", base, 1, {s->H}, 1};
    if (s->has_u) all[n++] = (grape_param_info){"u", base + s->off_u, 2, {s->H, s->D}, 1};
    if (s->has_v) all[n++] = (grape_param_info){"v", base + s->off_v, 2, {s->H, s->D}, 1};
    for (int i = 0; i < n && i < max; i++) out[i] = all[i];
    return n;
}

grape_status bias_init_params(const bias_state *s, float *params, uint64_t seed) {
    return s->n_params ? gate_init(s, params, seed) : GRAPE_OK;
}

// Official model/llama-mha-grape-a-*.py: ω_h = softplus(ρ_h)·m_h; gates read û = u/max(‖u‖, 1e-6).
grape_status bias_prepare(bias_state *s, const float *params) {
    if (!s->kd->learned_slope) return GRAPE_OK;
    for (int h = 0; h < s->H; h++) {
        if (!isfinite(params[h]))
            return error_fail(GRAPE_ERR_NUMERIC, "%s: rho[%d] is not finite", s->kd->info.name, h);
        s->slope[h] = (float)(softplus_d(params[h]) * s->m[h]);
        s->dslope_drho[h] = (float)(sigmoid_d(params[h]) * s->m[h]);
    }
    if (s->has_u) gate_normalise(s->u_hat, s->u_norm, params + s->off_u, s->H, s->D);
    if (s->has_v) gate_normalise(s->v_hat, s->v_norm, params + s->off_v, s->H, s->D);
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------------
// Factor workspace: a handle, then the channels of the kind's row in BF_* order; the same layout holds the factors
// or their gradients.

// Elements of channel i for (B,T,H,P); SIZE_MAX when the size overflows.
static size_t channel_len(int i, int B, int T, int H, int P) {
    const bias_factor_desc *d = &bias_factor_descs[i];
    size_t n;
    if (d->per_head) return (size_t)H;
    if (!size_mul(&n, (size_t)B * (size_t)T, (size_t)H) || (d->probe_wide && !size_mul(&n, n, (size_t)P)) ||
        n > SIZE_MAX / 16)
        return SIZE_MAX;
    return n;
}

// Take the handle (hb bytes) into *head and the channels kind needs into ch from a (planning when a->base is NULL).
// Returns 0 when a size overflows.
static int slices_take(void **head, void **ch, grape_arena *a, size_t hb, grape_bias_kind kind, int B, int T,
                       int H, int P) {
    // The per-token sizes must fit whether or not the kind has such a channel.
    if (B < 0 || T < 0 || channel_len(BF_GATE_Q, B, T, H, P) == SIZE_MAX ||
        channel_len(BF_PROBE_Q, B, T, H, P) == SIZE_MAX)
        return 0;
    const bias_kind *kd = bias_kind_of(kind);
    *head = arena_take(a, hb);
    for (int i = 0; i < BF_COUNT; i++) {
        ch[i] = NULL;
        if (!bias_kind_has(kd, i)) continue;
        size_t n = channel_len(i, B, T, H, P);
        if (n == SIZE_MAX) return 0;
        ch[i] = arena_take(a, n * (bias_factor_descs[i].dtype == GRAPE_F64 ? sizeof(double) : sizeof(float)));
    }
    return 1;
}

static size_t head_bytes(void) {
    return sizeof(grape_bias_factors) > sizeof(grape_bias_grads) ? sizeof(grape_bias_factors)
                                                                  : sizeof(grape_bias_grads);
}

size_t grape_bias_workspace_bytes(const grape_pe *pe, int B, int T) {
    void *head, *ch[BF_COUNT];
    grape_arena plan = {0};
    const bias_state *s = pe->bias;
    if (!slices_take(&head, ch, &plan, head_bytes(), s->kind, B, T, s->H, s->P)) return SIZE_MAX;
    return plan.used;
}

// Lay out the handle and the channels of pe's kind at ws (values untouched); *bytes: the extent.
static grape_status factors_layout(grape_bias_factors **out, size_t *bytes, void *ws, const grape_pe *pe,
                                   int64_t pos0, int B, int T) {
    const bias_state *s = pe->bias;
    if (B < 1 || T < 1) return error_fail(GRAPE_ERR_ARG, "bias: B and T must be >= 1, got B=%d T=%d", B, T);
    if (pos0 > (INT64_C(1) << 52) || pos0 < -(INT64_C(1) << 52))
        return error_fail(GRAPE_ERR_ARG, "bias: |pos0| must be below 2^52, got %lld", (long long)pos0);
    void *head, *ch[BF_COUNT];
    grape_arena a = {ws, SIZE_MAX, 0};
    if (!slices_take(&head, ch, &a, head_bytes(), s->kind, B, T, s->H, s->P))
        return error_fail(GRAPE_ERR_NOMEM, "bias: factors of B=%d T=%d overflow", B, T);
    grape_bias_factors *f = head;
    *f = (grape_bias_factors){s->kind, B, T, s->H, s->P, pos0, {0}};
    memcpy(f->ch, ch, sizeof ch);
    *out = f;
    *bytes = a.used;
    return GRAPE_OK;
}

grape_status grape_bias_factors_bind(grape_bias_factors **out, void *ws, const grape_pe *pe, int64_t pos0, int B,
                                     int T) {
    if (!out || !ws || !pe) return error_fail(GRAPE_ERR_ARG, "grape_bias_factors_bind: NULL argument");
    size_t bytes = 0, hb = head_bytes();
    grape_status st = factors_layout(out, &bytes, ws, pe, pos0, B, T);
    if (!st) memset((char *)ws + hb, 0, bytes - hb);
    return st;
}

grape_status grape_bias_grads_bind(grape_bias_grads **out, void *ws, const grape_bias_factors *f) {
    if (!out || !f || !ws) return error_fail(GRAPE_ERR_ARG, "grape_bias_grads_bind: NULL argument");
    void *head, *ch[BF_COUNT];
    grape_arena plan = {0};
    if (!slices_take(&head, ch, &plan, head_bytes(), f->kind, f->B, f->T, f->H, f->P))
        return error_fail(GRAPE_ERR_NOMEM, "grape_bias_grads_bind: size overflows");
    memset(ws, 0, plan.used);
    grape_arena a = {ws, plan.used, 0};
    slices_take(&head, ch, &a, head_bytes(), f->kind, f->B, f->T, f->H, f->P);
    grape_bias_grads *g = head;
    *g = (grape_bias_grads){f->kind, f->B, f->T, f->H, f->P, {0}};
    memcpy(g->ch, ch, sizeof ch);
    *out = g;
    return GRAPE_OK;
}

// Channel i of the list (the kind's channels in BF_* order) of factors or gradients with data ch.
static grape_status channel_at(grape_channel *out, void *const *ch, grape_bias_kind kind, int B, int T, int H, int P,
                               int i) {
    const bias_kind *kd = bias_kind_of(kind);
    for (int c = 0, n = 0; c < BF_COUNT; c++) {
        if (!bias_kind_has(kd, c) || n++ != i) continue;
        const bias_factor_desc *d = &bias_factor_descs[c];
        *out = (grape_channel){d->name, d->dtype, 1, {H}, ch[c]};
        if (!d->per_head) *out = (grape_channel){d->name, d->dtype, 3 + d->probe_wide, {B, T, H, P}, ch[c]};
        return GRAPE_OK;
    }
    return error_fail(GRAPE_ERR_ARG, "%s: no bias factor channel %d", kd->info.name, i);
}

int grape_bias_num_factors(const grape_bias_factors *f) {
    return f ? __builtin_popcount(bias_kind_of(f->kind)->factors) : 0;
}

grape_status grape_bias_factor(const grape_bias_factors *f, int i, grape_channel *out) {
    if (!f || !out) return error_fail(GRAPE_ERR_ARG, "grape_bias_factor: NULL argument");
    return channel_at(out, f->ch, f->kind, f->B, f->T, f->H, f->P, i);
}

grape_status grape_bias_grad(const grape_bias_grads *g, int i, grape_channel *out) {
    if (!g || !out) return error_fail(GRAPE_ERR_ARG, "grape_bias_grad: NULL argument");
    return channel_at(out, g->ch, g->kind, g->B, g->T, g->H, g->P, i);
}

static grape_status check_inputs(const grape_pe *pe, const float *q, const float *k, const float *const *in, int B,
                                 int T) {
    const bias_state *s = pe->bias;
    const bias_kind *kd = s->kd;
    const char *name = kd->info.name;
    if (B < 1 || T < 1) return error_fail(GRAPE_ERR_ARG, "%s: B and T must be >= 1, got B=%d T=%d", name, B, T);
    for (int i = pe->in_bias; i < pe->in_shift; i++)
        if (!in || !in[i])
            return error_fail(GRAPE_ERR_ARG, "%s: token input %d ('%s') is NULL", name, i, pe->inputs[i].name);
    if (s->has_u && !k) return error_fail(GRAPE_ERR_ARG, "%s: the key gate needs k (got NULL)", name);
    if (s->has_v && !q) return error_fail(GRAPE_ERR_ARG, "%s: the query gate needs q (got NULL)", name);
    return GRAPE_OK;
}

grape_status grape_bias_factors_forward(grape_bias_factors **out, void *ws, const grape_pe *pe, const float *q,
                                        const float *k, const float *const *in, int64_t pos0, int B, int T) {
    if (!out || !pe) return error_fail(GRAPE_ERR_ARG, "grape_bias_factors_forward: NULL argument");
    const bias_state *s = pe->bias;
    grape_status st = check_inputs(pe, q, k, in, B, T);
    if (st) return st;
    if (!ws) return error_fail(GRAPE_ERR_ARG, "grape_bias_factors_forward: ws NULL");
    grape_bias_factors *f = NULL;
    size_t bytes;
    if ((st = factors_layout(&f, &bytes, ws, pe, pos0, B, T))) return st;
    float *slope = f->ch[BF_SLOPE], *gate_q = f->ch[BF_GATE_Q], *gate_k = f->ch[BF_GATE_K];
    if (slope) memcpy(slope, s->slope, (size_t)s->H * sizeof(float));
    if (gate_k) gate_forward(gate_k, k, s->u_hat, B, T, s->H, s->D);
    if (gate_q) gate_forward(gate_q, q, s->v_hat, B, T, s->H, s->D);
    const float *tok = pe_bias_input(pe, in, 0);
    if (f->ch[BF_CUM]) fox_cum_forward(f->ch[BF_CUM], tok, B, T, s->H);
    if (f->ch[BF_PROBE_Q])
        ap_probes_forward(f->ch[BF_PROBE_Q], f->ch[BF_PROBE_K], tok, pos0, s->ap_form, B, T, s->H, s->P);
    *out = f;
    return GRAPE_OK;
}

// Chain dw_hat (the scratch filled by the gate backward) into dparams through the normalisation.
static void gate_params_backward(float *dw, const bias_state *s, const float *w_hat, const float *w_norm) {
    if (dw) gate_norm_backward(dw, s->dw_hat, w_hat, w_norm, s->H, s->D);
}

grape_status grape_bias_factors_backward(float *dparams, float *dq, float *dk, float *const *din,
                                         const grape_bias_grads *g, const grape_bias_factors *f,
                                         const grape_pe *pe, const float *q, const float *k, const float *const *in) {
    if (!g || !f || !pe) return error_fail(GRAPE_ERR_ARG, "grape_bias_factors_backward: NULL argument");
    bias_state *s = pe->bias;
    if (f->kind != s->kind || f->H != s->H)
        return error_fail(GRAPE_ERR_ARG, "grape_bias_factors_backward: factors were made by another encoding");
    if (g->kind != f->kind || g->B != f->B || g->T != f->T)
        return error_fail(GRAPE_ERR_ARG, "grape_bias_factors_backward: gradients were bound to other factors");
    grape_status st = check_inputs(pe, q, k, in, f->B, f->T);
    if (st) return st;
    int B = f->B, T = f->T, H = s->H, D = s->D;
    float *dp = dparams ? dparams + pe->n_rot_params : NULL;
    const float *dslope = bg_f32(g, BF_SLOPE), *dgate_q = bg_f32(g, BF_GATE_Q), *dgate_k = bg_f32(g, BF_GATE_K);
    if (s->kd->learned_slope && dp && dslope)
        for (int h = 0; h < H; h++) dp[h] += dslope[h] * s->dslope_drho[h];
    if (s->has_u && dgate_k) {
        gate_backward(dk, s->dw_hat, s->n_slots, dgate_k, bf_f32(f, BF_GATE_K), k, s->u_hat, B, T, H, D);
        gate_params_backward(dp ? dp + s->off_u : NULL, s, s->u_hat, s->u_norm);
    }
    if (s->has_v && dgate_q) {
        gate_backward(dq, s->dw_hat, s->n_slots, dgate_q, bf_f32(f, BF_GATE_Q), q, s->v_hat, B, T, H, D);
        gate_params_backward(dp ? dp + s->off_v : NULL, s, s->v_hat, s->v_norm);
    }
    float *dtok = pe_bias_input_grad(pe, din, 0);
    const float *tok = pe_bias_input(pe, in, 0);
    if (bg_f64(g, BF_CUM) && dtok) fox_cum_backward(dtok, bg_f64(g, BF_CUM), tok, B, T, H);
    if (bg_f32(g, BF_PROBE_Q) && bg_f32(g, BF_PROBE_K) && dtok)
        ap_probes_backward(dtok, bg_f32(g, BF_PROBE_Q), bg_f32(g, BF_PROBE_K), tok, f->pos0, s->ap_form, B, T, H,
                           s->P);
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------------
// The block oracle: the closed forms of bias_kinds.h over a block, in double. Query t and key j are indices into
// T of batch b, head h.

bias_pair bias_block_pair(const grape_bias_factors *f, int b, int h, int t, int j) {
    size_t it = bias_tok(f, b, t, h), ij = bias_tok(f, b, j, h);
    const float *slope = bf_f32(f, BF_SLOPE), *gate_q = bf_f32(f, BF_GATE_Q), *gate_k = bf_f32(f, BF_GATE_K);
    const double *cum = bf_f64(f, BF_CUM);
    return (bias_pair){.slope = slope ? slope[h] : 0.0, .dist = (double)(t - j), .gate_q = gate_q ? gate_q[it] : 0.0,
                       .gate_k = gate_k ? gate_k[ij] : 0.0, .cum_q = cum ? cum[it] : 0.0,
                       .cum_k = cum ? cum[ij] : 0.0};
}

double bias_block_score(const grape_bias_factors *f, int b, int h, int t, int l) {
    const float *pq = bf_f32(f, BF_PROBE_Q) + bias_tok(f, b, t, h) * (size_t)f->P;
    const float *pk = bf_f32(f, BF_PROBE_K) + bias_tok(f, b, l, h) * (size_t)f->P;
    double s = 0;
    for (int i = 0; i < f->P; i++) s += (double)pq[i] * pk[i];
    return s / f->P;
}

// Path row t: b(t,j) = α_h Σ_{l=j+1..t} ψ(t,l) by a reverse running sum (no cancellation; b(t,t) = 0).
static void path_row(float *row, const grape_bias_factors *f, int b, int h, int t, int j0, int Tk) {
    double alpha = bf_f32(f, BF_SLOPE)[h], acc = 0;
    int jhi = t < j0 + Tk - 1 ? t : j0 + Tk - 1;
    for (int l = t; l > j0; l--) {
        acc += bias_path_edge(bias_block_score(f, b, h, t, l));
        if (l - 1 <= jhi) row[l - 1 - j0] = (float)(alpha * acc);
    }
    if (t >= j0 && t < j0 + Tk) row[t - j0] = 0.0f;
}

void bias_block(float *bias, const grape_bias_factors *f, int b, int h, int t0, int Tq, int j0, int Tk) {
    // bias: (Tq,Tk)
    const bias_kind *kd = bias_kind_of(f->kind);
    for (int i = 0; i < Tq; i++) {
        int t = t0 + i;
        float *row = bias + (size_t)i * (size_t)Tk;
        for (int c = 0; c < Tk; c++) row[c] = -INFINITY;
        if (kd->form == BIAS_FORM_PATH) {
            path_row(row, f, b, h, t, j0, Tk);
            continue;
        }
        for (int c = 0; c < Tk && j0 + c <= t; c++) {
            bias_pair p = bias_block_pair(f, b, h, t, j0 + c);
            row[c] = (float)bias_pair_value(kd, &p);
        }
    }
}
