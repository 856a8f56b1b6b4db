// test_kv_cache.c — streaming decode equals prefill. For every encoding and several hybrids, tokens go one at a
// time through grape_kv_cache_rotate + grape_kv_cache_attend and each output is compared with the same row of
// grape_attn_forward over the whole sequence (q, k rotated by grape_rot_forward, factors from
// grape_bias_factors_forward): <= 1e-5 normwise relative. T = 96, and 600 for xPos (crosses two 256-token anchor
// blocks) and for the additive kinds (the cache splits the keys into chunks of 256, combined across chunks; GRAPE-AP's
// suffix runs across them). The split does not depend on the thread count: 1 and 2 threads give the same bits.
// (The prefill outputs of rope and nope are checked to differ, so equality is not vacuous.)
// With BCA the decode is LEX's sliding window (the last W keys plus the new one; arXiv 2212.10554): compared with a
// dense double reference over exactly those keys. Also: reset replays identically, and misuse is reported.
#include <omp.h>

#include "test_attn_fixture.h"
#include "test_inputs.h"

#define TOL 1e-5

typedef struct {
    grape_pe *pe;
    float *params, *q, *k, *v, *gate_logit, *probe, *phase_logit;
    double *phase;
    int w_phase, w_gate, w_probe; // widths of the encoding's token inputs (0: none)
    int T, H, D;
} stream;

static int stream_make(stream *s, const char *name, int T, uint64_t seed) {
    memset(s, 0, sizeof *s);
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 2, 64);
    if (grape_pe_parse(&cfg, name) || grape_pe_create(&s->pe, &cfg)) return 0;
    s->T = T, s->H = 2, s->D = 64;
    s->params = calloc(grape_pe_num_params(s->pe) + 1, 4);
    grape_pe_init_params(s->pe, s->params, seed);
    grape_pe_prepare(s->pe, s->params);
    s->w_phase = ti_width(s->pe, "phase"), s->w_gate = ti_width(s->pe, "gate"), s->w_probe = ti_width(s->pe, "probe");
    t_rng r = t_seed(seed);
    size_t n = (size_t)T * s->H * s->D;
    s->q = fx_randn(n, 1.0, &r), s->k = fx_randn(n, 1.0, &r), s->v = fx_randn(n, 1.0, &r);
    if (s->w_gate) { // FoX forget gates around sigmoid(2) ~ 0.88
        s->gate_logit = fx_randn((size_t)T * s->w_gate, 1.0, &r);
        for (size_t i = 0; i < (size_t)T * s->w_gate; i++) s->gate_logit[i] += 2.0f;
    }
    if (s->w_probe) s->probe = fx_randn((size_t)T * s->w_probe, 1.0, &r);
    if (s->w_phase) s->phase_logit = fx_randn((size_t)T * s->w_phase, 8.0, &r);
    if (s->w_phase) s->phase = calloc((size_t)T * s->w_phase, 8);
    return 1;
}

