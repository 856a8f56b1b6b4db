// test_model.c — the model object: streaming decode equals the full forward for every kind of encoding,
// impossible configurations fail with clear errors, the init is deterministic and has the official scales,
// the parameter count matches the architecture, and the untrained loss is ln 256.
// (Loss and gradients vs PyTorch float64: tests/torch/test_model.py.)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"
#include "util.h"

// enc is an encoding name, optionally followed by options ":kv" (KV-shift), ":pair" (qk_gain=pair), ":fold"
// (grape-m-basis folded).
static grape_model *make(const char *enc, int L, int C, int H, int B, int T) {
    grape_model_config cfg;
    grape_model_preset(&cfg, "tiny");
    cfg.n_layer = L, cfg.n_embd = C, cfg.n_head = H, cfg.max_batch = B, cfg.max_seq = T;
    char name[64];
    snprintf(name, sizeof name, "%s", enc);
    char *opts = strchr(name, ':');
    if (opts) *opts++ = 0;
    grape_model *m = NULL;
    grape_status st = grape_pe_parse(&cfg.pe, name);
    cfg.pe.kv_shift = opts && strstr(opts, "kv");
    cfg.pe.qk_gain = opts && strstr(opts, "pair") ? GRAPE_QK_GAIN_PAIR : GRAPE_QK_GAIN_DIM;
    cfg.pe.basis_folded = opts && strstr(opts, "fold");
    if (st || grape_model_create(&m, &cfg) || grape_model_init(m, 99)) {
        printf("# %s: %s\n", enc, grape_last_error());
        grape_model_free(m);
        return NULL;
    }
    return m;
}

// Perturb every parameter so gates, phases and gains differ across tokens and heads.
static void perturb(grape_model *m, t_rng *r) {
    float *p = grape_model_params(m);
    for (size_t i = 0; i < grape_model_num_params(m); i++) p[i] += (float)(0.05 * t_normal(r));
    grape_model_params_changed(m);
}

// Decode B sequences token by token; compare each step's logits with the full forward's (normwise relative).
static void test_decode(const char *enc, t_rng *r) {
    enum { L = 2, C = 32, H = 2, B = 2, T = 20, V = 256 };
    grape_model *m = make(enc, L, C, H, B, T);
    grape_decoder *d = NULL;
    char label[96];
    snprintf(label, sizeof label, "%s: decode step logits == full forward logits", enc);
    if (!m || grape_decoder_create(&d, m, B, T)) {
        t_true(label, 0);
        grape_model_free(m);
        return;
    }
    perturb(m, r);
    uint8_t tok[B * T], step[B];
    for (int i = 0; i < B * T; i++) tok[i] = (uint8_t)t_randint(r, 0, V - 1);
    int ok = grape_model_forward(m, tok, NULL, B, T, NULL) == GRAPE_OK;
    const float *full = grape_model_logits(m);
    float *got = malloc((size_t)B * T * V * sizeof *got), *logits = malloc((size_t)B * V * sizeof *logits);
    for (int t = 0; t < T && ok; t++) {
        for (int b = 0; b < B; b++) step[b] = tok[b * T + t];
        ok = grape_model_decode_step(m, d, step, logits) == GRAPE_OK;
        for (int b = 0; b < B; b++) memcpy(got + ((size_t)b * T + t) * V, logits + (size_t)b * V, V * sizeof(float));
    }
    t_check(label, ok ? t_rel_err_ff(got, full, (size_t)B * T * V) : 1.0, 1e-4);
    snprintf(label, sizeof label, "%s: decoder refuses a step past max_len", enc);
    t_true(label, !ok || grape_model_decode_step(m, d, step, logits) == GRAPE_ERR_ARG);
    // After a reset the first token decodes exactly as the first time (caches, phases, shift state cleared).
    grape_decoder_reset(d);
    for (int b = 0; b < B; b++) step[b] = tok[b * T];
    ok = ok && grape_decoder_position(d) == 0 && grape_model_decode_step(m, d, step, logits) == GRAPE_OK;
    double err = 0;
    for (int b = 0; b < B && ok; b++) err = fmax(err, t_rel_err_ff(logits + (size_t)b * V, got + (size_t)b * T * V, V));
    snprintf(label, sizeof label, "%s: reset replays token 0 exactly", enc);
    t_check(label, ok ? err : 1.0, 0.0);
    free(got);
    free(logits);
    grape_decoder_free(d);
    grape_model_free(m);
}

