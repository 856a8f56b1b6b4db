// test_eval.c — the forward-only evaluator and the evaluation protocol: for every kind of encoding the chunked
// evaluator, the full training forward and the streaming decoder give the same loss (1e-5 relative, windows longer
// than two chunks); BCA at a length <= its window is full attention (bitwise) and past it matches the training
// forward's BCA; the buffers grow linearly in T (tiny at T = 65536 plans under 1.5 GiB); a trained checkpoint's
// BPB at the training length equals the trainer's own validation over the same windows, and evaluating twice is
// bit-identical; bad input fails with clear errors.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "grape.h"
#include "tmpdir.h"
#include "train/checkpoint.h"
#include "train_util.h"
#include "util.h"

enum { L = 2, C = 64, H = 2, TW = 1100 }; // TW > 2 * GRAPE_EVAL_CHUNK, with a ragged last chunk

// enc is an encoding name, optionally followed by ":kv" for KV-shift.
static grape_model *make(const char *enc, int T, t_rng *r) {
    grape_model_config cfg;
    grape_model_preset(&cfg, "tiny");
    cfg.n_layer = L, cfg.n_embd = C, cfg.n_head = H, cfg.max_batch = 1, cfg.max_seq = T;
    char name[64];
    snprintf(name, sizeof name, "%s", enc);
    char *kv = strstr(name, ":kv");
    if (kv) *kv = 0;
    grape_model *m = NULL;
    if (grape_pe_parse(&cfg.pe, name) || (cfg.pe.kv_shift = kv != NULL, grape_model_create(&m, &cfg)) ||
        grape_model_init(m, 7)) {
        printf("# %s: %s\n", enc, grape_last_error());
        grape_model_free(m);
        return NULL;
    }
    float *p = grape_model_params(m); // gates, phases and gains that differ across tokens and heads
    for (size_t i = 0; i < grape_model_num_params(m); i++) p[i] += (float)(0.05 * t_normal(r));
    grape_model_params_changed(m);
    return m;
}

