// test_repro.c — same inputs and thread count => the same bits (runs used to differ in the last bits).
//   1. oneDNN's dnnl_sgemm, at the shapes of the model's forward and weight gradients, repeated: bit-identical.
//   2. The attention backward (query tiles dealt to threads, slope gradient summed in thread order), repeated with
//      2 and 3 threads on T = 300 (5 query tiles, so threads share the key accumulators): bit-identical.
//   2b. When the (b,h) slices split evenly over the threads each thread owns whole slices: dq, dk, dv and the
//      per-token factor gradients are then the same bits on 1 and 2 threads (the slope's per-thread sums differ).
//   3. `grape train` run twice with --threads 2 (T = 160: two query tiles): byte-identical model.safetensors, and
//      metrics.jsonl identical except its wall-clock fields "tokens_per_s" and "elapsed" (removed from every line
//      before comparing).
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gemm.h"
#include "test_attn_fixture.h"
#include "tmpdir.h"

enum { REPEATS = 6 };

static void test_gemm(int threads) {
    static const struct {
        int64_t M, N, K;
        int ta, tb;
    } shapes[] = {{512, 768, 256, 0, 0}, {256, 768, 512, 1, 0}, {512, 256, 768, 0, 1}, {256, 1024, 4096, 1, 0}};
    omp_set_num_threads(threads);
    t_rng r = t_seed(5);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        float *a = fx_randn((size_t)(M * K), 1, &r), *b = fx_randn((size_t)(K * N), 1, &r);
        float *c0 = calloc((size_t)(M * N), 4), *c = calloc((size_t)(M * N), 4);
        int same = !gemm(c0, a, b, M, N, K, shapes[s].ta, shapes[s].tb, 0.0f);
        for (int i = 0; i < REPEATS && same; i++)
            same = !gemm(c, a, b, M, N, K, shapes[s].ta, shapes[s].tb, 0.0f) && !memcmp(c, c0, (size_t)(M * N) * 4);
        char name[128];
        snprintf(name, sizeof name, "dnnl_sgemm %ldx%ldx%ld%s%s, %d threads: %d repeats bit-identical", (long)M,
                 (long)N, (long)K, shapes[s].ta ? " A^T" : "", shapes[s].tb ? " B^T" : "", threads, REPEATS);
        t_true(name, same);
        free(a), free(b), free(c0), free(c);
    }
}

// Every gradient of one backward run, concatenated (dq, dk, dv, then the factor grads present).
static size_t grads_of(float *dst, const fx_problem *p, const float *out, const float *lse) {
    fx_grads g;
    fx_grads_make(&g, p);
    grape_attn_opts opts = {0};
    if (grape_attn_backward(g.dq, g.dk, g.dv, &g.g, p->dout, out, lse, p->q, p->k, p->v, fx_bias(p), &opts, p->B,
                            p->T, p->H, p->D))
        exit(2);
    size_t n = 0;
    const float *parts[] = {g.dq, g.dk, g.dv, g.dslope, g.dgq, g.dgk, g.dpq, g.dpk};
    size_t sizes[] = {p->n, p->n, p->n, (size_t)p->H, p->nf, p->nf, p->np, p->np};
    for (int i = 0; i < 8; i++)
        if (parts[i]) memcpy(dst + n, parts[i], sizes[i] * 4), n += sizes[i];
    fx_grads_free(&g);
    return n;
}

static void test_attention(grape_bias_kind kind, int threads) {
    omp_set_num_threads(threads);
    fx_problem p;
    fx_make(&p, kind, 2, 300, 2, 32, 1.0, 31 + kind);
    size_t nl = (size_t)p.B * p.H * p.T, cap = 3 * p.n + 2 * p.nf + 2 * p.np + (size_t)p.H;
    float *out = malloc(p.n * 4), *lse = malloc(nl * 4), *g0 = malloc(cap * 4), *g = malloc(cap * 4);
    grape_attn_opts opts = {0};
    if (grape_attn_forward(out, lse, p.q, p.k, p.v, fx_bias(&p), &opts, p.B, p.T, p.H, p.D)) exit(2);
    size_t n = grads_of(g0, &p, out, lse);
    int same = 1;
    for (int i = 0; i < REPEATS && same; i++) same = grads_of(g, &p, out, lse) == n && !memcmp(g, g0, n * 4);
    char name[128];
    snprintf(name, sizeof name, "attention backward %s, %d threads: %d repeats bit-identical (%zu values)",
             fx_kind_name(kind), threads, REPEATS, n);
    t_true(name, same);
    free(out), free(lse), free(g0), free(g);
    fx_free(&p);
}