static void expect_fail(const char *label, grape_model_config cfg, grape_status want, const char *needle) {
    grape_model *m = NULL;
    grape_status st = grape_model_create(&m, &cfg);
    int ok = st == want && m == NULL && strstr(grape_last_error(), needle) != NULL;
    printf("# %s -> %s: %s\n", label, grape_status_name(st), grape_last_error());
    t_true(label, ok);
    grape_model_free(m);
}

static void test_errors(void) {
    grape_model_config base;
    grape_model_preset(&base, "tiny");
    base.max_batch = 1, base.max_seq = 8;
    grape_model_config c = base;
    c.n_head = 3;
    expect_fail("C=256 not divisible by H=3", c, GRAPE_ERR_ARG, "divisible");
    c = base, c.n_layer = 0;
    expect_fail("zero layers", c, GRAPE_ERR_ARG, "n_layer");
    c = base, c.max_seq = 0;
    expect_fail("zero max_seq", c, GRAPE_ERR_ARG, "max_seq");
    c = base, c.n_embd = 12, c.n_head = 4;
    expect_fail("odd head dim (12/4 = 3)", c, GRAPE_ERR_ARG, "even");
    c = base, c.max_batch = 1 << 20, c.max_seq = 1 << 30, c.n_embd = 1 << 16, c.n_head = 1 << 8;
    expect_fail("arena size overflows size_t", c, GRAPE_ERR_NOMEM, "overflow");
    c = base, c.pe.qk_gain = 2;
    expect_fail("qk_gain 2 (unknown)", c, GRAPE_ERR_ARG, "qk_gain");
    c = base, c.pe.qk_gain = GRAPE_QK_GAIN_PAIR; // nope: no rotation pairs to tie
    expect_fail("qk_gain=pair without a rotation", c, GRAPE_ERR_ARG, "needs a rotation");
    c = base, c.pe.rot = GRAPE_ROT_ROPE, c.pe.basis_folded = 1;
    expect_fail("basis_folded with rope", c, GRAPE_ERR_ARG, "grape-m-basis only");
    t_true("unknown preset refused", grape_model_preset(&c, "huge") == GRAPE_ERR_ARG);

    grape_model *m = NULL;
    c = base, c.vocab_size = 16, c.n_layer = 1, c.n_embd = 16, c.n_head = 2;
    if (grape_model_create(&m, &c) || grape_model_init(m, 1)) {
        t_true("small model for call errors", 0);
        return;
    }
    uint8_t tok[16] = {0}, bad[16] = {0};
    bad[3] = 16;
    t_true("batch larger than planned refused", grape_model_forward(m, tok, NULL, 2, 8, NULL) == GRAPE_ERR_ARG);
    t_true("sequence longer than planned refused", grape_model_forward(m, tok, NULL, 1, 9, NULL) == GRAPE_ERR_ARG);
    t_true("token >= vocab_size refused", grape_model_forward(m, bad, NULL, 1, 8, NULL) == GRAPE_ERR_ARG);
    t_true("backward without targets refused",
           grape_model_forward(m, tok, NULL, 1, 8, NULL) == GRAPE_OK && grape_model_backward(m) == GRAPE_ERR_ARG);
    grape_model_free(m);
}

// Sample standard deviation of n floats.
static double stdev(const float *x, size_t n) {
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) s += x[i], ss += (double)x[i] * x[i];
    return sqrt(ss / n - (s / n) * (s / n));
}

static const grape_tensor_info *find(const grape_model *m, const char *name) {
    for (int i = 0; i < grape_model_num_tensors(m); i++)
        if (!strcmp(grape_model_tensor(m, i)->name, name)) return grape_model_tensor(m, i);
    return NULL;
}

