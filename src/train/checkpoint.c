// checkpoint.c — see checkpoint.h. One table lists every metadata key with its type and place in
// (grape_train_config, grape_train_state), so saving and loading cannot drift apart.
#include "train/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/errctx.h"
#include "train/safetensors.h"

typedef struct {
    grape_train_config cfg;
    grape_train_state st;
} ckpt_meta;

typedef enum { F_INT, F_I64, F_U64, F_DBL, F_DBL_NAN, F_STR } field_type; // F_DBL: finite; F_DBL_NAN: or NaN

typedef struct {
    const char *key;
    field_type type;
    size_t offset, size;
    int optional; // absent in older checkpoints: the zeroed default ("" for a string) stands
} ckpt_field;

_Static_assert(sizeof(grape_rope_scaling) == sizeof(int), "enum fields are stored as int");

#define FIELD_OPT(key, type, member, optional)                                                                          \
    { key, type, offsetof(ckpt_meta, member), sizeof(((ckpt_meta *)0)->member), optional }
#define FIELD(key, type, member) FIELD_OPT(key, type, member, 0)

static const ckpt_field fields[] = {
    FIELD("model.preset", F_STR, cfg.preset),
    FIELD("model.n_layer", F_INT, cfg.model.n_layer),
    FIELD("model.n_embd", F_INT, cfg.model.n_embd),
    FIELD("model.n_head", F_INT, cfg.model.n_head),
    FIELD("model.vocab_size", F_INT, cfg.model.vocab_size),
    FIELD("model.max_batch", F_INT, cfg.model.max_batch),
    FIELD("model.max_seq", F_INT, cfg.model.max_seq),
    FIELD("pe.name", F_STR, cfg.pe_name),
    FIELD("pe.n_heads", F_INT, cfg.model.pe.n_heads),
    FIELD("pe.head_dim", F_INT, cfg.model.pe.head_dim),
    FIELD("pe.rotary_dim", F_INT, cfg.model.pe.rotary_dim),
    FIELD("pe.interleaved", F_INT, cfg.model.pe.interleaved),
    FIELD("pe.rope_base", F_DBL, cfg.model.pe.rope_base),
    FIELD("pe.scaling", F_INT, cfg.model.pe.scaling),
    FIELD("pe.scaling_factor", F_DBL, cfg.model.pe.scaling_factor),
    FIELD("pe.yarn_orig_ctx", F_INT, cfg.model.pe.yarn_orig_ctx),
    FIELD("pe.yarn_ext_factor", F_DBL, cfg.model.pe.yarn_ext_factor),
    FIELD("pe.yarn_attn_factor", F_DBL, cfg.model.pe.yarn_attn_factor),
    FIELD("pe.yarn_beta_fast", F_DBL, cfg.model.pe.yarn_beta_fast),
    FIELD("pe.yarn_beta_slow", F_DBL, cfg.model.pe.yarn_beta_slow),
    FIELD("pe.xpos_gamma", F_DBL, cfg.model.pe.xpos_gamma),
    FIELD("pe.xpos_scale_base", F_DBL, cfg.model.pe.xpos_scale_base),
    FIELD("pe.per_head", F_INT, cfg.model.pe.per_head),
    FIELD("pe.log_freq_scale", F_DBL, cfg.model.pe.log_freq_scale),
    FIELD("pe.nc_rank", F_INT, cfg.model.pe.nc_rank),
    FIELD("pe.ap_probe_dim", F_INT, cfg.model.pe.ap_probe_dim),
    FIELD("pe.ap_form", F_INT, cfg.model.pe.ap_form),
    FIELD("pe.kv_shift", F_INT, cfg.model.pe.kv_shift),
    FIELD("pe.basis_folded", F_INT, cfg.model.pe.basis_folded),
    FIELD("pe.qk_gain", F_INT, cfg.model.pe.qk_gain),
    FIELD("data.path", F_STR, cfg.data),
    FIELD("data.doc_sep", F_STR, cfg.doc_sep),
    FIELD_OPT("train.task_mix", F_STR, cfg.task_mix, 1),
    FIELD("data.bytes", F_U64, st.data_bytes),
    FIELD("data.docs", F_U64, st.data_docs),
    FIELD("train.batch", F_INT, cfg.batch),
    FIELD("train.seq", F_INT, cfg.seq),
    FIELD("train.grad_accum", F_INT, cfg.grad_accum),
    FIELD("train.accum_mean", F_INT, cfg.accum_mean),
    FIELD("train.steps", F_I64, cfg.steps),
    FIELD("train.seed", F_U64, cfg.seed),
    FIELD("train.eval_interval", F_I64, cfg.eval_interval),
    FIELD("train.eval_batches", F_I64, cfg.eval_batches),
    FIELD("train.log_interval", F_I64, cfg.log_interval),
    FIELD("train.save_interval", F_I64, cfg.save_interval),
    FIELD("train.threads", F_INT, cfg.threads),
    FIELD("opt.lr", F_DBL, cfg.opt.lr),
    FIELD("opt.min_lr_ratio", F_DBL, cfg.opt.min_lr_ratio),
    FIELD("opt.warmup", F_I64, cfg.opt.warmup),
    FIELD("opt.decay_steps", F_I64, cfg.opt.decay_steps),
    FIELD("opt.beta1", F_DBL, cfg.opt.beta1),
    FIELD("opt.beta2", F_DBL, cfg.opt.beta2),
    FIELD("opt.eps", F_DBL, cfg.opt.eps),
    FIELD("opt.weight_decay", F_DBL, cfg.opt.weight_decay),
    FIELD("opt.clip", F_DBL, cfg.opt.clip),
    FIELD("state.step", F_I64, st.step),
    FIELD("state.rng", F_U64, st.rng),
    FIELD("state.tokens", F_I64, st.tokens),
    FIELD("state.last_val_bpb", F_DBL_NAN, st.last_val),
};
#define N_FIELDS (int)(sizeof fields / sizeof fields[0])
#define N_META (N_FIELDS + 3) // + format, grape.format, grape.format_version

