// trainer.c — grape_trainer (grape.h, "Training"): configuration, create/resume, and the step: sample,
// forward/backward per micro-batch, the group's gradient sum, clip, AdamW, then validation, metrics and
// checkpoints on their intervals.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/mem.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/errctx.h"
#include "train/metrics.h"
#include "train/train.h"

// ---------------------------------------------------------------------------------------------------------
// Configuration

void grape_train_config_default(grape_train_config *c) {
    *c = (grape_train_config){
        .preset = "tiny",
        .pe_name = "rope",
        .data = "data/kjv.txt",
        .grad_accum = 1,
        .steps = 1000,
        .opt = {.lr = 1e-3,
                .min_lr_ratio = 0.1,
                .warmup = -1,
                .decay_steps = -1,
                .beta1 = 0.9,
                .beta2 = 0.95,
                .eps = 1e-8,
                .weight_decay = 0.1,
                .clip = 1.0},
        .seed = 42,
        .eval_interval = 250,
        .eval_batches = 8,
        .log_interval = 10,
        .save_interval = 1000,
    };
}

// cfg->model from the preset, the sizes already set in it (> 0) overriding the preset's; batch and seq (when 0)
// from the preset.
static grape_status model_from_preset(grape_train_config *c) {
    grape_model_config mc;
    grape_status s = grape_model_preset(&mc, c->preset);
    if (s) return s;
    if (c->model.n_layer > 0) mc.n_layer = c->model.n_layer;
    if (c->model.n_embd > 0) mc.n_embd = c->model.n_embd;
    if (c->model.n_head > 0) mc.n_head = c->model.n_head;
    if (c->batch == 0) c->batch = mc.max_batch;
    if (c->seq == 0) c->seq = mc.max_seq;
    c->model = mc;
    return GRAPE_OK;
}

grape_status grape_train_config_resolve(grape_train_config *c) {
    if (!c) return error_fail(GRAPE_ERR_ARG, "grape_train_config_resolve: NULL configuration");
    task_mix mix;
    grape_status s = task_mix_parse(&mix, c->task_mix);
    if (s) return fail_in(s, "--task-mix");
    task_mix_name(c->task_mix, sizeof c->task_mix, &mix);
    if (c->model.vocab_size == 0 && (s = model_from_preset(c))) return s;
    grape_model_config *mc = &c->model;
    if (mc->n_head < 1 || mc->n_embd < 1)
        return error_fail(GRAPE_ERR_ARG, "model n_embd %d, n_head %d: both must be >= 1", mc->n_embd, mc->n_head);
    if (c->batch == 0) c->batch = mc->max_batch;
    if (c->seq == 0) c->seq = mc->max_seq;
    mc->pe.n_heads = mc->n_head;
    mc->pe.head_dim = mc->n_embd / mc->n_head;
    if ((s = grape_pe_parse(&mc->pe, c->pe_name))) return s;
    mc->max_batch = c->batch;
    mc->max_seq = c->seq;
    grape_pe_name(c->pe_name, sizeof c->pe_name, &mc->pe);
    // Automatic schedule: warmup over min(100, steps/10) steps, cosine to the floor at the last step.
    if (c->opt.warmup < 0) c->opt.warmup = c->steps / 10 < 100 ? c->steps / 10 : 100;
    if (c->opt.decay_steps < 0) c->opt.decay_steps = c->steps;
    return GRAPE_OK;
}

grape_status grape_train_checkpoint(grape_train_config *cfg, grape_train_state *st, const char *dir) {
    grape_train_config c;
    grape_train_state state;
    if (!dir) return error_fail(GRAPE_ERR_ARG, "grape_train_checkpoint: NULL directory");
    grape_status s = ckpt_check_resumable(dir);
    if (!s) s = ckpt_read_meta(dir, &c, &state);
    if (s) return s;
    if (cfg) *cfg = c;
    if (st) *st = state;
    return GRAPE_OK;
}