static void test_init(void) {
    grape_model *a = make("nope", 4, 256, 4, 2, 64), *b = make("nope", 4, 256, 4, 2, 64);
    if (!a || !b) {
        t_true("tiny models created", 0);
        grape_model_free(a), grape_model_free(b);
        return;
    }
    size_t n = grape_model_num_params(a);
    size_t C = 256, L = 4, F = 682, D = 64;
    size_t want = 256 * C + L * (C + 3 * C * C + 2 * D + C * C + C + 3 * F * C) + C;
    t_check("tiny parameter count = V C + L (4C^2 + 3FC + 2C + 2D) + C", fabs((double)n - (double)want), 0);
    t_check("same seed, same parameters", memcmp(grape_model_params(a), grape_model_params(b), n * 4) ? 1 : 0, 0);
    grape_model_init(b, 100);
    t_true("another seed, other parameters", memcmp(grape_model_params(a), grape_model_params(b), n * 4) != 0);
    const float *p = grape_model_params(a);
    const struct {
        const char *name;
        double std;
    } scales[] = {{"wte", 0.02},
                  {"layers.0.attn.wq", 0.5 / 16},
                  {"layers.2.mlp.w1", 0.5 / 16},
                  {"layers.1.attn.wo", 0.5 / 16 / 2},
                  {"layers.3.mlp.w3", 0.5 / 16 / 2}};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        const grape_tensor_info *t = find(a, scales[i].name);
        char label[80];
        snprintf(label, sizeof label, "init std of %s = %.5f (relative error)", scales[i].name, scales[i].std);
        double s = t ? stdev(p + t->offset, (size_t)t->shape[0] * (size_t)t->shape[1]) : 0;
        t_check(label, fabs(s / scales[i].std - 1), 0.03);
    }
    const grape_tensor_info *g = find(a, "layers.0.ln2.weight");
    t_true("RMSNorm gains start at 1 and are not decayed", g && p[g->offset] == 1.0f && !g->weight_decay);
    // FoX as the official GRAPE code sets it up (docs/RESULTS.md, FoX section): gate bias b_f = 0, decayed like
    // every parameter but the RMSNorm gains, and so is the gate projection.
    grape_model *fox = make("fox", 2, 32, 2, 1, 8);
    const grape_tensor_info *bf = fox ? find(fox, "layers.1.attn.b_gate") : NULL;
    const grape_tensor_info *wf = fox ? find(fox, "layers.1.attn.w_gate") : NULL;
    const float *fp = fox ? grape_model_params(fox) : NULL;
    t_true("FoX gate bias starts at 0 (both heads) and is decayed, and so is w_gate",
           bf && wf && bf->shape[0] == 2 && fp[bf->offset] == 0.0f && fp[bf->offset + 1] == 0.0f &&
               bf->weight_decay && wf->weight_decay);
    grape_model_free(fox);
    uint8_t tok[128], tgt[128];
    t_rng r = t_seed(5);
    for (int i = 0; i < 128; i++) tok[i] = (uint8_t)t_randint(&r, 0, 255), tgt[i] = (uint8_t)t_randint(&r, 0, 255);
    float loss = 0;
    grape_model_forward(a, tok, tgt, 2, 64, &loss);
    // logits start with std ~0.02 sqrt(C) = 0.32, which adds about var/2 = 0.05 nats to ln 256
    t_check("untrained loss = ln 256 (abs error, nats)", fabs(loss - log(256.0)), 0.1);
    grape_model_free(a);
    grape_model_free(b);
}

