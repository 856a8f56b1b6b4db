// passkey.c — passkey retrieval scoring (passkey.h).
#include "eval/passkey.h"

#include <math.h>

#include "core/error.h"
#include "train/task_mix.h"

void passkey_wilson(double *lo, double *hi, int k, int n, double z) {
    // Wilson (1927): centre (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
    double p = (double)k / n, z2 = z * z, den = 1 + z2 / n;
    double c = (p + z2 / (2.0 * n)) / den, h = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / den;
    *lo = fmax(0, c - h);
    *hi = fmin(1, c + h);
}

// Filler of n bytes for trial rng: a uniformly chosen validation document of at least n bytes, at a uniform
// offset. NULL when no validation document is that long.
static const uint8_t *pick_filler(const data_corpus *c, size_t n, uint64_t *rng) {
    size_t eligible = 0;
    for (size_t i = 0; i < data_num_docs(c); i++) {
        const data_doc *d = data_doc_at(c, i);
        eligible += d->is_val && d->len >= n;
    }
    if (!eligible) return NULL;
    uint64_t k = (uint64_t)(((unsigned __int128)data_rng_next(rng) * eligible) >> 64);
    for (size_t i = 0;; i++) {
        const data_doc *d = data_doc_at(c, i);
        if (!(d->is_val && d->len >= n) || k--) continue;
        uint64_t off = (uint64_t)(((unsigned __int128)data_rng_next(rng) * (d->len - n + 1)) >> 64);
        return d->bytes + off;
    }
}

grape_status passkey_cell_run(passkey_cell *c, grape_evaluator *e, uint8_t *buf, const data_corpus *corpus, int L,
                              double depth, int trials, int key_len, uint64_t seed, void (*cb)(void *), void *ctx) {
    *c = (passkey_cell){.length = L, .depth = depth};
    int n = passkey_filler_len(L, 2, key_len);
    if (n < 1)
        return error_fail(GRAPE_ERR_ARG, "length %d is too short for a passkey sample with a %d-digit key (min %d)",
                          L, key_len, 2 * (1 + key_len));
    uint8_t *tokens = buf, *targets = buf + L, *argmax = buf + 2 * (size_t)L, key[PASSKEY_MAX_KEY];
    int at = (int)lround(depth * n);
    grape_evaluator_argmax(e, argmax);
    grape_status st = GRAPE_OK;
    for (int i = 0; i < trials && !st; i++) {
        uint64_t rng = data_rng_seed(seed ^ ((uint64_t)L << 32) ^ (uint64_t)i);
        const uint8_t *filler = pick_filler(corpus, (size_t)n, &rng);
        if (!filler) {
            st = error_fail(GRAPE_ERR_ARG, "length %d: no validation document has the %d filler bytes it needs", L, n);
            break;
        }
        passkey_random_key(key, key_len, &rng);
        passkey_insert ins[2] = {{at, key}, {n, key}};
        passkey_build(tokens, targets, L, filler, ins, 2, key_len);
        double nats;
        if ((st = grape_model_score(e, tokens, targets, L, NULL, &nats))) break;
        int ok = 1;
        for (int t = L - key_len; t < L; t++) ok &= argmax[t] == targets[t];
        c->hits += ok;
        c->trials++;
        if (cb) cb(ctx);
    }
    grape_evaluator_argmax(e, NULL);
    if (!st) passkey_wilson(&c->lo, &c->hi, c->hits, c->trials, PASSKEY_Z95);
    return st;
}

grape_status passkey_check_lengths(const data_corpus *corpus, const int *lengths, int n_lengths, int key_len) {
    for (int j = 0; j < n_lengths; j++) {
        int n = passkey_filler_len(lengths[j], 2, key_len);
        uint64_t rng = 0;
        if (n < 1)
            return error_fail(GRAPE_ERR_ARG, "length %d is too short for a passkey sample with a %d-digit key (min %d)",
                              lengths[j], key_len, 2 * (1 + key_len));
        if (!pick_filler(corpus, (size_t)n, &rng))
            return error_fail(GRAPE_ERR_ARG, "length %d: no validation document has the %d filler bytes it needs",
                              lengths[j], n);
    }
    return GRAPE_OK;
}

grape_status passkey_grid_run(passkey_cell *cells, grape_evaluator *e, uint8_t *buf, const data_corpus *corpus,
                              const int *lengths, int n_lengths, const double *depths, int n_depths, int trials,
                              int key_len, uint64_t seed, void (*cb)(void *), void *ctx) {
    grape_status s = passkey_check_lengths(corpus, lengths, n_lengths, key_len);
    for (int j = 0; j < n_lengths && !s; j++)
        for (int d = 0; d < n_depths && !s; d++)
            s = passkey_cell_run(&cells[j * n_depths + d], e, buf, corpus, lengths[j], depths[d], trials, key_len,
                                 seed, cb, ctx);
    return s;
}

void passkey_length_accuracy(double *acc, const passkey_cell *cells, int n_cells, const int *lengths, int n_lengths) {
    for (int j = 0; j < n_lengths; j++) {
        long h = 0, t = 0;
        for (int i = 0; i < n_cells; i++)
            if (cells[i].length == lengths[j]) h += cells[i].hits, t += cells[i].trials;
        acc[j] = t ? (double)h / (double)t : 0;
    }
}

int passkey_effective_context(const int *lengths, const double *acc, int n, int T_train, double ratio) {
    double ref = -1;
    for (int j = 0; j < n; j++)
        if (lengths[j] == T_train) ref = acc[j];
    if (ref < PASSKEY_LEARNED_MIN) return 0;
    // walk the lengths >= T_train in increasing order; the first that falls below the bar ends the run
    int best = T_train;
    for (;;) {
        int next = 0, j_next = -1;
        for (int j = 0; j < n; j++)
            if (lengths[j] > best && (j_next < 0 || lengths[j] < next)) next = lengths[j], j_next = j;
        if (j_next < 0 || acc[j_next] < ratio * ref) break;
        best = next;
    }
    return best;
}

void passkey_heatmap_gp(textbuf *b, const char *png, const char *title, const int *lengths, int n_lengths,
                        const double *depths, int n_depths, const double *acc) {
    tb_printf(b, "set terminal pngcairo size 900,520 noenhanced\nset output '%s'\nset title '%s'\n"
                 "set xlabel 'context length (bytes)'\nset ylabel 'needle depth (share of the filler)'\n"
                 "set cbrange [0:1]\nset cblabel 'exact-match accuracy'\n"
                 "set palette defined (0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')\n"
                 "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\nset xtics (",
              png, title, n_lengths - 0.5, n_depths - 0.5);
    for (int j = 0; j < n_lengths; j++) tb_printf(b, "%s\"%d\" %d", j ? ", " : "", lengths[j], j);
    tb_printf(b, ")\nset ytics (");
    for (int k = 0; k < n_depths; k++) tb_printf(b, "%s\"%g\" %d", k ? ", " : "", depths[k], k);
    tb_printf(b, ")\n$acc << EOD\n");
    for (int j = 0; j < n_lengths; j++)
        for (int k = 0; k < n_depths; k++) {
            double a = acc[(size_t)j * n_depths + k];
            if (isfinite(a)) tb_printf(b, "%d %d %.4f\n", j, k, a);
        }
    tb_printf(b, "EOD\nplot $acc using 1:2:3 with image notitle, "
                 "$acc using 1:2:(sprintf('%%.2f', $3)) with labels notitle\n");
}