grape_status train_config_check(const grape_train_config *c) {
    const struct {
        const char *flag;
        double v, lo, hi;
    } r[] = {{"--batch", c->batch, 1, 1 << 16},
             {"--seq", c->seq, 1, 1 << 20},
             {"--grad-accum", c->grad_accum, 1, 1 << 16},
             {"--steps", (double)c->steps, 0, 1e15},
             {"--lr", c->opt.lr, 1e-12, 10},
             {"--min-lr-ratio", c->opt.min_lr_ratio, 0, 1},
             {"--warmup", (double)c->opt.warmup, 0, 1e15},
             {"--decay-steps", (double)c->opt.decay_steps, 0, 1e15},
             {"--beta1", c->opt.beta1, 0, 0.999999},
             {"--beta2", c->opt.beta2, 0, 0.999999999},
             {"--eps", c->opt.eps, 1e-30, 1},
             {"--weight-decay", c->opt.weight_decay, 0, 10},
             {"--clip", c->opt.clip, 0, 1e30},
             {"--eval-interval", (double)c->eval_interval, 0, 1e15},
             {"--eval-batches", (double)c->eval_batches, 1, 1e9},
             {"--log-interval", (double)c->log_interval, 1, 1e15},
             {"--save-interval", (double)c->save_interval, 0, 1e15},
             {"--threads", c->threads, 0, 4096}};
    task_mix mix;
    if (task_mix_parse(&mix, c->task_mix)) return GRAPE_ERR_ARG;
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (!(r[i].v >= r[i].lo && r[i].v <= r[i].hi))
            return error_fail(GRAPE_ERR_ARG, "%s must be in [%g, %g], got %g", r[i].flag, r[i].lo, r[i].hi, r[i].v);
    if (c->model.max_batch != c->batch || c->model.max_seq != c->seq)
        return error_fail(GRAPE_ERR_ARG, "model plan (%d x %d) differs from batch x seq (%d x %d)", c->model.max_batch,
                          c->model.max_seq, c->batch, c->seq);
    return ckpt_check_storable(c);
}

// ---------------------------------------------------------------------------------------------------------
// Trainer state

typedef struct {
    int64_t steps, tokens;
    double seconds;
} interval;