// Directional derivative along the gradient: (L(p + h u) - L(p - h u)) / 2h = |g| for u = g/|g|. The signal is
// the full gradient norm, so this float check of the whole backward (every encoding's chain included) is sharp
// enough to catch a wrong or missing term even where the PyTorch comparison does not run (sanitizer builds).
static void test_directional(const char *enc, t_rng *r) {
    enum { B = 2, T = 16 };
    grape_model *m = make(enc, 2, 32, 2, B, T);
    char label[96];
    snprintf(label, sizeof label, "%s: directional derivative along grad = |grad| (relative)", enc);
    if (!m) {
        t_true(label, 0);
        return;
    }
    perturb(m, r);
    uint8_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (uint8_t)t_randint(r, 0, 255), tgt[i] = (uint8_t)t_randint(r, 0, 255);
    size_t n = grape_model_num_params(m);
    float *p = grape_model_params(m), *g = grape_model_grads(m), *p0 = malloc(n * sizeof *p0);
    float lp = 0, lm = 0;
    grape_model_zero_grad(m);
    int ok = grape_model_forward(m, tok, tgt, B, T, &lp) == GRAPE_OK && grape_model_backward(m) == GRAPE_OK;
    double norm = 0;
    for (size_t i = 0; i < n; i++) norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    const double h = 1e-3;
    memcpy(p0, p, n * sizeof *p0);
    for (size_t i = 0; i < n; i++) p[i] = (float)(p0[i] + h * g[i] / norm);
    ok = ok && grape_model_params_changed(m) == GRAPE_OK && grape_model_forward(m, tok, tgt, B, T, &lp) == GRAPE_OK;
    for (size_t i = 0; i < n; i++) p[i] = (float)(p0[i] - h * g[i] / norm);
    ok = ok && grape_model_params_changed(m) == GRAPE_OK && grape_model_forward(m, tok, tgt, B, T, &lm) == GRAPE_OK;
    // h = 1e-3: O(h^2) truncation and float rounding both stay below 1e-3 (h = 3e-3 let the truncation reach 5e-3)
    t_check(label, ok ? fabs((lp - lm) / (2 * h) / norm - 1.0) : 1.0, 5e-3);
    free(p0);
    grape_model_free(m);
}

// With a BCA window the decoder is a LEX sliding window: it streams past max_len, and while t < W it still sees
// every key, so its logits match the full causal forward there.
static void test_decode_bca(void) {
    enum { W = 8, T = 24, V = 256 };
    grape_model *m = make("xpos", 1, 32, 2, 1, T);
    grape_decoder *d = NULL;
    grape_attn_opts bca = {0.0f, W};
    uint8_t tok[T];
    for (int i = 0; i < T; i++) tok[i] = (uint8_t)(i * 37 + 11);
    int ok = m && grape_model_forward(m, tok, NULL, 1, T, NULL) == GRAPE_OK &&
             grape_model_set_attn_opts(m, &bca) == GRAPE_OK && grape_decoder_create(&d, m, 1, W) == GRAPE_OK;
    float logits[V], first[W * V];
    for (int t = 0; t < T && ok; t++) {
        ok = grape_model_decode_step(m, d, tok + t, logits) == GRAPE_OK && isfinite(logits[0]);
        if (t < W) memcpy(first + t * V, logits, sizeof logits);
    }
    t_true("BCA decoder streams 3x past its window (max_len = W)", ok);
    t_check("BCA decoder logits == full causal forward while t < W", ok ? t_rel_err_ff(first, grape_model_logits(m),
                                                                                    (size_t)W * V) : 1.0, 1e-4);
    grape_decoder_free(d);
    grape_model_free(m);
}

// Logits of a full forward at position offset c vs base (offset 0), normwise relative.
static double forward_at(grape_model *m, const uint8_t *tok, int B, int T, int64_t c, const float *base) {
    if (grape_model_set_position_offset(m, c) || grape_model_forward(m, tok, NULL, B, T, NULL)) return 1.0;
    return t_rel_err_ff(grape_model_logits(m), base, (size_t)B * T * 256);
}

// Decode B sequences from offset c; logits vs base (the full forward at offset 0), normwise relative.
static double decode_at(grape_model *m, const uint8_t *tok, int B, int T, int64_t c, const float *base) {
    grape_decoder *d = NULL;
    float *got = malloc((size_t)B * T * 256 * sizeof *got), *lg = malloc((size_t)B * 256 * sizeof *lg);
    uint8_t step[8];
    int ok = B <= 8 && grape_model_set_position_offset(m, c) == GRAPE_OK &&
             grape_decoder_create(&d, m, B, T) == GRAPE_OK;
    for (int t = 0; t < T && ok; t++) {
        for (int b = 0; b < B; b++) step[b] = tok[b * T + t];
        ok = grape_model_decode_step(m, d, step, lg) == GRAPE_OK;
        for (int b = 0; b < B && ok; b++)
            memcpy(got + ((size_t)b * T + t) * 256, lg + (size_t)b * 256, 256 * sizeof(float));
    }
    double err = ok ? t_rel_err_ff(got, base, (size_t)B * T * 256) : 1.0;
    grape_decoder_free(d);
    free(got), free(lg);
    return err;
}