static grape_status ckpt_path(char *buf, size_t n, const char *dir) {
    if (snprintf(buf, n, "%s/%s", dir, GRAPE_CHECKPOINT_FILE) >= (int)n) return error_fail(GRAPE_ERR_ARG, "path too long: %s", dir);
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Metadata

// Print one field; strings are pointed to in place, numbers printed into buf.
static const char *format_field(char *buf, size_t n, const ckpt_field *f, const ckpt_meta *m) {
    const char *p = (const char *)m + f->offset;
    switch (f->type) {
    case F_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case F_I64: snprintf(buf, n, "%" PRId64, *(const int64_t *)p); break;
    case F_U64: snprintf(buf, n, "%" PRIu64, *(const uint64_t *)p); break;
    case F_DBL:
    case F_DBL_NAN: snprintf(buf, n, "%.17g", *(const double *)p); break;
    case F_STR: return p;
    }
    return buf;
}

// A stringified number: optional '-' (signed types only), then digits (and for doubles what strtod reads, but
// no leading space or '+', no hex), nothing after; ints within their type, doubles finite (or NaN if allowed).
static int number_ok(const char *s, const char *end, field_type t) {
    if (end == s || *end || errno) return 0;
    const char *d = s + (*s == '-' && t != F_U64);
    if (t == F_DBL_NAN && !strcmp(d, "nan")) return 1;
    return *d >= '0' && *d <= '9' && !strpbrk(s, "xX");
}

static grape_status parse_field(ckpt_meta *m, const ckpt_field *f, const char *s) {
    char *p = (char *)m + f->offset, *end = NULL;
    errno = 0;
    switch (f->type) {
    case F_INT: {
        long long v = strtoll(s, &end, 10);
        if (v < -2147483647LL - 1 || v > 2147483647LL) errno = ERANGE;
        *(int *)p = (int)v;
        break;
    }
    case F_I64: *(int64_t *)p = strtoll(s, &end, 10); break;
    case F_U64: *(uint64_t *)p = strtoull(s, &end, 10); break;
    case F_DBL:
    case F_DBL_NAN: *(double *)p = strtod(s, &end); break;
    case F_STR:
        if (strlen(s) >= f->size) return error_fail(GRAPE_ERR_FORMAT, "checkpoint key '%s' is too long", f->key);
        strcpy(p, s);
        return GRAPE_OK;
    }
    if (!number_ok(s, end, f->type) || (f->type == F_DBL && !isfinite(*(double *)p)))
        return error_fail(GRAPE_ERR_FORMAT, "checkpoint key '%s' has a bad value '%s'", f->key, s);
    return GRAPE_OK;
}

grape_status ckpt_check_storable(const grape_train_config *cfg) {
    ckpt_meta m = {.cfg = *cfg};
    for (int i = 0; i < N_FIELDS; i++) {
        if (fields[i].type != F_STR) continue;
        json_t *v = json_string((const char *)&m + fields[i].offset); // NULL: not UTF-8
        json_decref(v);
        if (!v)
            return error_fail(GRAPE_ERR_ARG, "'%s' is not valid UTF-8, and the checkpoint stores it as a JSON string",
                              fields[i].key);
    }
    return GRAPE_OK;
}

// The format version: "grape.format_version" beside the safetensors convention "format": "pt"; v1 files had
// "format": "grape-checkpoint", "format_version": "1" (found too, so they are refused by name). NULL when f is
// not a grape checkpoint.
static const char *format_version(const st_file *f) {
    const char *fmt = st_meta(f, "format"), *grape = st_meta(f, "grape.format");
    if (fmt && !strcmp(fmt, "pt") && grape && !strcmp(grape, CKPT_FORMAT)) return st_meta(f, "grape.format_version");
    if (fmt && !strcmp(fmt, CKPT_FORMAT)) return st_meta(f, "format_version");
    return NULL;
}

static grape_status read_meta(const st_file *f, const char *path, grape_train_config *cfg, grape_train_state *st) {
    const char *ver = format_version(f);
    if (!ver) return error_fail(GRAPE_ERR_FORMAT, "'%s' is a safetensors file but not a grape checkpoint", path);
    if (strcmp(ver, CKPT_VERSION))
        return error_fail(GRAPE_ERR_FORMAT, "'%s' is checkpoint format v%s; this grape reads v%s", path, ver,
                          CKPT_VERSION);
    ckpt_meta m = {0};
    for (int i = 0; i < N_FIELDS; i++) {
        const char *v = st_meta(f, fields[i].key);
        if (!v && fields[i].optional) continue;
        if (!v) return error_fail(GRAPE_ERR_FORMAT, "checkpoint '%s' lacks key '%s'", path, fields[i].key);
        grape_status s = parse_field(&m, &fields[i], v);
        if (s) return s;
    }
    // The rotation and bias kinds travel as the canonical name.
    if (grape_pe_parse(&m.cfg.model.pe, m.cfg.pe_name)) return fail_in(GRAPE_ERR_FORMAT, path);
    *cfg = m.cfg;
    *st = m.st;
    return GRAPE_OK;
}

grape_status ckpt_read_meta(const char *dir, grape_train_config *cfg, grape_train_state *st) {
    char path[GRAPE_TRAIN_PATH_MAX + 64];
    grape_status s = ckpt_path(path, sizeof path, dir);
    st_file *f = NULL;
    if (!s) s = st_open(&f, path);
    if (!s) s = read_meta(f, path, cfg, st);
    st_close(f);
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// Tensors

static void entry_of(st_entry *e, const grape_tensor_info *t, const char *name, const float *base) {
    *e = (st_entry){.name = name, .ndim = t->ndim, .data = base + t->offset};
    for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
}

size_t ckpt_numel(const grape_tensor_info *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

// Names "opt.m.<name>" and "opt.v.<name>" for tensor i, in a caller buffer of 2*n bytes.
static grape_status moment_names(char *m_name, char *v_name, size_t n, const char *name) {
    if (snprintf(m_name, n, "opt.m.%s", name) >= (int)n || snprintf(v_name, n, "opt.v.%s", name) >= (int)n)
        return error_fail(GRAPE_ERR_ARG, "tensor name too long: %s", name);
    return GRAPE_OK;
}

#define NAME_MAX_LEN 256

grape_status ckpt_save(const char *dir, grape_model *m, const float *adam_m, const float *adam_v,
                       const grape_train_config *cfg, const grape_train_state *st) {
    char path[GRAPE_TRAIN_PATH_MAX + 64];
    grape_status s = atomic_mkdirs(dir);
    if (!s) s = ckpt_path(path, sizeof path, dir);
    if (s) return s;
    int nt = grape_model_num_tensors(m), sets = adam_m ? 3 : 1; // weights [+ both moments]
    st_entry *e = calloc((size_t)nt * sets, sizeof *e);
    char *names = calloc((size_t)nt * 2, NAME_MAX_LEN);
    if (!e || !names) s = error_fail(GRAPE_ERR_NOMEM, "out of memory saving a checkpoint");
    const float *params = grape_model_params(m);
    for (int i = 0; i < nt && !s; i++) {
        const grape_tensor_info *t = grape_model_tensor(m, i);
        char *mn = names + (size_t)2 * i * NAME_MAX_LEN, *vn = mn + NAME_MAX_LEN;
        s = moment_names(mn, vn, NAME_MAX_LEN, t->name);
        entry_of(&e[i], t, t->name, params);
        if (sets == 1) continue;
        entry_of(&e[nt + i], t, mn, adam_m);
        entry_of(&e[2 * nt + i], t, vn, adam_v);
    }
    ckpt_meta meta = {*cfg, *st};
    char nums[N_FIELDS][32];
    const char *kv[2 * N_META] = {"format", "pt", "grape.format", CKPT_FORMAT, "grape.format_version", CKPT_VERSION};
    for (int i = 0; i < N_FIELDS; i++) {
        kv[6 + 2 * i] = fields[i].key;
        kv[7 + 2 * i] = format_field(nums[i], sizeof nums[i], &fields[i], &meta);
    }
    if (!s) s = st_save(path, e, sets * nt, kv, N_META);
    free(e);
    free(names);
    return s;
}

// One tensor into dst: present, F32, the shape of t (not only its element count), every value finite.
static grape_status read_tensor(const st_file *f, const char *name, const grape_tensor_info *t, float *dst) {
    const st_info *in = st_find(f, name);
    int same = in && in->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = in->shape[d] == t->shape[d];
    if (in && !same)
        return error_fail(GRAPE_ERR_FORMAT, "the checkpoint does not fit this model: tensor '%s' has a shape other "
                                            "than the config's", name);
    size_t n = ckpt_numel(t);
    grape_status s = st_read_f32(f, name, dst, n);
    if (s == GRAPE_ERR_FORMAT) return fail_in(s, "the checkpoint does not fit this model");
    for (size_t i = 0; i < n && !s; i++)
        if (!isfinite(dst[i]))
            return error_fail(GRAPE_ERR_FORMAT, "tensor '%s' holds a non-finite value (%g at element %zu)", name,
                              (double)dst[i], i);
    return s;
}

// Every tensor of m (and the moments unless adam_m is NULL) from an open checkpoint, which holds exactly the
// model's tensors, or those and both moments of each: nothing more (names are unique, so a count suffices).
static grape_status read_tensors(const st_file *f, grape_model *m, float *adam_m, float *adam_v) {
    char mn[NAME_MAX_LEN], vn[NAME_MAX_LEN];
    float *params = grape_model_params(m);
    int nt = grape_model_num_tensors(m), moments = 0;
    grape_status s = GRAPE_OK;
    for (int i = 0; i < nt && !s; i++) {
        const grape_tensor_info *t = grape_model_tensor(m, i);
        s = read_tensor(f, t->name, t, params + t->offset);
        if (!s) s = moment_names(mn, vn, sizeof mn, t->name);
        moments += !s && st_find(f, mn) && st_find(f, vn);
        if (!s && adam_m) s = read_tensor(f, mn, t, adam_m + t->offset);
        if (!s && adam_v) s = read_tensor(f, vn, t, adam_v + t->offset);
    }
    int want = nt * (moments == nt ? 3 : 1);
    if (!s && st_num_tensors(f) != want)
        s = error_fail(GRAPE_ERR_FORMAT, "the checkpoint does not fit this model: %d tensors where it has %d%s",
                       st_num_tensors(f), want, moments ? " (weights and both moments)" : "");
    return s;
}

grape_status ckpt_load_tensors(const char *dir, grape_model *m, float *adam_m, float *adam_v) {
    char path[GRAPE_TRAIN_PATH_MAX + 64];
    grape_status s = ckpt_path(path, sizeof path, dir);
    st_file *f = NULL;
    if (!s) s = st_open(&f, path);
    if (!s && (s = read_tensors(f, m, adam_m, adam_v)) && !strstr(grape_last_error(), path)) fail_in(s, path);
    st_close(f);
    return s ? s : grape_model_params_changed(m);
}

static grape_status check_plan(const st_file *f, const grape_model_config *c);

grape_status ckpt_check_resumable(const char *dir) {
    char path[GRAPE_TRAIN_PATH_MAX + 64];
    grape_status s = ckpt_path(path, sizeof path, dir);
    st_file *f = NULL;
    grape_train_config c;
    grape_train_state st;
    if (!s) s = st_open(&f, path);
    if (!s && (s = read_meta(f, path, &c, &st)) == GRAPE_OK && (s = check_plan(f, &c.model)))
        fail_in(s, path);
    int moments = 0;
    for (int i = 0; !s && i < st_num_tensors(f) && !moments; i++)
        moments = !strncmp(st_tensor_at(f, i)->name, "opt.", 4);
    st_close(f);
    if (!s && !moments)
        s = error_fail(GRAPE_ERR_FORMAT, "'%s' holds weights only (no optimizer state): it loads, but cannot resume",
                       path);
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// Models (grape.h): a checkpoint's model, and weights-only checkpoints

// Model parameters no configuration c can do without: wte and ln_f, and per layer ln1, ln2, q, k, v, wo and the
// three MLP matrices (encoding parameters and QK norms come on top); UINT64_MAX when that overflows.
static uint64_t min_params(const grape_model_config *c) {
    uint64_t L = (uint64_t)c->n_layer, C = (uint64_t)c->n_embd, F = 8 * C / 3, cc, fc, per, all, v, n;
    if (__builtin_mul_overflow(C, 4 * C, &cc) || __builtin_mul_overflow(F, 3 * C, &fc) ||
        __builtin_add_overflow(cc, fc, &per) || __builtin_add_overflow(per, 2 * C, &per) ||
        __builtin_mul_overflow(per, L, &all) || __builtin_mul_overflow((uint64_t)c->vocab_size, C, &v) ||
        __builtin_add_overflow(all, v + C, &n))
        return UINT64_MAX;
    return n;
}

// The checks that run before anything is allocated from a checkpoint's configuration: positive sizes (so the
// bounds below are meaningful; grape_model_create checks the exact ranges), the fewest parameters that
// configuration needs fit in the file's tensor bytes, and the plan's activations (at least max_batch x max_seq
// x n_layer x n_embd floats) fit in physical memory.
static grape_status check_plan(const st_file *f, const grape_model_config *c) {
    if (c->n_layer < 1 || c->n_embd < 1 || c->n_head < 1 || c->vocab_size < 1 || c->max_batch < 1 || c->max_seq < 1)
        return error_fail(GRAPE_ERR_FORMAT, "model sizes must be positive (n_layer %d, n_embd %d, n_head %d, "
                                            "vocab_size %d, plan %d x %d)",
                          c->n_layer, c->n_embd, c->n_head, c->vocab_size, c->max_batch, c->max_seq);
    uint64_t have = 0, need = min_params(c), acts;
    for (int i = 0; i < st_num_tensors(f); i++) have += st_tensor_at(f, i)->end - st_tensor_at(f, i)->begin;
    if (need > have / 4)
        return error_fail(GRAPE_ERR_FORMAT,
                          "the config (n_layer %d, n_embd %d) needs at least %llu parameters, the file holds %llu",
                          c->n_layer, c->n_embd, (unsigned long long)need, (unsigned long long)(have / 4));
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t tokens = (uint64_t)c->max_batch * (uint64_t)c->max_seq, width = (uint64_t)c->n_layer * c->n_embd;
    if (__builtin_mul_overflow(tokens, width, &acts) || __builtin_mul_overflow(acts, 4, &acts) || acts > ram)
        return error_fail(GRAPE_ERR_FORMAT, "the activation plan %d x %d needs more than the %llu bytes of memory",
                          c->max_batch, c->max_seq, (unsigned long long)ram);
    return GRAPE_OK;
}

// The model of an open checkpoint, planned for max_batch x max_seq (0: the checkpoint's plan).
static grape_status load_model(grape_model **out, grape_train_config *c, grape_train_state *st, const st_file *f,
                               const char *path, int max_batch, int max_seq) {
    grape_status s = read_meta(f, path, c, st);
    if (s) return s;
    // 0 keeps the checkpoint's plan; anything else (negatives included) goes to grape_model_create's checks.
    if (max_batch) c->model.max_batch = max_batch;
    if (max_seq) c->model.max_seq = max_seq;
    if ((max_batch >= 0 && max_seq >= 0 && (s = check_plan(f, &c->model))) ||
        (s = grape_model_create(out, &c->model)))
        return s == GRAPE_ERR_ARG && !max_batch && !max_seq ? GRAPE_ERR_FORMAT : s;
    if (!(s = read_tensors(f, *out, NULL, NULL))) s = grape_model_params_changed(*out);
    if (s) {
        grape_model_free(*out);
        *out = NULL;
    }
    return s;
}

grape_status ckpt_load_model(grape_model **out, grape_train_config *cfg, grape_train_state *st, const char *dir, int max_batch,
                             int max_seq) {
    if (!out || !dir) return error_fail(GRAPE_ERR_ARG, "grape_model_load: NULL argument");
    *out = NULL;
    char path[GRAPE_TRAIN_PATH_MAX + 64];
    grape_train_config c;
    grape_train_state state;
    st_file *f = NULL;
    grape_status s = ckpt_path(path, sizeof path, dir);
    if (!s) s = st_open(&f, path);
    if (!s && (s = load_model(out, &c, &state, f, path, max_batch, max_seq)) && !strstr(grape_last_error(), path))
        fail_in(s, path);
    st_close(f);
    if (s) return s;
    if (cfg) *cfg = c;
    if (st) *st = state;
    return GRAPE_OK;
}

grape_status grape_model_load(grape_model **out, const char *dir, int max_batch, int max_seq) {
    return ckpt_load_model(out, NULL, NULL, dir, max_batch, max_seq);
}

grape_status grape_model_save(grape_model *m, const char *dir) {
    if (!m || !dir) return error_fail(GRAPE_ERR_ARG, "grape_model_save: NULL argument");
    const grape_model_config *mc = grape_model_get_config(m);
    // No run behind these weights: the training keys are zeros (data.path empty), which ckpt_read_meta accepts.
    grape_train_config c = {.preset = "custom", .model = *mc, .batch = mc->max_batch, .seq = mc->max_seq};
    grape_pe_name(c.pe_name, sizeof c.pe_name, &mc->pe);
    grape_train_state st = {.last_val = NAN};
    return ckpt_save(dir, m, NULL, NULL, &c, &st);
}
