// effctx.c — effective context from a per-position loss curve (effctx.h).
#include "eval/effctx.h"

#include <math.h>

// Mean of loss over band(c) = (c/2, c] (c a power of two), from prefix sums (prefix[i] = sum of the first i).
static double band_mean(const double *prefix, int c) {
    int lo = c / 2;
    return (prefix[c] - prefix[lo]) / (double)(c - lo);
}

static void prefix_sums(const double *loss, int L, double *prefix) {
    prefix[0] = 0;
    for (int c = 1; c <= L; c++) prefix[c] = prefix[c - 1] + loss[c - 1];
}

int effctx_bands(const double *loss, int L, double *bands, double *prefix) {
    prefix_sums(loss, L, prefix);
    int n = 0;
    for (int c = 1; c <= L && c > 0 && n < EFFCTX_MAX_BANDS; c *= 2) bands[n++] = band_mean(prefix, c);
    return n;
}

int effctx_from_bands(const double *bands, int n, double margin) {
    int best = 1;
    double low = bands[0]; // the lowest band mean of the shorter contexts
    for (int k = 1; k < n; k++) {
        if (bands[k] <= low - margin) best = 1 << k;
        if (bands[k] < low) low = bands[k];
    }
    return best;
}

int effctx_from_loss(const double *loss, int L, double margin, double *prefix) {
    double bands[EFFCTX_MAX_BANDS];
    return effctx_from_bands(bands, effctx_bands(loss, L, bands, prefix), margin);
}

int effctx_bands_from_sums(const double *pos_nats, int64_t windows, int L, double *bands, double *scratch) {
    for (int p = 0; p < L; p++) scratch[p] = pos_nats[p] / (double)windows / M_LN2;
    return effctx_bands(scratch, L, bands, scratch + L);
}

int effctx_from_sums(const double *pos_nats, int64_t windows, int L, double margin, double *scratch) {
    double bands[EFFCTX_MAX_BANDS];
    return effctx_from_bands(bands, effctx_bands_from_sums(pos_nats, windows, L, bands, scratch), margin);
}