static void set_unit_gains(grape_model *m) {
    float *p = grape_model_params(m);
    for (int i = 0; i < grape_model_num_tensors(m); i++) {
        const grape_tensor_info *t = grape_model_tensor(m, i);
        if (strstr(t->name, "attn.q_norm") || strstr(t->name, "attn.k_norm"))
            for (int j = 0; j < t->shape[0]; j++) p[t->offset + (size_t)j] = 1.0f;
    }
    grape_model_params_changed(m);
}

// The relative law through the whole model: shifting every position by c (grape-m-ctx: the phase origin) leaves
// the logits unchanged, in the full forward and in the decoder. unit: set the QK gains to 1 (per-dimension gains
// that differ within a rotation pair break the law; pair-tied gains keep it at any value).
static void test_shift(const char *enc, int unit, t_rng *r) {
    enum { B = 2, T = 16 };
    grape_model *m = make(enc, 2, 32, 2, B, T);
    char label[128];
    if (!m) {
        t_true(enc, 0);
        return;
    }
    perturb(m, r);
    if (unit) set_unit_gains(m);
    uint8_t tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (uint8_t)t_randint(r, 0, 255);
    float *base = malloc((size_t)B * T * 256 * sizeof *base);
    int ok = grape_model_forward(m, tok, NULL, B, T, NULL) == GRAPE_OK;
    if (ok) memcpy(base, grape_model_logits(m), (size_t)B * T * 256 * sizeof *base);
    const int64_t shifts[] = {1, 1000, 1000000};
    for (int i = 0; i < 3; i++) {
        snprintf(label, sizeof label, "%s%s: logits at offset %lld == offset 0 (full forward)", enc,
                 unit ? " (unit gains)" : "", (long long)shifts[i]);
        t_check(label, ok ? forward_at(m, tok, B, T, shifts[i], base) : 1.0, 1e-4);
        snprintf(label, sizeof label, "%s%s: decoder from offset %lld == full forward at 0", enc,
                 unit ? " (unit gains)" : "", (long long)shifts[i]);
        t_check(label, ok ? decode_at(m, tok, B, T, shifts[i], base) : 1.0, 1e-4);
    }
    free(base);
    grape_model_free(m);
}

// The law's condition is real: with per-dimension gains that differ within a pair, one position of shift moves
// rope's logits (so test_shift can fail); grape-m-basis and grape-m-nc are not relative with pair-tied gains.
static void test_shift_breaks(const char *enc, t_rng *r) {
    enum { B = 1, T = 16 };
    grape_model *m = make(enc, 2, 32, 2, B, T);
    if (!m) {
        t_true(enc, 0);
        return;
    }
    perturb(m, r);
    uint8_t tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (uint8_t)t_randint(r, 0, 255);
    float *base = malloc((size_t)B * T * 256 * sizeof *base);
    int ok = grape_model_forward(m, tok, NULL, B, T, NULL) == GRAPE_OK;
    if (ok) memcpy(base, grape_model_logits(m), (size_t)B * T * 256 * sizeof *base);
    double err = ok ? forward_at(m, tok, B, T, 1, base) : 0.0;
    char label[128];
    snprintf(label, sizeof label, "%s, gains != 1: a shift of one position moves the logits (err %.1e > 1e-3)", enc,
             err);
    t_true(label, err > 1e-3);
    free(base);
    grape_model_free(m);
}