// Cross-entropy of one row of logits in double.
static double row_nats(const float *z, int y, int V) {
    double mx = z[0], s = 0;
    for (int i = 1; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    for (int i = 0; i < V; i++) s += exp(z[i] - mx);
    return mx + log(s) - z[y];
}

static void fill_text(uint8_t *x, int n, t_rng *r) {
    static const char alpha[] = "abcdefghij klmnop qrstuv wxyz,. ";
    for (int i = 0; i < n; i++) x[i] = (uint8_t)alpha[t_randint(r, 0, (int)sizeof alpha - 2)];
}

static void test_equal(const char *enc, t_rng *r) {
    char label[160];
    grape_model *m = make(enc, TW, r);
    uint8_t x[TW + 1];
    fill_text(x, TW + 1, r);
    grape_evaluator *e = NULL;
    grape_decoder *d = NULL;
    float *loss = malloc(TW * sizeof(float)), *logits = malloc(256 * sizeof(float));
    double full = 0, dec = 0, ev = 0, pos_err = 0;
    int ok = m && !grape_evaluator_create(&e, m, TW) && !grape_decoder_create(&d, m, 1, TW) &&
             !grape_model_forward(m, x, x + 1, 1, TW, NULL) && !grape_model_score(e, x, x + 1, TW, loss, &ev);
    for (int t = 0; ok && t < TW; t++) {
        double lf = row_nats(grape_model_logits(m) + (size_t)t * 256, x[t + 1], 256);
        full += lf;
        pos_err = fmax(pos_err, fabs(loss[t] - lf));
    }
    for (int t = 0; ok && t < TW; t++) {
        ok = !grape_model_decode_step(m, d, x + t, logits);
        dec += ok ? row_nats(logits, x[t + 1], 256) : 0;
    }
    if (!ok) printf("# %s: %s\n", enc, grape_last_error());
    snprintf(label, sizeof label, "%s: evaluator loss == full forward (T=%d, relative)", enc, TW);
    t_check(label, ok ? fabs(ev - full) / full : INFINITY, 1e-5);
    snprintf(label, sizeof label, "%s: streaming decoder loss == full forward (relative)", enc);
    t_check(label, ok ? fabs(dec - full) / full : INFINITY, 1e-5);
    snprintf(label, sizeof label, "%s: evaluator per-position loss == full forward (nats)", enc);
    t_check(label, ok ? pos_err : INFINITY, 1e-5);
    free(loss);
    free(logits);
    grape_decoder_free(d);
    grape_evaluator_free(e);
    grape_model_free(m);
}

// BCA at T <= W runs full attention; past W the evaluator's BCA is the training forward's.
static void test_bca(const char *enc, t_rng *r) {
    enum { W = 256, TS = 200 };
    char label[160];
    grape_model *m = make(enc, TW, r);
    uint8_t x[TW + 1];
    fill_text(x, TW + 1, r);
    grape_evaluator *e = NULL;
    double full_s = 0, bca_s = -1, full_l = 0, bca_l = 0, fwd = 0;
    grape_attn_opts full = {0.0f, 0}, bca = {0.0f, W};
    float mean = 0;
    int ok = m && !grape_evaluator_create(&e, m, TW) && !grape_model_score(e, x, x + 1, TS, NULL, &full_s) &&
             !grape_model_score(e, x, x + 1, TW, NULL, &full_l) && !grape_model_set_attn_opts(m, &bca) &&
             !grape_model_score(e, x, x + 1, TS, NULL, &bca_s) && !grape_model_score(e, x, x + 1, TW, NULL, &bca_l) &&
             !grape_model_forward(m, x, x + 1, 1, TW, &mean);
    fwd = (double)mean * TW;
    if (!ok) printf("# %s: %s\n", enc, grape_last_error());
    snprintf(label, sizeof label, "%s: BCA (W=%d) at T=%d == full attention, bitwise", enc, W, TS);
    t_true(label, ok && full_s == bca_s);
    snprintf(label, sizeof label, "%s: BCA evaluator == BCA training forward at T=%d (relative)", enc, TW);
    t_check(label, ok ? fabs(bca_l - fwd) / fwd : INFINITY, 1e-5);
    snprintf(label, sizeof label, "%s: BCA at T=%d differs from full attention", enc, TW);
    t_true(label, ok && fabs(bca_l - full_l) > 1e-6 * full_l);
    grape_model_set_attn_opts(m, &full);
    grape_evaluator_free(e);
    grape_model_free(m);
}

// The evaluator's buffers are linear in T; the tiny preset at T = 65536 plans well inside 2 GiB.
static void test_memory(void) {
    grape_model_config cfg;
    grape_model *m = NULL;
    grape_evaluator *e1 = NULL, *e2 = NULL;
    grape_model_preset(&cfg, "tiny");
    grape_pe_parse(&cfg.pe, "grape-m+grape-ap");
    cfg.max_batch = cfg.max_seq = 1;
    int ok = !grape_model_create(&m, &cfg) && !grape_evaluator_create(&e1, m, 4096) &&
             !grape_evaluator_create(&e2, m, 8192);
    double b1 = ok ? (double)grape_evaluator_bytes(e1) : 0, b2 = ok ? (double)grape_evaluator_bytes(e2) : 0;
    double per_token = (b2 - b1) / 4096, at64k = b1 + per_token * (65536 - 4096);
    printf("# tiny grape-m+grape-ap evaluator: %.0f bytes per token, %.0f MiB planned at T = 65536\n", per_token,
           at64k / (1 << 20));
    t_true("evaluator buffers are linear in T (b(8192) - b(4096) == b(4096) - const)", ok && b2 < 2.01 * b1);
    t_check("tiny evaluator at T = 65536 plans < 1.5 GiB (GiB)", ok ? at64k / (1 << 30) : INFINITY, 1.5);
    grape_evaluator_free(e1);
    grape_evaluator_free(e2);
    grape_model_free(m);
}

// ---------------------------------------------------------------------------------------------------------------
// A trained checkpoint: a corpus of 20 documents of seeded pseudo-text, 40 steps of a 2-layer model.

enum { TT = 64, BT = 8 };

static int write_corpus(const char *dir, t_rng *r) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 0;
    static const char *words[] = {"the ", "lord ", "and ", "of ", "said ", "unto ", "them ", "in ", "his ", "a "};
    for (int i = 0; i < 20; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/doc%02d.txt", dir, i);
        FILE *f = fopen(path, "w");
        if (!f) return 0;
        for (int w = 0; w < 500; w++) fputs(words[t_randint(r, 0, 9)], f);
        fclose(f);
    }
    return 1;
}

static int train_ckpt(const char *dir, const char *data) {
    grape_train_config c;
    grape_train_config_default(&c);
    snprintf(c.preset, sizeof c.preset, "custom");
    c.model = (grape_model_config){.n_layer = L, .n_embd = C, .n_head = H, .vocab_size = 256, .max_batch = BT,
                                   .max_seq = TT};
    grape_pe_config_default(&c.model.pe, H, C / H);
    grape_pe_parse(&c.model.pe, "rope");
    grape_pe_name(c.pe_name, sizeof c.pe_name, &c.model.pe);
    snprintf(c.data, sizeof c.data, "%s", data);
    c.batch = BT, c.seq = TT, c.steps = 40, c.opt.lr = 3e-3, c.opt.warmup = 4, c.opt.decay_steps = 40;
    c.eval_interval = 0, c.eval_batches = 1000, c.log_interval = 10, c.save_interval = 0, c.threads = 2;
    return t_train(&c, dir, 0, NULL, NULL, NULL) == GRAPE_OK;
}