static void test_attention_slices(grape_bias_kind kind) {
    fx_problem p;
    fx_make(&p, kind, 2, 300, 2, 32, 1.0, 41 + kind); // 4 slices: whole slices on 1 and on 2 threads
    size_t nl = (size_t)p.B * p.H * p.T, cap = 3 * p.n + 2 * p.nf + 2 * p.np + (size_t)p.H;
    float *out = malloc(p.n * 4), *lse = malloc(nl * 4), *g1 = malloc(cap * 4), *g2 = malloc(cap * 4);
    grape_attn_opts opts = {0};
    if (grape_attn_forward(out, lse, p.q, p.k, p.v, fx_bias(&p), &opts, p.B, p.T, p.H, p.D)) exit(2);
    omp_set_num_threads(1);
    size_t n1 = grads_of(g1, &p, out, lse);
    omp_set_num_threads(2);
    size_t n2 = grads_of(g2, &p, out, lse);
    // grads_of's order: dq, dk, dv, dslope (H), then the per-token factor grads
    size_t qkv = 3 * p.n, hs = (size_t)p.H, rest = n1 - qkv - hs;
    int same = n1 == n2 && !memcmp(g1, g2, qkv * 4) && !memcmp(g1 + qkv + hs, g2 + qkv + hs, rest * 4);
    char name[160];
    snprintf(name, sizeof name, "attention backward %s, whole (b,h) slices: 1 and 2 threads, same dq dk dv and "
             "token-factor bits (%zu values)", fx_kind_name(kind), n1 - hs);
    t_true(name, same);
    free(out), free(lse), free(g1), free(g2);
    fx_free(&p);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    b[*n] = '\0';
    fclose(f);
    return b;
}

// metrics.jsonl with "tokens_per_s" and "elapsed" removed from every line, re-serialised; NULL if unreadable.
static char *deterministic_metrics(const char *dir) {
    char path[300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    size_t n, at = 0;
    char *text = slurp(path, &n), *out = calloc(n + 1, 1);
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o || json_object_del(o, "tokens_per_s") || json_object_del(o, "elapsed")) return NULL;
        char *s = json_dumps(o, JSON_COMPACT);
        at += (size_t)snprintf(out + at, n + 1 - at, "%s\n", s);
        free(s);
        json_decref(o);
    }
    free(text);
    return text ? out : NULL;
}

static void test_cli(const char *argv0, const char *pe) {
    char grape[512], cmd[1400], dirs[2][300], files[2][340];
    snprintf(grape, sizeof grape, "%s", argv0);
    for (int up = 0; up < 2; up++) *(strrchr(grape, '/') ? strrchr(grape, '/') : grape) = '\0';
    strcat(grape, "/grape");
    for (int run = 0; run < 2; run++) {
        snprintf(dirs[run], sizeof dirs[run], "%.200s/%.60s-%d", tmp_root, pe, run);
        snprintf(files[run], sizeof files[run], "%.280s/model.safetensors", dirs[run]);
        snprintf(cmd, sizeof cmd,
                 "%s train --pe %s --steps 3 --batch 1 --seq 160 --threads 2 --seed 9 --log-interval 1 "
                 "--eval-interval 2 --eval-batches 1 --quiet --out %s",
                 grape, pe, dirs[run]);
        if (system(cmd) != 0) printf("# failed: %s\n", cmd);
    }
    size_t na = 0, nb = 0;
    char *a = slurp(files[0], &na), *b = slurp(files[1], &nb);
    char name[160];
    snprintf(name, sizeof name, "grape train --pe %s twice (2 threads): byte-identical model.safetensors (%zu bytes)",
             pe, na);
    t_true(name, a && b && na > 0 && na == nb && !memcmp(a, b, na));
    free(a), free(b);
    char *ma = deterministic_metrics(dirs[0]), *mb = deterministic_metrics(dirs[1]);
    if (ma) printf("# %s", ma);
    snprintf(name, sizeof name,
             "grape train --pe %s twice: identical metrics.jsonl apart from tokens_per_s and elapsed", pe);
    t_true(name, ma && mb && strstr(ma, "\"val_bpb\"") && !strcmp(ma, mb));
    free(ma), free(mb);
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return perror("mkdtemp"), 2;
    // The runs' threads sleep when idle: spinning teams on a shared 2-core machine made each run 10x slower.
    setenv("OMP_WAIT_POLICY", "passive", 1);
    for (int threads = 2; threads <= 3; threads++) {
        test_gemm(threads);
        test_attention(GRAPE_BIAS_GRAPE_AP, threads);
        test_attention(GRAPE_BIAS_GRAPE_A_QK, threads);
    }
    test_attention_slices(GRAPE_BIAS_GRAPE_AP);
    test_attention_slices(GRAPE_BIAS_FOX);
    if (access("data/kjv.txt", R_OK) != 0 && system("scripts/make_data.sh >/dev/null") != 0) {
        printf("FAIL data/kjv.txt missing and scripts/make_data.sh failed\n");
        return 1;
    }
    test_cli(argv[0], "rope");
    test_cli(argv[0], "grape-m+grape-ap");
    tmp_remove();
    return t_finish();
}
