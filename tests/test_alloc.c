// test_alloc.c — one memory convention: every buffer is planned up front, so neither a training step (forward,
// backward, clip, AdamW, encoding tables) nor a scored evaluation window allocates. The counters below see every
// malloc, calloc, realloc, aligned_alloc and posix_memalign of libgrape and of this file: the binary is linked with
// -Wl,--wrap for them (Makefile). Allocations inside shared libraries (oneDNN, libgomp, libc) are not seen.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "grape.h"
#include "tmpdir.h"
#include "util.h"

static long n_alloc;

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n) { return n_alloc++, __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return n_alloc++, __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return n_alloc++, __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { return n_alloc++, __real_aligned_alloc(a, n); }
int __wrap_posix_memalign(void **p, size_t a, size_t n) { return n_alloc++, __real_posix_memalign(p, a, n); }

// The counters are live: the one-shot attention entry point allocates its workspace.
static void test_counter_sees_libgrape(void) {
    enum { T = 8, H = 1, D = 16 };
    float q[T * D] = {0}, out[T * D], lse[T];
    long before = n_alloc;
    int ok = grape_attn_forward(out, lse, q, q, q, NULL, NULL, 1, T, H, D) == GRAPE_OK;
    t_true("counter sees grape_attn_forward's one-shot workspace", ok && n_alloc > before);
}

typedef struct {
    long at_step1, at_step2;
} step_counts;

static int on_step(const grape_train_report *r, void *ctx) {
    step_counts *c = ctx;
    if (r->step == 1) c->at_step1 = n_alloc;
    if (r->step == 2) c->at_step2 = n_alloc;
    return 0;
}

// Step 2 of 3 (not the last: the last one validates, logs and saves) allocates nothing.
static void test_train_step(const char *pe) {
    grape_train_config c;
    grape_train_config_default(&c);
    snprintf(c.preset, sizeof c.preset, "custom");
    c.model = (grape_model_config){.n_layer = 2, .n_embd = 64, .n_head = 2, .vocab_size = 256, .max_batch = 4,
                                   .max_seq = 160};
    grape_pe_config_default(&c.model.pe, 2, 32);
    if (grape_pe_parse(&c.model.pe, pe)) exit(2);
    grape_pe_name(c.pe_name, sizeof c.pe_name, &c.model.pe);
    c.batch = 4, c.seq = 160, c.steps = 3; // T = 160: three query tiles per head
    c.opt.warmup = 1, c.opt.decay_steps = 3;
    c.eval_interval = 0, c.save_interval = 0, c.log_interval = 1000, c.threads = 2;
    step_counts counts = {-1, -1};
    char name[160];
    grape_trainer *t = NULL;
    grape_status st = grape_trainer_create(&t, &c, tmp_path(pe), NULL);
    if (!st) st = grape_trainer_run(t, on_step, &counts);
    grape_trainer_free(t);
    snprintf(name, sizeof name, "%s: training step 2 allocates nothing (%ld allocations)", pe,
             counts.at_step2 - counts.at_step1);
    if (st) printf("# %s\n", grape_last_error());
    t_true(name, !st && counts.at_step1 >= 0 && counts.at_step2 == counts.at_step1);
}

// The second scored window allocates nothing (T = 600: two token chunks).
static void test_score(const char *pe) {
    enum { T = 600 };
    grape_model_config cfg = {.n_layer = 2, .n_embd = 64, .n_head = 2, .vocab_size = 256, .max_batch = 1,
                              .max_seq = 1};
    grape_pe_config_default(&cfg.pe, 2, 32);
    grape_model *m = NULL;
    grape_evaluator *e = NULL;
    static uint8_t x[T + 1];
    for (int i = 0; i <= T; i++) x[i] = (uint8_t)(i * 37 + 11);
    double nats;
    int ok = !grape_pe_parse(&cfg.pe, pe) && !grape_model_create(&m, &cfg) && !grape_model_init(m, 3) &&
             !grape_evaluator_create(&e, m, T) && !grape_model_score(e, x, x + 1, T, NULL, &nats);
    long before = n_alloc;
    ok = ok && !grape_model_score(e, x, x + 1, T, NULL, &nats);
    char name[160];
    snprintf(name, sizeof name, "%s: a scored window allocates nothing (%ld allocations)", pe, n_alloc - before);
    t_true(name, ok && n_alloc == before);
    grape_evaluator_free(e);
    grape_model_free(m);
}

int main(void) {
    if (!tmp_create()) return perror("mkdtemp"), 2;
    omp_set_num_threads(2);
    if (access("data/kjv.txt", R_OK) != 0 && system("scripts/make_data.sh") != 0) {
        printf("FAIL data/kjv.txt missing and scripts/make_data.sh failed\n");
        return 1;
    }
    test_counter_sees_libgrape();
    const char *pes[] = {"rope",       "xpos",          "alibi",         "fox",
                         "grape-a-qk", "grape-m+grape-ap", "grape-m-nc", "grape-m-basis", // unfolded: GEMM rows
                         "grape-m-basis:folded=1", // the fold's backward on the rotation's reserved block
                         "rope:kv_shift=1"};
    for (size_t i = 0; i < sizeof pes / sizeof pes[0]; i++) {
        test_train_step(pes[i]);
        test_score(pes[i]);
    }
    tmp_remove();
    return t_finish();
}
