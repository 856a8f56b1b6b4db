// model.c — the byte-level Llama-style model object: configuration and presets, parameter layout (named
// tensors), the arena plan (one allocation for params, grads, activations and scratch), initialisation.
// Backbone of the official GRAPE code (github.com/model-architectures/GRAPE, model/llama-mha-*.py). Forward/backward:
// model_fwd.c; decoding: decode.c.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "attn/attn_internal.h"
#include "core/error.h"
#include "core/mem.h"
#include "model/model_internal.h"
#include "pe/bias_kinds.h"
#include "pe/rot_kinds.h"

#define MODEL_MAX_DIM (1 << 20)

// ---------------------------------------------------------------------------------------------------------------
// Configuration

grape_status grape_model_preset(grape_model_config *cfg, const char *name) {
    static const struct {
        const char *name;
        int L, C, H, B, T;
    } presets[] = {{"micro", 2, 64, 2, 8, 64}, {"tiny", 4, 256, 4, 16, 256}, {"small", 6, 384, 6, 8, 512}};
    if (!cfg || !name) return error_fail(GRAPE_ERR_ARG, "grape_model_preset: NULL argument");
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name)) continue;
        *cfg = (grape_model_config){.n_layer = presets[i].L, .n_embd = presets[i].C, .n_head = presets[i].H,
                                    .vocab_size = 256, .max_batch = presets[i].B, .max_seq = presets[i].T};
        grape_pe_config_default(&cfg->pe, presets[i].H, presets[i].C / presets[i].H);
        return GRAPE_OK;
    }
    return error_fail(GRAPE_ERR_ARG, "unknown model preset '%s' (micro, tiny, small)", name);
}

static grape_status check_config(const grape_model_config *c) {
    const struct {
        const char *what;
        int v, lo, hi;
    } dims[] = {{"n_layer", c->n_layer, 1, 4096},          {"n_embd", c->n_embd, 2, MODEL_MAX_DIM},
                {"n_head", c->n_head, 1, MODEL_MAX_DIM},     {"vocab_size", c->vocab_size, 1, 256},
                {"max_batch", c->max_batch, 1, MODEL_MAX_DIM}, {"max_seq", c->max_seq, 1, 1 << 30}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < dims[i].lo || dims[i].v > dims[i].hi)
            return error_fail(GRAPE_ERR_ARG, "model %s must be in [%d, %d], got %d", dims[i].what, dims[i].lo,
                              dims[i].hi, dims[i].v);
    if (c->n_embd % c->n_head)
        return error_fail(GRAPE_ERR_ARG, "n_embd (%d) must be divisible by n_head (%d)", c->n_embd, c->n_head);
    if ((c->n_embd / c->n_head) % 2)
        return error_fail(GRAPE_ERR_ARG, "head dim n_embd/n_head = %d must be even (rotation pairs)",
                          c->n_embd / c->n_head);
    if (c->pe.qk_gain != GRAPE_QK_GAIN_DIM && c->pe.qk_gain != GRAPE_QK_GAIN_PAIR)
        return error_fail(GRAPE_ERR_ARG, "qk_gain must be 0 (per-dimension) or 1 (pair), got %d", c->pe.qk_gain);
    if (c->pe.qk_gain == GRAPE_QK_GAIN_PAIR && !rot_kind_of(c->pe.rot)->turns)
        return error_fail(GRAPE_ERR_ARG, "qk_gain=pair ties the gains of rotation pairs: it needs a rotation");
    if (c->pe.basis_folded && rot_kind_of(c->pe.rot)->frame != ROT_FRAME_BASIS)
        return error_fail(GRAPE_ERR_ARG, "basis_folded applies to grape-m-basis only");
    return GRAPE_OK;
}

static qk_order qk_order_of(grape_rot_kind rot) {
    const rot_kind *kd = rot_kind_of(rot);
    if (!kd->turns) return QK_NORM_ONLY;
    return kd->norm_first ? QK_NORM_THEN_ROT : QK_ROT_THEN_NORM;
}