static void test_checkpoint(t_rng *r) {
    const char *data = tmp_path("corpus"), *dir = tmp_path("run");
    if (!write_corpus(data, r) || !train_ckpt(dir, data)) {
        printf("# %s\n", grape_last_error());
        t_true("train a small checkpoint", 0);
        return;
    }
    grape_model *m = NULL;
    grape_evaluator *e = NULL;
    data_corpus *c = NULL;
    grape_train_config cfg;
    grape_train_state st;
    eval_result a, b, v;
    double pa[2 * TT], pb[2 * TT];
    int ok = !ckpt_load_model(&m, &cfg, &st, dir, 1, 1) && !data_open(&c, data, NULL, 0, 1) &&
             !grape_evaluator_create(&e, m, 2 * TT) && !eval_length(&v, e, c, TT, 0, 0, NULL, NULL, NULL) &&
             !eval_length(&a, e, c, 2 * TT, 0, 0, pa, NULL, NULL) && !eval_length(&b, e, c, 2 * TT, 0, 0, pb, NULL, NULL);
    if (!ok) printf("# %s\n", grape_last_error());
    printf("# trained: validation %.4f bpb (trainer), %.4f (eval, %lld windows of %d), %.4f at %d\n", st.last_val,
           ok ? v.bpb : NAN, (long long)(ok ? v.windows : 0), TT, ok ? a.bpb : NAN, 2 * TT);
    t_check("eval at the training length == the trainer's validation over the same windows (relative)",
            ok ? fabs(v.bpb - st.last_val) / st.last_val : INFINITY, 1e-5);
    t_true("the checkpoint learned (eval BPB < 4)", ok && v.bpb < 4);
    t_true("evaluating twice is bit-identical (BPB and per-position sums)",
           ok && a.bpb == b.bpb && !memcmp(pa, pb, sizeof pa));
    t_true("windows and bytes counted", ok && a.bytes == a.windows * 2 * TT && a.windows == eval_count_windows(c, 2 * TT, 0));
    // max_windows: that many evenly spaced windows; as many as there are (or more) is every window, bit for bit
    eval_result all, two;
    int64_t n_all = eval_count_windows(c, TT, 0);
    int sub = ok && n_all > 2 && !eval_length(&two, e, c, TT, 0, 2, NULL, NULL, NULL) &&
              !eval_length(&all, e, c, TT, 0, n_all, NULL, NULL, NULL);
    t_true("max_windows = 2 scores 2 windows (2T bytes)", sub && two.windows == 2 && two.bytes == 2 * TT);
    t_true("max_windows = all windows: the same BPB as 0 (every window)", sub && all.bpb == v.bpb && all.windows == n_all);
    // doc_bytes: LEX's first-N-bytes rule makes lengths dividing N score the same bytes
    t_true("doc_bytes = 4*T: lengths T and 2T score the same bytes",
           ok && eval_count_windows(c, TT, 4 * TT) * TT == eval_count_windows(c, 2 * TT, 4 * TT) * 2 * TT);
    // errors
    grape_status s = ok ? eval_length(&a, e, c, 100000, 0, 0, NULL, NULL, NULL) : GRAPE_OK;
    t_true("a length no validation document holds: GRAPE_ERR_ARG naming it",
           s == GRAPE_ERR_ARG && strstr(grape_last_error(), "length 100000"));
    uint8_t x[3 * TT] = {0};
    double nats;
    t_true("a window longer than the evaluator: GRAPE_ERR_ARG",
           ok && grape_model_score(e, x, x + 1, 3 * TT - 1, NULL, &nats) == GRAPE_ERR_ARG);
    // an infinite final-norm gain: the logits are +-inf or NaN (0 * inf) before any exp sees them
    for (int i = 0; ok && i < grape_model_num_tensors(m); i++)
        if (!strcmp(grape_model_tensor(m, i)->name, "ln_f.weight"))
            grape_model_params(m)[grape_model_tensor(m, i)->offset] = INFINITY;
    s = ok ? grape_model_score(e, x, x + 1, TT, NULL, &nats) : GRAPE_OK;
    t_true("non-finite logits: GRAPE_ERR_NUMERIC, not a number", s == GRAPE_ERR_NUMERIC && strstr(grape_last_error(), "logit"));
    data_close(c);
    grape_evaluator_free(e);
    grape_model_free(m);
}

int main(void) {
    t_rng r = t_seed(8);
    const char *encs[] = {"nope",      "rope",       "xpos",        "alibi",        "fox",
                          "grape-m",   "grape-m-ctx", "grape-m-basis", "grape-a-qk",  "grape-ap",
                          "rope:kv",   "grape-m+grape-ap", "xpos+fox", "rope+grape-a-qk"};
    for (size_t i = 0; i < sizeof encs / sizeof encs[0]; i++) test_equal(encs[i], &r);
    const char *bcas[] = {"rope", "xpos", "alibi", "grape-ap"};
    for (size_t i = 0; i < sizeof bcas / sizeof bcas[0]; i++) test_bca(bcas[i], &r);
    test_memory();
    if (!tmp_create()) return t_true("create a temporary directory", 0), t_finish();
    test_checkpoint(&r);
    tmp_remove();
    return t_finish();
}