// The parameter-version contract: a forward uses the tables of the last grape_model_params_changed, so a write to a
// learned frequency shows only after that call (grape_model_forward no longer re-derives them every call).
static void test_params_version(void) {
    enum { T = 16 };
    grape_model *m = make("grape-m", 1, 32, 2, 1, T);
    uint8_t tok[T];
    for (int i = 0; i < T; i++) tok[i] = (uint8_t)(i * 41 + 3);
    float l0 = 0, l1 = 0, l2 = 0;
    int ok = m && grape_model_forward(m, tok, tok, 1, T, &l0) == GRAPE_OK;
    for (int i = 0; ok && i < grape_model_num_tensors(m); i++)
        if (strstr(grape_model_tensor(m, i)->name, "log_freq"))
            for (size_t j = 0; j < 4; j++) grape_model_params(m)[grape_model_tensor(m, i)->offset + j] += 2.0f;
    ok = ok && grape_model_forward(m, tok, tok, 1, T, &l1) == GRAPE_OK && grape_model_params_changed(m) == GRAPE_OK &&
         grape_model_forward(m, tok, tok, 1, T, &l2) == GRAPE_OK;
    t_true("a parameter write shows after grape_model_params_changed, not before", ok && l1 == l0 && l2 != l0);
    grape_model_free(m);
}

// The model's planned workspaces (attention, bias) carry nothing from one step to the next: a second forward +
// backward of the same batch gives the same loss and the same bits in every gradient.
static void test_steps_repeat(const char *enc) {
    enum { B = 2, T = 80 };
    grape_model *m = make(enc, 1, 32, 2, B, T);
    uint8_t tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (uint8_t)(i * 29 + 7);
    size_t n = m ? grape_model_num_params(m) : 0;
    float *g0 = malloc((n + 1) * sizeof(float)), l0 = 0, l1 = 0;
    int ok = m && grape_model_forward(m, tok, tok, B, T, &l0) == GRAPE_OK && grape_model_backward(m) == GRAPE_OK;
    if (ok) memcpy(g0, grape_model_grads(m), n * sizeof(float));
    grape_model_zero_grad(m);
    ok = ok && grape_model_forward(m, tok, tok, B, T, &l1) == GRAPE_OK && grape_model_backward(m) == GRAPE_OK;
    char name[128];
    snprintf(name, sizeof name, "%s: a repeated step gives the same loss and gradient bits", enc);
    t_true(name, ok && l0 == l1 && !memcmp(g0, grape_model_grads(m), n * sizeof(float)));
    free(g0);
    grape_model_free(m);
}

int main(void) {
    t_rng r = t_seed(11);
    test_params_version();
    const char *repeat[] = {"grape-a-qk", "alibi", "grape-ap", "fox", "rope+grape-a-qk"};
    for (size_t i = 0; i < sizeof repeat / sizeof repeat[0]; i++) test_steps_repeat(repeat[i]);
    const char *encs[] = {"nope", "rope", "xpos", "grape-m", "grape-m-ctx", "grape-m-basis", "grape-m-nc", "alibi", "fox",
                          "grape-a-q", "grape-a-qk", "grape-ap", "grape-m+grape-ap", "xpos+fox", "rope:kv", "fox:kv",
                          "rope+grape-a-qk", "grape-m-ctx:pair", "grape-m-basis:fold"};
    for (size_t i = 0; i < sizeof encs / sizeof encs[0]; i++) test_decode(encs[i], &r);
    for (size_t i = 0; i < sizeof encs / sizeof encs[0]; i++) test_directional(encs[i], &r);
    test_decode_bca();
    const char *hybrids[] = {"rope+grape-a-k", "rope+grape-a-q", "rope+grape-a-qk", "grape-m+grape-a-qk",
                             "xpos+grape-a-qk"};
    for (size_t i = 0; i < sizeof hybrids / sizeof hybrids[0]; i++) test_shift(hybrids[i], 1, &r);
    const char *tied[] = {"rope:pair", "grape-m:pair", "grape-m-ctx:pair", "xpos", "rope+grape-a-qk:pair"};
    for (size_t i = 0; i < sizeof tied / sizeof tied[0]; i++) test_shift(tied[i], 0, &r);
    const char *broken[] = {"rope", "grape-m-basis:pair", "grape-m-nc:pair"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) test_shift_breaks(broken[i], &r);
    test_errors();
    test_init();
    return t_finish();
}