static grape_status tok_layout_init(tok_layout *tl, const grape_pe *pe, int C) {
    *tl = (tok_layout){.n = grape_pe_num_token_inputs(pe)};
    if (tl->n > MODEL_MAX_INPUTS) return error_fail(GRAPE_ERR_ARG, "encoding has %d token inputs (max %d)", tl->n,
                                                    MODEL_MAX_INPUTS);
    for (int i = 0; i < tl->n; i++) {
        const grape_token_input_info *ti = grape_pe_token_input_info(pe, i);
        tl->width[i] = ti->width;
        tl->col[i] = 3 * C + tl->E;
        tl->E += ti->width;
        tl->bias[i] = ti->has_bias ? tl->E_bias : -1;
        tl->E_bias += ti->has_bias ? ti->width : 0;
    }
    tl->phase = grape_pe_token_input_find(pe, "phase");
    tl->shift_k = grape_pe_token_input_find(pe, "shift_k");
    tl->shift_v = grape_pe_token_input_find(pe, "shift_v");
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------------
// Parameter layout: wte | per layer (ln1, wqkv, b_tok, q_norm, k_norm, wo, pe, ln2, w12, w3) | ln_f.
// wq|wk|wv|extras are adjacent rows (one GEMM), as are w1|w2.

static void add_tensor(grape_model *m, size_t *at, const char *name, int ndim, int d0, int d1, int wd) {
    grape_tensor_info *t = &m->tensors[m->n_tensors];
    snprintf(m->names[m->n_tensors], MODEL_NAME_LEN, "%s", name);
    *t = (grape_tensor_info){.name = m->names[m->n_tensors], .offset = *at, .ndim = ndim, .shape = {d0, d1},
                             .weight_decay = wd};
    *at += (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    m->n_tensors++;
}

// Named rows of the fused projection: same storage as wqkv, listed separately for checkpoints and AdamW.
static void add_qkv_tensors(grape_model *m, size_t *at, const char *p) {
    char nm[MODEL_NAME_LEN];
    static const char *const qkv[] = {"wq", "wk", "wv"};
    for (int i = 0; i < 3; i++) {
        snprintf(nm, sizeof nm, "%s.attn.%s", p, qkv[i]);
        add_tensor(m, at, nm, 2, m->C, m->C, 1);
    }
    for (int i = 0; i < m->tl.n; i++) {
        snprintf(nm, sizeof nm, "%s.attn.w_%s", p, grape_pe_token_input_info(m->pe[0], i)->name);
        add_tensor(m, at, nm, 2, m->tl.width[i], m->C, 1);
    }
}

static void layout_layer(grape_model *m, size_t *at, int l) {
    char p[24], nm[MODEL_NAME_LEN];
    snprintf(p, sizeof p, "layers.%d", l);
    layer_offsets *o = &m->off[l];
#define NAMED(field, suffix, ndim, d0, d1, wd)                                                                  \
    do {                                                                                                        \
        o->field = *at;                                                                                         \
        snprintf(nm, sizeof nm, "%s.%s", p, suffix);                                                            \
        add_tensor(m, at, nm, ndim, d0, d1, wd);                                                                \
    } while (0)
    NAMED(ln1, "ln1.weight", 1, m->C, 0, 0);
    o->wqkv = *at;
    add_qkv_tensors(m, at, p);
    o->b_tok = *at;
    for (int i = 0; i < m->tl.n; i++) {
        if (m->tl.bias[i] < 0) continue;
        snprintf(nm, sizeof nm, "%s.attn.b_%s", p, grape_pe_token_input_info(m->pe[l], i)->name);
        add_tensor(m, at, nm, 1, m->tl.width[i], 0, 1);
    }
    NAMED(q_norm, "attn.q_norm.weight", 1, m->G, 0, 0);
    NAMED(k_norm, "attn.k_norm.weight", 1, m->G, 0, 0);
    NAMED(wo, "attn.wo", 2, m->C, m->C, 1);
#undef NAMED
    o->pe = *at;
    for (int i = 0; i < grape_pe_num_param_tensors(m->pe[l]); i++) {
        const grape_param_info *pi = grape_pe_param_tensor(m->pe[l], i);
        snprintf(nm, sizeof nm, "%s.pe.%s", p, pi->name);
        size_t start = o->pe + pi->offset;
        add_tensor(m, &start, nm, pi->ndim, pi->shape[0], pi->ndim > 1 ? pi->shape[1] : 0, pi->weight_decay);
        // PE tensors may be up to 4-D; keep the full shape for checkpoints.
        memcpy(m->tensors[m->n_tensors - 1].shape, pi->shape, sizeof pi->shape);
    }
    *at = o->pe + grape_pe_num_params(m->pe[l]);
    o->ln2 = *at;
    snprintf(nm, sizeof nm, "%s.ln2.weight", p);
    add_tensor(m, at, nm, 1, m->C, 0, 0);
    o->w12 = *at;
    snprintf(nm, sizeof nm, "%s.mlp.w1", p);
    add_tensor(m, at, nm, 2, m->F, m->C, 1);
    snprintf(nm, sizeof nm, "%s.mlp.w2", p);
    add_tensor(m, at, nm, 2, m->F, m->C, 1);
    o->w3 = *at;
    snprintf(nm, sizeof nm, "%s.mlp.w3", p);
    add_tensor(m, at, nm, 2, m->C, m->F, 1);
}

static void layout_params(grape_model *m) {
    size_t at = 0;
    m->off_wte = at;
    add_tensor(m, &at, "wte", 2, m->V, m->C, 1);
    for (int l = 0; l < m->L; l++) layout_layer(m, &at, l);
    m->off_lnf = at;
    add_tensor(m, &at, "ln_f.weight", 1, m->C, 0, 0);
    m->n_params = at;
}

layer_view model_layer(const grape_model *m, float *base, int l) {
    const layer_offsets *o = &m->off[l];
    return (layer_view){.ln1 = base + o->ln1, .wqkv = base + o->wqkv,
                        .b_tok = m->tl.E_bias ? base + o->b_tok : NULL, .q_norm = base + o->q_norm,
                        .k_norm = base + o->k_norm, .wo = base + o->wo, .pe = base + o->pe, .ln2 = base + o->ln2,
                        .w12 = base + o->w12, .w3 = base + o->w3};
}

void model_token_inputs(float **in, const grape_model *m, const float *tok, size_t N, size_t first) {
    const tok_layout *tl = &m->tl;
    for (int i = 0; i < tl->n; i++)
        in[i] = (float *)tok + N * (size_t)(tl->col[i] - 3 * m->C) + first * (size_t)tl->width[i];
}

// ---------------------------------------------------------------------------------------------------------------
// Arena plan. plan() runs twice: with a NULL base to size the arena (every product overflow-checked), then on
// the real block to hand out the same slices.

typedef struct {
    grape_arena a;
    int overflow;
} planner;

static void *take(planner *p, size_t n, size_t elem) {
    size_t bytes, end;
    if (!size_mul(&bytes, n, elem) || bytes > SIZE_MAX / 2 || !size_add(&end, p->a.used, align_up(bytes))) {
        p->overflow = 1;
        return NULL;
    }
    return arena_take(&p->a, bytes);
}

// n1 * n2 elements of elem bytes, overflow-checked.
static void *take2(planner *p, size_t n1, size_t n2, size_t elem) {
    size_t n;
    if (!size_mul(&n, n1, n2)) {
        p->overflow = 1;
        return NULL;
    }
    return take(p, n, elem);
}

static void plan_layer(planner *p, grape_model *m, layer_acts *a, size_t N, int last) {
    size_t C = (size_t)m->C, F = (size_t)m->F, NH = N * (size_t)m->H, f = sizeof(float);
    a->x = take2(p, N, C, f);
    if (last) return;
    int rot = m->order != QK_NORM_ONLY;
    a->ln1 = take2(p, N, C, f);
    a->rstd1 = take(p, N, f);
    a->qraw = take2(p, N, C, f);
    a->kraw = take2(p, N, C, f);
    a->v = take2(p, N, C, f);
    a->ko = m->tl.shift_k >= 0 ? take2(p, N, C, f) : NULL;
    a->vo = m->tl.shift_k >= 0 ? take2(p, N, C, f) : NULL;
    a->qmid = rot ? take2(p, N, C, f) : NULL;
    a->kmid = rot ? take2(p, N, C, f) : NULL;
    a->q = take2(p, N, C, f);
    a->k = take2(p, N, C, f);
    a->rstdq = take(p, NH, f);
    a->rstdk = take(p, NH, f);
    a->qg = m->gated ? take2(p, N, C, f) : NULL;
    a->kg = m->gated ? take2(p, N, C, f) : NULL;
    a->rstdqg = m->gated ? take(p, NH, f) : NULL;
    a->rstdkg = m->gated ? take(p, NH, f) : NULL;
    a->tok = m->tl.E ? take2(p, N, (size_t)m->tl.E, f) : NULL;
    a->phase = m->tl.phase >= 0 ? take2(p, N, (size_t)tok_width(&m->tl, m->tl.phase), sizeof(double)) : NULL;
    a->bias_ws = m->bias_ws_bytes ? take(p, m->bias_ws_bytes, 1) : NULL;
    a->att = take2(p, N, C, f);
    a->lse = take(p, NH, f);
    a->xmid = take2(p, N, C, f);
    a->ln2 = take2(p, N, C, f);
    a->rstd2 = take(p, N, f);
    a->h12 = take2(p, N, 2 * F, f);
    a->act = take2(p, N, F, f);
}

static void plan_scratch(planner *p, grape_model *m, size_t N) {
    model_scratch *s = &m->s;
    size_t C = (size_t)m->C, F = (size_t)m->F, f = sizeof(float);
    s->qkv = take2(p, N, (size_t)m->Ctot, f);
    float **nc[] = {&s->dx, &s->dln, &s->datt, &s->dq, &s->dk, &s->dv, &s->dqmid, &s->dkmid, &s->dqraw, &s->dkraw};
    for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) *nc[i] = take2(p, N, C, f);
    s->dko = m->tl.shift_k >= 0 ? take2(p, N, C, f) : NULL;
    s->dvo = m->tl.shift_k >= 0 ? take2(p, N, C, f) : NULL;
    s->dqkv = take2(p, N, (size_t)m->Ctot, f);
    s->dh12 = take2(p, N, 2 * F, f);
    s->dact = take2(p, N, F, f);
    s->dlogits = take2(p, N, (size_t)m->V, f);
    s->dtok = m->tl.E ? take2(p, N, (size_t)m->tl.E, f) : NULL;
    s->dphase = m->tl.phase >= 0 ? take2(p, N, (size_t)tok_width(&m->tl, m->tl.phase), sizeof(double)) : NULL;
    s->dbias_ws = m->bias_ws_bytes ? take(p, m->bias_ws_bytes, 1) : NULL;
    s->attn_ws = take(p, m->attn_ws_bytes, 1);
    s->dgain = m->gain_idx ? take2(p, 2, (size_t)m->D, f) : NULL;
}

static void plan(planner *p, grape_model *m) {
    size_t N = (size_t)m->cfg.max_batch * (size_t)m->cfg.max_seq;
    int fold = m->cfg.pe.basis_folded;
    m->params = take(p, m->n_params, sizeof(float));
    m->grads = take(p, m->n_params, sizeof(float));
    for (int l = 0; l < m->L; l++) m->wfold[l] = fold ? take2(p, (size_t)m->Ctot, (size_t)m->C, sizeof(float)) : NULL;
    m->gain_full = m->gain_idx ? take2(p, 2 * (size_t)m->L, (size_t)m->D, sizeof(float)) : NULL;
    m->s.dwfold = fold ? take2(p, (size_t)m->Ctot, (size_t)m->C, sizeof(float)) : NULL;
    for (int l = 0; l <= m->L; l++) plan_layer(p, m, &m->acts[l], N, l == m->L);
    m->lnf = take2(p, N, (size_t)m->C, sizeof(float));
    m->rstdf = take(p, N, sizeof(float));
    m->logits = take2(p, N, (size_t)m->V, sizeof(float));
    m->lse_ce = take(p, N, sizeof(float));
    m->tokens = take(p, N, 1);
    m->targets = take(p, N, 1);
    plan_scratch(p, m, N);
}

// ---------------------------------------------------------------------------------------------------------------
// Create / free

int model_probe_dim(const grape_model *m) {
    return bias_kind_has(bias_kind_of(m->cfg.pe.bias), BF_PROBE_Q) ? m->cfg.pe.ap_probe_dim : 0;
}

static grape_status create_encodings(grape_model *m) {
    grape_pe_config pc = m->cfg.pe;
    pc.n_heads = m->H;
    pc.head_dim = m->D;
    m->cfg.pe = pc;
    for (int l = 0; l < m->L; l++) {
        grape_status st = grape_pe_create(&m->pe[l], &pc);
        if (!st) st = grape_pe_reserve(m->pe[l], m->cfg.max_batch, m->cfg.max_seq); // steps and decode allocate nothing
        if (st) return st;
    }
    m->order = qk_order_of(pc.rot);
    m->gated = rot_kind_of(pc.rot)->turns && bias_kind_gated(bias_kind_of(pc.bias));
    grape_status st = tok_layout_init(&m->tl, m->pe[0], m->C);
    if (st) return st;
    m->Ctot = 3 * m->C + m->tl.E;
    m->bias_ws_bytes = pc.bias != GRAPE_BIAS_NONE
                           ? grape_bias_workspace_bytes(m->pe[0], m->cfg.max_batch, m->cfg.max_seq)
                           : 0;
    int nth = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    m->attn_ws_bytes = attn_workspace_bytes(nth, m->cfg.max_seq, m->H, m->D, model_probe_dim(m), 1);
    if (!m->attn_ws_bytes) return error_fail(GRAPE_ERR_NOMEM, "attention workspace for max_seq %d overflows", m->cfg.max_seq);
    return GRAPE_OK;
}

static grape_status alloc_tables(grape_model *m) {
    m->pe = mem_alloc((size_t)m->L * sizeof *m->pe);
    m->off = mem_alloc((size_t)m->L * sizeof *m->off);
    m->acts = mem_alloc(((size_t)m->L + 1) * sizeof *m->acts);
    m->wfold = mem_alloc((size_t)m->L * sizeof *m->wfold);
    return (m->pe && m->off && m->acts && m->wfold) ? GRAPE_OK : GRAPE_ERR_NOMEM;
}

// Pair-tied QK gains: rotation pair p (half-split (p, p + R/2) or interleaved (2p, 2p + 1)) reads gain p, tail
// dimension i >= R reads gain R/2 + i - R; so G = D - R/2 gains per tensor.
static grape_status gain_layout(grape_model *m) {
    m->G = m->D;
    if (m->cfg.pe.qk_gain != GRAPE_QK_GAIN_PAIR) return GRAPE_OK;
    int R = m->cfg.pe.rotary_dim ? m->cfg.pe.rotary_dim : m->D, np = R / 2;
    if (!(m->gain_idx = mem_alloc((size_t)m->D * sizeof *m->gain_idx))) return GRAPE_ERR_NOMEM;
    for (int p = 0; p < np; p++) {
        int il = m->cfg.pe.interleaved;
        m->gain_idx[il ? 2 * p : p] = m->gain_idx[il ? 2 * p + 1 : p + np] = p;
    }
    for (int i = R; i < m->D; i++) m->gain_idx[i] = np + i - R;
    m->G = m->D - np;
    return GRAPE_OK;
}

// Room for every named tensor: wte, ln_f, and per layer the model's own plus the encoding's.
static grape_status alloc_tensor_table(grape_model *m) {
    size_t nt = 2 + (size_t)m->L * (MODEL_MAX_TENSORS_PER_LAYER + (size_t)grape_pe_num_param_tensors(m->pe[0]));
    m->tensors = mem_alloc(nt * sizeof *m->tensors);
    m->names = mem_alloc(nt * sizeof *m->names);
    return (m->tensors && m->names) ? GRAPE_OK : GRAPE_ERR_NOMEM;
}

static grape_status alloc_arena(grape_model *m) {
    planner p = {{NULL, 0, 0}, 0};
    plan(&p, m);
    if (p.overflow)
        return error_fail(GRAPE_ERR_NOMEM, "model arena size overflows (max_batch %d, max_seq %d, n_embd %d)",
                          m->cfg.max_batch, m->cfg.max_seq, m->C);
    m->arena_bytes = p.a.used;
    // Refuse an arena larger than the machine before allocating: with overcommit a huge allocation succeeds and
    // the process is killed later, on first touch.
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double gib = 1024.0 * 1024.0 * 1024.0, have = pages > 0 && page > 0 ? (double)pages * (double)page : INFINITY;
    if ((double)m->arena_bytes > have)
        return error_fail(GRAPE_ERR_NOMEM,
                          "the model needs %.1f GiB (parameters, gradients and activations for L=%d C=%d, "
                          "max_batch %d x max_seq %d), more than this machine's %.1f GiB of memory",
                          (double)m->arena_bytes / gib, m->L, m->C, m->cfg.max_batch, m->cfg.max_seq, have / gib);
    if (!(m->arena = mem_alloc(m->arena_bytes)))
        return error_fail(GRAPE_ERR_NOMEM, "cannot allocate the model's %.1f GiB", (double)m->arena_bytes / gib);
    p = (planner){{m->arena, m->arena_bytes, 0}, 0};
    plan(&p, m);
    return GRAPE_OK;
}

grape_status grape_model_create(grape_model **out, const grape_model_config *cfg) {
    if (!out || !cfg) return error_fail(GRAPE_ERR_ARG, "grape_model_create: NULL argument");
    *out = NULL;
    grape_status st = check_config(cfg);
    if (st) return st;
    grape_model *m = mem_alloc(sizeof *m);
    if (!m) return GRAPE_ERR_NOMEM;
    m->cfg = *cfg;
    m->version = 1; // nothing derived yet (prepared = 0)
    m->L = cfg->n_layer, m->C = cfg->n_embd, m->H = cfg->n_head, m->D = cfg->n_embd / cfg->n_head;
    m->V = cfg->vocab_size, m->F = (8 * cfg->n_embd) / 3;
    m->attn_opts = (grape_attn_opts){0.0f, 0};
    if ((st = alloc_tables(m)) || (st = create_encodings(m)) || (st = gain_layout(m)) ||
        (st = alloc_tensor_table(m))) {
        grape_model_free(m);
        return st;
    }
    layout_params(m);
    if ((st = alloc_arena(m))) {
        grape_model_free(m);
        return st;
    }
    *out = m;
    return GRAPE_OK;
}

void grape_model_free(grape_model *m) {
    if (!m) return;
    for (int l = 0; m->pe && l < m->L; l++) grape_pe_free(m->pe[l]);
    mem_free(m->pe);
    mem_free(m->off);
    mem_free(m->acts);
    mem_free(m->wfold);
    mem_free(m->gain_idx);
    mem_free(m->tensors);
    mem_free(m->names);
    mem_free(m->arena);
    mem_free(m);
}

const grape_model_config *grape_model_get_config(const grape_model *m) { return &m->cfg; }
size_t grape_model_num_params(const grape_model *m) { return m->n_params; }
float *grape_model_params(grape_model *m) { return m->params; }
float *grape_model_grads(grape_model *m) { return m->grads; }
int grape_model_num_tensors(const grape_model *m) { return m->n_tensors; }
const grape_tensor_info *grape_model_tensor(const grape_model *m, int i) {
    return (i >= 0 && i < m->n_tensors) ? &m->tensors[i] : NULL;
}
const float *grape_model_logits(const grape_model *m) { return m->logits; }

grape_status grape_model_set_attn_opts(grape_model *m, const grape_attn_opts *opts) {
    if (!opts || opts->scale < 0 || opts->bca_window < 0)
        return error_fail(GRAPE_ERR_ARG, "grape_model_set_attn_opts: NULL or negative option");
    m->attn_opts = *opts;
    return GRAPE_OK;
}

grape_status grape_model_set_position_offset(grape_model *m, int64_t pos0) {
    if (!m || pos0 < 0 || pos0 > ((int64_t)1 << 40))
        return error_fail(GRAPE_ERR_ARG, "grape_model_set_position_offset: offset must be in [0, 2^40]");
    m->pos0 = pos0;
    return GRAPE_OK;
}

void grape_model_zero_grad(grape_model *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

// ---------------------------------------------------------------------------------------------------------------
// Initialisation (official GRAPE code, init_llama_mha_weights in model/llama-mha-*.py): wte ~ N(0, 0.02²); 2-D
// weights ~ N(0, (0.5/√C)²), W_o and W_3 further /√L; RMSNorm gains 1; grape-m-ctx gate w = 0, c = ln(expm1(1e-3)); FoX gate bias 0; PE tensors their own init.


// splitmix64: a seeded, order-independent stream per tensor.
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((double)(splitmix(s) >> 11) + 0.5) * 0x1.0p-53; }

// Box-Muller normals of standard deviation std.
static void fill_normal(float *x, size_t n, double std, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform01(&s))), th = 2.0 * M_PI * uniform01(&s);
        x[i] = (float)(std * r * cos(th));
        if (i + 1 < n) x[i + 1] = (float)(std * r * sin(th));
    }
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