static void stream_free(stream *s) {
    grape_pe_free(s->pe);
    void *all[] = {s->params, s->q, s->k, s->v, s->gate_logit, s->probe, s->phase_logit, s->phase};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

// in: TI_MAX entries, the token inputs of token t (all of them from t on for a prefill).
static void inputs_at(const float **in, const stream *s, int t) {
    if (s->phase_logit) ti_set(in, s->pe, "phase", s->phase_logit + (size_t)t * s->w_phase);
    if (s->gate_logit) ti_set(in, s->pe, "gate", s->gate_logit + (size_t)t * s->w_gate);
    if (s->probe) ti_set(in, s->pe, "probe", s->probe + (size_t)t * s->w_probe);
}

// Prefill: rotate everything at absolute positions (xPos: one anchor T/2), factors for all T, fused attention.
// Leaves the rotated q, k in qr, kr and the factors in *f (workspace *ws).
static void prefill(float *out, float *qr, float *kr, grape_bias_factors **f, void **ws, stream *s) {
    const float *in[TI_MAX] = {0};
    inputs_at(in, s, 0);
    if (s->phase) grape_phase_forward(s->phase, s->phase_logit, s->pe, 1, s->T);
    grape_positions pos = {0, (double)(s->T / 2), s->phase};
    grape_rot_forward(qr, s->q, s->pe, &pos, GRAPE_QUERY, 1, s->T);
    grape_rot_forward(kr, s->k, s->pe, &pos, GRAPE_KEY, 1, s->T);
    *ws = calloc(grape_bias_workspace_bytes(s->pe, 1, s->T) + 1, 1);
    grape_bias_factors_forward(f, *ws, s->pe, qr, kr, in, 0, 1, s->T);
    float *lse = malloc((size_t)s->H * s->T * 4);
    grape_attn_opts opts = {0};
    grape_attn_forward(out, lse, qr, kr, s->v, (*f)->kind ? *f : NULL, &opts, 1, s->T, s->H, s->D);
    free(lse);
}

// Token-by-token decode into out; returns the first failing status.
static grape_status decode(float *out, grape_kv_cache *c, const stream *s) {
    size_t HD = (size_t)s->H * s->D;
    float *q = malloc(HD * 4), *k = malloc(HD * 4);
    grape_status st = GRAPE_OK;
    for (int t = 0; t < s->T && !st; t++) {
        memcpy(q, s->q + t * HD, HD * 4), memcpy(k, s->k + t * HD, HD * 4);
        const float *in[TI_MAX] = {0};
        inputs_at(in, s, t);
        st = grape_kv_cache_rotate(c, q, k);
        if (!st) st = grape_kv_cache_attend(c, out + t * HD, q, k, s->v + t * HD, NULL, NULL, in);
    }
    free(q), free(k);
    return st;
}

// Dense double attention of row t over keys [max(0, t-W), t] with the reference bias closed forms.
static void sliding_ref(double *out, const float *qr, const float *kr, const stream *s, const grape_bias_factors *f,
                        int W) {
    size_t n = (size_t)s->T * s->H * s->D, nf = (size_t)s->T * s->H, np = nf * (size_t)(f->P > 0 ? f->P : 1);
    double *qd = fx_to_double(qr, n), *kd = fx_to_double(kr, n), *sl = fx_to_double(bf_f32(f, BF_SLOPE), (size_t)s->H);
    double *gq = fx_to_double(bf_f32(f, BF_GATE_Q), nf), *gk = fx_to_double(bf_f32(f, BF_GATE_K), nf);
    double *pq = fx_to_double(bf_f32(f, BF_PROBE_Q), np), *pk = fx_to_double(bf_f32(f, BF_PROBE_K), np);
    double *row = malloc((size_t)s->T * 8);
    attn_ref_factors fd = {f->kind, f->P, sl, gq, gk, bf_f64(f, BF_CUM), pq, pk};
    double scale = 1.0 / sqrt((double)s->D);
    for (int t = 0; t < s->T; t++)
        for (int h = 0; h < s->H; h++) {
            int lo = t > W ? t - W : 0;
            if (f->kind) attn_ref_bias_row(row, &fd, 0, h, t, lo, s->T, s->H);
            double mx = -INFINITY, sum = 0;
            for (int j = lo; j <= t; j++) {
                double dot = 0;
                for (int d = 0; d < s->D; d++) dot += qd[((size_t)t * s->H + h) * s->D + d] * kd[((size_t)j * s->H + h) * s->D + d];
                row[j] = scale * dot + (f->kind ? row[j] : 0);
                mx = row[j] > mx ? row[j] : mx;
            }
            for (int j = lo; j <= t; j++) sum += (row[j] = exp(row[j] - mx));
            double *o = out + ((size_t)t * s->H + h) * s->D;
            for (int d = 0; d < s->D; d++) o[d] = 0;
            for (int j = lo; j <= t; j++)
                for (int d = 0; d < s->D; d++) o[d] += row[j] / sum * s->v[((size_t)j * s->H + h) * s->D + d];
        }
    void *all[] = {qd, kd, sl, gq, gk, pq, pk, row};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static void run(const char *name, int T, int W, int replay) {
    stream s;
    char tag[96];
    snprintf(tag, sizeof tag, "decode %s T%d W%d", name, T, W);
    if (!stream_make(&s, name, T, 7)) {
        t_true(tag, 0);
        return;
    }
    size_t n = (size_t)T * s.H * s.D;
    float *full = malloc(n * 4), *qr = malloc(n * 4), *kr = malloc(n * 4), *dec = malloc(n * 4);
    grape_bias_factors *f;
    void *ws;
    prefill(full, qr, kr, &f, &ws, &s);
    grape_kv_cache *c = NULL;
    grape_status st = grape_kv_cache_create(&c, s.pe, W ? 8 : T, W);
    if (!st) st = decode(dec, c, &s);
    char nm[192];
    if (W == 0) {
        snprintf(nm, sizeof nm, "%s equals prefill", tag);
        t_check(nm, st ? INFINITY : t_rel_err_ff(dec, full, n), TOL);
    }
    if (W == 0 && replay) { // a reset cache replays the stream exactly
        grape_kv_cache_reset(c);
        float *again = malloc(n * 4);
        st = decode(again, c, &s);
        snprintf(nm, sizeof nm, "%s after reset", tag);
        t_check(nm, st ? INFINITY : t_rel_err_ff(again, dec, n), 0.0);
        free(again);
    }
    if (W > 0) {
        double *ref = malloc(n * 8);
        sliding_ref(ref, qr, kr, &s, f, W);
        snprintf(nm, sizeof nm, "%s sliding window equals dense reference", tag);
        t_check(nm, st ? INFINITY : t_rel_err(dec, ref, n), TOL);
        free(ref);
    }
    grape_kv_cache_free(c);
    free(full), free(qr), free(kr), free(dec), free(ws);
    stream_free(&s);
}

// Guard against a vacuous comparison: the rotation must change the prefill output.
static void rotation_matters(void) {
    stream a, b;
    stream_make(&a, "nope", 64, 7), stream_make(&b, "rope", 64, 7);
    size_t n = (size_t)64 * a.H * a.D;
    float *oa = malloc(n * 4), *ob = malloc(n * 4), *qr = malloc(n * 4), *kr = malloc(n * 4);
    grape_bias_factors *f;
    void *wa, *wb;
    prefill(oa, qr, kr, &f, &wa, &a), prefill(ob, qr, kr, &f, &wb, &b);
    t_true("rope and nope prefill outputs differ by > 1e-2", t_rel_err_ff(ob, oa, n) > 1e-2);
    free(oa), free(ob), free(qr), free(kr), free(wa), free(wb);
    stream_free(&a), stream_free(&b);
}

// The chunks of the split decode are fixed by the positions, not by the threads: 1 and 2 threads, same bits.
static void threads_agree(const char *name) {
    enum { T = 600 };
    stream s;
    char nm[128];
    snprintf(nm, sizeof nm, "decode %s T%d: 1 and 2 threads give the same bits", name, T);
    if (!stream_make(&s, name, T, 5)) {
        t_true(nm, 0);
        return;
    }
    size_t n = (size_t)T * s.H * s.D;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    grape_kv_cache *c = NULL;
    int saved = omp_get_max_threads();
    grape_status st = grape_kv_cache_create(&c, s.pe, T, 0);
    omp_set_num_threads(1);
    if (!st) st = decode(a, c, &s);
    grape_kv_cache_reset(c);
    omp_set_num_threads(2);
    if (!st) st = decode(b, c, &s);
    omp_set_num_threads(saved);
    t_true(nm, !st && !memcmp(a, b, n * 4));
    grape_kv_cache_free(c);
    free(a), free(b);
    stream_free(&s);
}

static void misuse(void) {
    stream s;
    stream_make(&s, "xpos+fox", 4, 3);
    grape_kv_cache *c = NULL;
    t_true("create rejects capacity 0", grape_kv_cache_create(&c, s.pe, 0, 0) == GRAPE_ERR_ARG);
    t_true("create rejects an odd window", grape_kv_cache_create(&c, s.pe, 4, 5) == GRAPE_ERR_ARG);
    grape_kv_cache_create(&c, s.pe, 1, 0);
    float q[128] = {0}, k[128] = {0}, v[128] = {0}, out[128];
    const float *in[TI_MAX] = {0}, *none[TI_MAX] = {0};
    inputs_at(in, &s, 0);
    t_true("attend without rotate under xpos is an error",
           grape_kv_cache_attend(c, out, q, k, v, NULL, NULL, in) == GRAPE_ERR_ARG);
    grape_kv_cache_rotate(c, q, k);
    t_true("attend without the fox gate input is an error",
           grape_kv_cache_attend(c, out, q, k, v, NULL, NULL, none) == GRAPE_ERR_ARG);
    t_true("first token attends", grape_kv_cache_attend(c, out, q, k, v, NULL, NULL, in) == GRAPE_OK);
    grape_kv_cache_rotate(c, q, k);
    t_true("a full cache is an error", grape_kv_cache_attend(c, out, q, k, v, NULL, NULL, in) == GRAPE_ERR_ARG);
    t_true("position counts appended tokens", grape_kv_cache_position(c) == 1);
    grape_kv_cache_free(c);
    stream_free(&s);
}

int main(void) {
    static const char *names[] = {"nope",      "rope",      "xpos",       "grape-m",        "grape-m-ctx",
                                  "grape-m-basis", "grape-m-nc", "alibi",  "fox",            "grape-a-k",
                                  "grape-a-q", "grape-a-qk", "grape-ap",  "grape-m+grape-ap", "xpos+fox",
                                  "rope+alibi", "grape-m-ctx+fox", "grape-m+grape-a-qk", "xpos+grape-ap",
                                  "grape-a",   "rope+grape-a"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) run(names[i], strstr(names[i], "xpos") ? 600 : 96, 0, 0);
    static const char *chunked[] = {"alibi", "fox", "grape-a-qk", "grape-ap", "grape-m+grape-ap"};
    for (size_t i = 0; i < sizeof chunked / sizeof chunked[0]; i++) {
        run(chunked[i], 600, 0, 0);
        threads_agree(chunked[i]);
    }
    run("xpos+fox", 300, 0, 1);
    rotation_matters();
    run("rope+alibi", 200, 64, 0);
    run("grape-ap", 200, 64, 0);
    run("xpos+fox", 300, 100, 0);
    misuse();
    return t_finish();
}