struct grape_trainer {
    grape_train_config cfg;
    grape_train_state st;
    char dir[GRAPE_TRAIN_PATH_MAX];
    grape_model *m;
    data_corpus *data;
    float *adam_m, *adam_v;
    uint8_t *tokens, *targets; // (B,T)
    task_mix mix;
    adamw_group *groups;
    int n_groups;
    metrics_log log;
    grape_train_group group;      // the caller's collectives (copied)
    const grape_train_group *g;   // &group, or NULL: one process
    int rank, size, b_local;      // b_local = batch / size rows of each micro-batch on this rank
    int stop_req;                 // grape_trainer_request_stop on this process
    int stop_all;                 // group: a stop was requested on some rank (summed with the last step's loss)
    uint64_t *sums;               // (size) every rank's checksum at a checkpoint
    interval iv;                  // steps since the last metrics line
    double t_prev;                // wall clock at the end of the last step (or the start)
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void grape_trainer_free(grape_trainer *t) {
    if (!t) return;
    metrics_close(&t->log);
    grape_model_free(t->m);
    data_close(t->data);
    mem_free(t->adam_m);
    mem_free(t->adam_v);
    mem_free(t->tokens);
    mem_free(t->targets);
    free(t->groups);
    free(t->sums);
    free(t);
}

// One AdamW group per model tensor, decayed as grape_tensor_info says (not the RMSNorm gains).
static grape_status make_groups(grape_trainer *t) {
    t->n_groups = grape_model_num_tensors(t->m);
    t->groups = calloc((size_t)t->n_groups, sizeof *t->groups);
    if (!t->groups) return error_fail(GRAPE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < t->n_groups; i++) {
        const grape_tensor_info *ti = grape_model_tensor(t->m, i);
        t->groups[i] = (adamw_group){ti->offset, ckpt_numel(ti), ti->weight_decay};
    }
    return GRAPE_OK;
}

// Corpus, model, optimizer state and batch buffers; a resumed run (t->st read from the checkpoint) checks the
// corpus is the checkpoint's and loads the tensors.
static grape_status trainer_open(grape_trainer *t, int resume) {
    const grape_train_config *c = &t->cfg;
    size_t sep_len = strlen(c->doc_sep), bt = (size_t)t->b_local * (size_t)c->seq;
    grape_model_config mc = c->model; // activations planned for this rank's rows only
    mc.max_batch = t->b_local;
    grape_status s = task_mix_parse(&t->mix, c->task_mix);
    if (!s) s = data_open(&t->data, c->data, sep_len ? c->doc_sep : NULL, sep_len, c->seq);
    if (!s && (s = grape_model_create(&t->m, &mc)) && resume) { // the configuration is the checkpoint's
        char path[GRAPE_TRAIN_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", t->dir, GRAPE_CHECKPOINT_FILE);
        s = fail_in(GRAPE_ERR_FORMAT, path);
    }
    if (!s) s = make_groups(t);
    if (!s && !(t->sums = calloc((size_t)t->size, sizeof *t->sums))) s = error_fail(GRAPE_ERR_NOMEM, "out of memory");
    size_t n = s ? 0 : grape_model_num_params(t->m), bytes;
    if (!s && !size_mul(&bytes, n, sizeof(float))) s = error_fail(GRAPE_ERR_NOMEM, "optimizer state overflows");
    if (!s && (!(t->adam_m = mem_alloc(bytes)) || !(t->adam_v = mem_alloc(bytes)) ||
               !(t->tokens = mem_alloc(bt)) || !(t->targets = mem_alloc(bt))))
        s = GRAPE_ERR_NOMEM;
    if (s || !resume) return s;
    if (t->st.data_bytes != data_total_bytes(t->data) || t->st.data_docs != data_num_docs(t->data))
        return error_fail(GRAPE_ERR_ARG,
                          "'%s' is not the corpus of this checkpoint (%llu bytes in %llu documents "
                          "then, %llu in %zu now)",
                          c->data, (unsigned long long)t->st.data_bytes, (unsigned long long)t->st.data_docs,
                          (unsigned long long)data_total_bytes(t->data), data_num_docs(t->data));
    return ckpt_load_tensors(t->dir, t->m, t->adam_m, t->adam_v);
}

static grape_status fresh_state(grape_trainer *t) {
    t->st = (grape_train_state){.rng = data_rng_seed(t->cfg.seed),
                                .last_val = NAN,
                                .data_bytes = data_total_bytes(t->data),
                                .data_docs = data_num_docs(t->data)};
    return grape_model_init(t->m, t->cfg.seed);
}

static grape_status check_group(const grape_train_group *g) {
    if (!g) return GRAPE_OK;
    if (g->size < 1 || g->rank < 0 || g->rank >= g->size)
        return error_fail(GRAPE_ERR_ARG, "training group: rank %d of %d ranks is impossible", g->rank, g->size);
    if (!g->sum_f32 || !g->sum_f64 || !g->gather_u64)
        return error_fail(GRAPE_ERR_ARG, "training group: sum_f32, sum_f64 and gather_u64 must all be set");
    return GRAPE_OK;
}

// A trainer for cfg (resolved, threads applied) in dir; resume: t->st comes from the checkpoint.
static grape_status trainer_new(grape_trainer **out, const grape_train_config *cfg, const grape_train_state *st,
                                const char *dir, const grape_train_group *group) {
    grape_trainer *t = calloc(1, sizeof *t);
    if (!t) return error_fail(GRAPE_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    if (st) t->st = *st;
    if (group) t->group = *group, t->g = &t->group;
    t->rank = group ? group->rank : 0, t->size = group ? group->size : 1;
    grape_status s = train_config_check(cfg);
    if (!s && snprintf(t->dir, sizeof t->dir, "%s", dir) >= (int)sizeof t->dir)
        s = error_fail(GRAPE_ERR_ARG, "run directory path too long: %s", dir);
    if (!s && cfg->batch % t->size)
        s = error_fail(GRAPE_ERR_ARG, "--batch %d cannot be split across %d ranks: the rank count must divide it",
                       cfg->batch, t->size);
    t->b_local = cfg->batch / t->size;
    if (!s && t->rank == 0) s = atomic_mkdirs(dir);
    if (!s) s = trainer_open(t, st != NULL);
    if (!s && !st) s = fresh_state(t);
    if (!s && t->rank == 0) s = metrics_open(&t->log, dir, st ? t->st.step : -1, &t->st.elapsed);
    t->t_prev = now();
    if (s) grape_trainer_free(t), t = NULL;
    *out = t;
    return s;
}

// Threads > 0 become the OpenMP count; the count in use is recorded.
static void apply_threads(grape_train_config *c) {
    if (c->threads > 0) omp_set_num_threads(c->threads);
    c->threads = omp_get_max_threads();
}

grape_status grape_trainer_create(grape_trainer **out, const grape_train_config *cfg, const char *dir,
                                  const grape_train_group *group) {
    if (out) *out = NULL;
    if (!out || !cfg || !dir) return error_fail(GRAPE_ERR_ARG, "grape_trainer_create: NULL argument");
    grape_train_config c = *cfg;
    grape_status s = check_group(group);
    if (!s) s = grape_train_config_resolve(&c);
    if (s) return s;
    apply_threads(&c);
    return trainer_new(out, &c, NULL, dir, group);
}

grape_status grape_trainer_resume(grape_trainer **out, const char *dir, const grape_train_config *cfg,
                                  const grape_train_group *group) {
    if (out) *out = NULL;
    if (!out || !dir) return error_fail(GRAPE_ERR_ARG, "grape_trainer_resume: NULL argument");
    grape_train_config c;
    grape_train_state st;
    grape_status s = check_group(group);
    if (!s) s = grape_train_checkpoint(&c, &st, dir);
    if (s) return s;
    if (cfg) { // the fields a resumed run may change (`grape train --resume`'s resumable flags)
        c.steps = cfg->steps, c.eval_interval = cfg->eval_interval, c.eval_batches = cfg->eval_batches;
        c.log_interval = cfg->log_interval, c.save_interval = cfg->save_interval, c.threads = cfg->threads;
        c.skip_nonfinite = cfg->skip_nonfinite;
        memcpy(c.data, cfg->data, sizeof c.data);
    }
    apply_threads(&c);
    return trainer_new(out, &c, &st, dir, group);
}

grape_model *grape_trainer_model(grape_trainer *t) { return t ? t->m : NULL; }
const grape_train_config *grape_trainer_config(const grape_trainer *t) { return t ? &t->cfg : NULL; }
const grape_train_state *grape_trainer_state(const grape_trainer *t) { return t ? &t->st : NULL; }
void grape_trainer_request_stop(grape_trainer *t) {
    if (t) t->stop_req = 1;
}

// ---------------------------------------------------------------------------------------------------------
// Step, validation, checkpoint

grape_status train_eval_bpb(double *bpb, grape_model *m, const data_corpus *c, uint8_t *tokens, uint8_t *targets, int B,
                            int T, int64_t n_batches) {
    int64_t total = data_num_val_windows(c), n = n_batches * B < total ? n_batches * B : total;
    double nats = 0;
    for (int64_t i = 0; i < n; i += B) {
        int nb = (int)(n - i < B ? n - i : B);
        float loss;
        grape_status s = data_val_batch(tokens, targets, c, i, n, nb);
        if (!s) s = grape_model_forward(m, tokens, targets, nb, T, &loss);
        if (s) return s;
        nats += (double)loss * nb;
    }
    *bpb = nats / (double)n / M_LN2;
    return GRAPE_OK;
}

// The same windows as one process, b_local at a time.
grape_status grape_trainer_evaluate(grape_trainer *t, double *val_bpb) {
    if (!t || !val_bpb) return error_fail(GRAPE_ERR_ARG, "grape_trainer_evaluate: NULL argument");
    return train_eval_bpb(val_bpb, t->m, t->data, t->tokens, t->targets, t->b_local, t->cfg.seq,
                          t->cfg.eval_batches * t->size);
}

// This rank's rows [rank*b, (rank+1)*b) of the next micro-batch of B windows: every rank advances the sampler
// over all B (one draw per window, data.h), so the data order is the one of a single process.
static grape_status sample_share(grape_trainer *t) {
    int B = t->cfg.batch, lo = t->rank * t->b_local;
    for (int i = 0; i < lo; i++) data_rng_next(&t->st.rng);
    grape_status s = data_sample_batch(t->tokens, t->targets, t->data, &t->st.rng, t->b_local);
    for (int i = lo + t->b_local; i < B; i++) data_rng_next(&t->st.rng);
    task_mix_apply(t->tokens, t->targets, &t->mix, &t->st.rng, B, t->cfg.seq, lo, t->b_local);
    return s;
}

// Sum the gradients and the loss over the group; also tells every rank whether any rank was asked to stop.
static grape_status group_reduce(grape_trainer *t, float *g, size_t n, double *loss) {
    double v[2] = {*loss, t->stop_req};
    grape_status s = t->g->sum_f32(g, n, t->g->ctx);
    if (!s) s = t->g->sum_f64(v, 2, t->g->ctx);
    *loss = v[0] / t->size;
    t->stop_all = v[1] > 0;
    return s;
}

// Micro-batches -> [group sum] -> clip -> AdamW. *loss: mean micro-batch loss; *norm: gradient norm before
// clipping. The mean over ranks is folded into the scale AdamW applies (exact for a power-of-two size).
static grape_status train_step(grape_trainer *t, double *loss, double *norm, double *lr) {
    const grape_train_config *c = &t->cfg;
    float *g = grape_model_grads(t->m), *p = grape_model_params(t->m);
    size_t n = grape_model_num_params(t->m);
    grape_model_zero_grad(t->m);
    *loss = 0;
    for (int a = 0; a < c->grad_accum; a++) {
        float l;
        grape_status s = sample_share(t);
        if (!s) s = grape_model_forward(t->m, t->tokens, t->targets, t->b_local, c->seq, &l);
        if (!s) s = grape_model_backward(t->m);
        if (s) return s;
        *loss += l / c->grad_accum;
    }
    if (t->g) {
        grape_status s = group_reduce(t, g, n, loss);
        if (s) return s;
    }
    double base = (c->accum_mean ? 1.0 / c->grad_accum : 1.0) / t->size;
    *norm = grad_global_norm(g, n) * base;
    if (!isfinite(*norm) || !isfinite(*loss))
        return error_fail(GRAPE_ERR_NUMERIC,
                          "loss %g, gradient norm %g at step %lld: training diverged (lower --lr, or pass "
                          "--skip-nonfinite to skip such steps); the checkpoint in %s is the last good one",
                          *loss, *norm, (long long)t->st.step + 1, t->dir);
    *lr = adamw_lr(&c->opt, t->st.step);
    adamw_step(p, t->adam_m, t->adam_v, g, t->groups, t->n_groups, *lr, base * grad_clip_scale(*norm, c->opt.clip),
               t->st.step + 1, &c->opt);
    return grape_model_params_changed(t->m);
}

static int due(int64_t step, int64_t interval, int64_t last) {
    return step == last || (interval > 0 && step % interval == 0);
}

// FNV-1a over 64-bit words (the tail bytes zero-padded), continued from h.
static uint64_t hash_words(uint64_t h, const void *p, size_t bytes) {
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t w = 0;
        memcpy(&w, b + i, bytes - i < 8 ? bytes - i : 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    return h;
}

// Every rank must hold the same parameters and AdamW moments: a checksum of each, gathered and compared.
static grape_status check_agreement(grape_trainer *t) {
    size_t bytes = grape_model_num_params(t->m) * sizeof(float);
    uint64_t h = hash_words(0xcbf29ce484222325ull, grape_model_params(t->m), bytes), *all = t->sums;
    h = hash_words(hash_words(h, t->adam_m, bytes), t->adam_v, bytes);
    grape_status s = t->g->gather_u64(h, all, t->g->ctx);
    for (int r = 1; !s && r < t->size; r++)
        if (all[r] != all[0])
            s = error_fail(GRAPE_ERR_NUMERIC,
                           "ranks diverged at step %lld: the checksum of the parameters and AdamW moments is %016llx "
                           "on rank 0 but %016llx on rank %d; stopped without saving (the checkpoint in %s is the "
                           "last one the ranks agreed on)",
                           (long long)t->st.step, (unsigned long long)all[0], (unsigned long long)all[r], r, t->dir);
    return s;
}

grape_status grape_trainer_save(grape_trainer *t) {
    if (!t) return error_fail(GRAPE_ERR_ARG, "grape_trainer_save: NULL trainer");
    grape_status s = t->g ? check_agreement(t) : GRAPE_OK;
    if (s || t->rank) return s;
    s = ckpt_save(t->dir, t->m, t->adam_m, t->adam_v, &t->cfg, &t->st);
    return s ? fail_in(s, "saving the checkpoint") : GRAPE_OK;
}

// Validation, metrics line and checkpoint after a completed step.
static grape_status after_step(grape_trainer *t, grape_train_report *r) {
    const grape_train_config *c = &t->cfg;
    int64_t step = t->st.step;
    interval *iv = &t->iv;
    r->val_bpb = NAN;
    if (t->rank == 0 && due(step, c->eval_interval, c->steps)) {
        grape_status s = grape_trainer_evaluate(t, &r->val_bpb);
        if (s) return s;
        t->st.last_val = r->val_bpb;
    }
    r->step = step;
    r->steps = c->steps;
    r->last_val_bpb = t->st.last_val;
    r->elapsed = t->st.elapsed;
    r->tokens_per_s = iv->seconds > 0 ? (double)iv->tokens / iv->seconds : 0;
    r->eta = iv->steps > 0 ? (double)(c->steps - step) * iv->seconds / (double)iv->steps : 0;
    r->logged = !r->skipped && (due(step, c->log_interval, c->steps) || !isnan(r->val_bpb));
    if (r->logged) {
        grape_status s = t->rank ? GRAPE_OK : metrics_write(&t->log, r);
        if (s) return s;
        *iv = (interval){0};
    }
    return due(step, c->save_interval, c->steps) ? grape_trainer_save(t) : GRAPE_OK;
}

static int stop_requested(const grape_trainer *t) { return t->g ? t->stop_all : t->stop_req; }

grape_status grape_trainer_step(grape_trainer *t, grape_train_report *r) {
    if (!t || !r) return error_fail(GRAPE_ERR_ARG, "grape_trainer_step: NULL argument");
    const grape_train_config *c = &t->cfg;
    if (t->st.step >= c->steps)
        return error_fail(GRAPE_ERR_ARG, "the run in %s is complete (%lld of %lld steps): resume it with more steps",
                          t->dir, (long long)t->st.step, (long long)c->steps);
    if (stop_requested(t)) {
        grape_status s = grape_trainer_save(t);
        return s ? s
                 : error_fail(GRAPE_ERR_INTERRUPTED, "stopped at step %lld; checkpoint saved in %s",
                              (long long)t->st.step, t->dir);
    }
    *r = (grape_train_report){0};
    double t0 = now();
    grape_status s = train_step(t, &r->loss, &r->grad_norm, &r->lr);
    if (s == GRAPE_ERR_NUMERIC && c->skip_nonfinite) r->skipped = 1, s = GRAPE_OK; // no update was applied
    if (s) return s;
    int64_t tokens = (int64_t)c->batch * c->seq * c->grad_accum;
    t->st.step++;
    t->st.tokens += tokens;
    t->iv = (interval){t->iv.steps + 1, t->iv.tokens + tokens, t->iv.seconds + now() - t0};
    double t1 = now();
    t->st.elapsed += t1 - t->t_prev;
    t->t_prev = t1;
    return after_step(t, r);
}

grape_status grape_trainer_run(grape_trainer *t, grape_train_callback fn, void *ctx) {
    if (!t) return error_fail(GRAPE_ERR_ARG, "grape_trainer_run: NULL trainer");
    if (t->st.step >= t->cfg.steps) return grape_trainer_save(t);
    while (t->st.step < t->cfg.steps) {
        grape_train_report r;
        grape_status s = grape_trainer_step(t, &r);
        if (s) return s;
        if (fn && fn(&r, ctx)) grape_trainer_request_stop(t);
    }
    return GRAPE_OK;
}