// The token input channels' rows: one normal stream from the first channel that is not zero-initialised to the
// last row (the zero-initialised ones, grape-m-ctx's phase gate w, come first in the list and are then cleared),
// and each channel's bias at its own init (grape-m-ctx c = ln(expm1(1e-3)), FoX b_f = 0).
static void init_token_rows(grape_model *m, int l, const layer_view *p, double std, uint64_t seed) {
    const tok_layout *tl = &m->tl;
    size_t C = (size_t)m->C, first = (size_t)tl->E;
    for (int i = tl->n - 1; i >= 0; i--)
        if (!grape_pe_token_input_info(m->pe[l], i)->zero_init) first = (size_t)(tl->col[i] - 3 * m->C);
    float *rows = p->wqkv + 3 * C * C;
    fill_normal(rows + first * C, ((size_t)tl->E - first) * C, std, seed);
    for (int i = 0; i < tl->n; i++) {
        const grape_token_input_info *ti = grape_pe_token_input_info(m->pe[l], i);
        if (ti->zero_init) memset(rows + (size_t)(tl->col[i] - 3 * m->C) * C, 0, (size_t)ti->width * C * sizeof(float));
        if (ti->has_bias) fill_const(p->b_tok + tl->bias[i], (size_t)ti->width, (float)ti->bias_init);
    }
}

