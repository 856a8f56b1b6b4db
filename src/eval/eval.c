// eval.c — bits per byte over the validation windows at one length (eval.h).
#include "eval/eval.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/mem.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Bytes of document d the protocol reads: all of it, or its first doc_bytes + 1.
static size_t usable(const data_doc *d, int64_t doc_bytes) {
    return doc_bytes > 0 && d->len > (size_t)doc_bytes + 1 ? (size_t)doc_bytes + 1 : d->len;
}

static int64_t doc_windows(const data_doc *d, int L, int64_t doc_bytes) {
    size_t n = usable(d, doc_bytes);
    return d->is_val && n >= (size_t)L + 1 ? (int64_t)((n - 1) / (size_t)L) : 0;
}

int64_t eval_count_windows(const data_corpus *c, int L, int64_t doc_bytes) {
    int64_t w = 0;
    for (size_t i = 0; i < data_num_docs(c); i++) w += doc_windows(data_doc_at(c, i), L, doc_bytes);
    return w;
}

uint64_t eval_longest_val_doc(const data_corpus *c) {
    uint64_t best = 0;
    for (size_t i = 0; i < data_num_docs(c); i++) {
        const data_doc *d = data_doc_at(c, i);
        if (d->is_val && d->len > best) best = d->len;
    }
    return best;
}

// Window i of `all` is among the `take` evenly spaced ones: floor((i+1) take / all) > floor(i take / all) holds for
// exactly `take` values of i in [0, all).
static int window_taken(int64_t i, int64_t all, int64_t take) {
    return take >= all || (i + 1) * take / all > i * take / all;
}

grape_status eval_length(eval_result *r, grape_evaluator *e, const data_corpus *c, int L, int64_t doc_bytes,
                         int64_t max_windows, double *pos_nats, eval_progress cb, void *ctx) {
    *r = (eval_result){.length = L, .pos_nats = pos_nats};
    int64_t all = L > 0 ? eval_count_windows(c, L, doc_bytes) : 0, seen = 0;
    int64_t total = max_windows > 0 && max_windows < all ? max_windows : all;
    if (total == 0)
        return error_fail(GRAPE_ERR_ARG,
                          "no validation document has the %d bytes a window of length %d needs (longest: %llu bytes)",
                          L + 1, L, (unsigned long long)eval_longest_val_doc(c));
    float *loss = pos_nats ? mem_alloc((size_t)L * sizeof(float)) : NULL;
    if (pos_nats && !loss) return GRAPE_ERR_NOMEM;
    if (pos_nats) memset(pos_nats, 0, (size_t)L * sizeof(double));
    grape_status st = GRAPE_OK;
    double t0 = now();
    for (size_t i = 0; i < data_num_docs(c) && !st; i++) {
        const data_doc *d = data_doc_at(c, i);
        for (int64_t w = 0; w < doc_windows(d, L, doc_bytes) && !st; w++) {
            if (!window_taken(seen++, all, total)) continue;
            const uint8_t *x = d->bytes + (size_t)w * (size_t)L;
            double nats;
            if ((st = grape_model_score(e, x, x + 1, L, loss, &nats)) || (st = data_check(c))) break;
            r->nats += nats;
            r->windows++;
            for (int p = 0; pos_nats && p < L; p++) pos_nats[p] += loss[p];
            if (cb) cb(ctx, r->windows, total);
        }
    }
    mem_free(loss);
    if (st) return st;
    r->seconds = now() - t0;
    r->bytes = r->windows * L;
    r->bpb = r->nats / (double)r->bytes / M_LN2;
    r->tokens_per_s = r->seconds > 0 ? (double)r->bytes / r->seconds : 0;
    return GRAPE_OK;
}