static void init_layer(grape_model *m, int l, uint64_t seed) {
    layer_view p = model_layer(m, m->params, l);
    size_t C = (size_t)m->C, F = (size_t)m->F, tl0 = 3 * C * C;
    double std = 0.5 / sqrt((double)m->C), std_out = std / sqrt((double)m->L);
    uint64_t s = seed ^ ((uint64_t)(l + 1) * 0x632be59bd9b4e019ull);
    fill_const(p.ln1, C, 1.0f);
    fill_const(p.ln2, C, 1.0f);
    fill_const(p.q_norm, (size_t)m->G, 1.0f);
    fill_const(p.k_norm, (size_t)m->G, 1.0f);
    fill_normal(p.wqkv, tl0, std, s + 1);
    init_token_rows(m, l, &p, std, s + 2);
    fill_normal(p.wo, C * C, std_out, s + 3);
    fill_normal(p.w12, 2 * F * C, std, s + 4);
    fill_normal(p.w3, C * F, std_out, s + 5);
}

grape_status grape_model_init(grape_model *m, uint64_t seed) {
    fill_normal(m->params + m->off_wte, (size_t)m->V * (size_t)m->C, 0.02, seed);
    fill_const(m->params + m->off_lnf, (size_t)m->C, 1.0f);
    for (int l = 0; l < m->L; l++) {
        init_layer(m, l, seed);
        grape_status st = grape_pe_init_params(m->pe[l], m->params + m->off[l].pe, seed + 1000 + (uint64_t)l);
        if (st) return st;
    }
    grape_model_zero_grad(m);
    return grape_model_params_changed(m);
}

// wfold = [B^T wq; B^T wk; wv; extras] per head (grape-m-basis folded: the outer B is dropped, so the QK-RMSNorm
// gain acts in the B frame and the model equals grape-m with W_q, W_k reparametrised).
static grape_status fold_layer(grape_model *m, int l) {
    layer_view p = model_layer(m, m->params, l);
    size_t CC = (size_t)m->C * (size_t)m->C;
    float *w = m->wfold[l];
    grape_status st = grape_basis_fold(w, p.wqkv, m->pe[l], m->C);
    if (!st) st = grape_basis_fold(w + CC, p.wqkv + CC, m->pe[l], m->C);
    memcpy(w + 2 * CC, p.wqkv + 2 * CC, ((size_t)m->Ctot - 2 * (size_t)m->C) * (size_t)m->C * sizeof(float));
    return st;
}

const float *model_wqkv(const grape_model *m, int l) {
    return m->wfold[l] ? m->wfold[l] : m->params + m->off[l].wqkv;
}

const float *model_qk_gain(const grape_model *m, int l, grape_side side) {
    if (m->gain_full) return m->gain_full + (2 * (size_t)l + (size_t)side) * (size_t)m->D;
    return m->params + (side == GRAPE_QUERY ? m->off[l].q_norm : m->off[l].k_norm);
}

void model_qk_gain_tie(const grape_model *m, float *dg, const float *dg_full) {
    for (int i = 0; i < m->D; i++) dg[m->gain_idx[i]] += dg_full[i];
}

static void expand_gains(grape_model *m, int l) {
    for (int side = 0; side < 2; side++) {
        const float *g = m->params + (side ? m->off[l].k_norm : m->off[l].q_norm);
        float *full = m->gain_full + (2 * (size_t)l + (size_t)side) * (size_t)m->D;
        for (int i = 0; i < m->D; i++) full[i] = g[m->gain_idx[i]];
    }
}

grape_status model_prepare(grape_model *m) {
    if (m->prepared == m->version) return GRAPE_OK;
    for (int l = 0; l < m->L; l++) {
        grape_status st = grape_pe_prepare(m->pe[l], m->params + m->off[l].pe);
        if (!st && m->wfold[l]) st = fold_layer(m, l);
        if (st) return st;
        if (m->gain_full) expand_gains(m, l);
    }
    m->prepared = m->version;
    return GRAPE_OK;
}

grape_status grape_model_params_changed(grape_model *m) {
    m->version++;
    return model_prepare(m);
}
