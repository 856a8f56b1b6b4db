// progress.c — see progress.h.
#include "cli/progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void progress_duration(char *buf, size_t n, double seconds) {
    long s = isfinite(seconds) && seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

// Append to buf at *at, never past n bytes.
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t n, size_t *at, const char *fmt, ...) {
    if (*at >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *at, n - *at, fmt, ap);
    va_end(ap);
    if (k > 0) *at += (size_t)k;
}

void progress_format(char *buf, size_t n, const grape_train_report *r, int bar_width) {
    size_t at = 0;
    double frac = r->steps > 0 ? (double)r->step / (double)r->steps : 1.0;
    int digits = snprintf(NULL, 0, "%lld", (long long)r->steps);
    if (n) buf[0] = '\0';
    put(buf, n, &at, "step %*lld/%lld", digits, (long long)r->step, (long long)r->steps);
    if (bar_width > 0) {
        char bar[128];
        int w = bar_width < (int)sizeof bar - 1 ? bar_width : (int)sizeof bar - 1, full = (int)(frac * w);
        memset(bar, '#', (size_t)full);
        memset(bar + full, '.', (size_t)(w - full));
        bar[w] = '\0';
        put(buf, n, &at, " [%s]", bar);
    }
    put(buf, n, &at, " %3.0f%% | loss %.4f", 100 * frac, r->loss);
    if (!isnan(r->last_val_bpb)) put(buf, n, &at, " | val %.3f bpb", r->last_val_bpb);
    if (r->tokens_per_s >= 1e4)
        put(buf, n, &at, " | %.1fk tok/s", r->tokens_per_s / 1e3);
    else
        put(buf, n, &at, " | %.0f tok/s", r->tokens_per_s);
    char el[24], eta[24];
    progress_duration(el, sizeof el, r->elapsed);
    progress_duration(eta, sizeof eta, r->eta);
    put(buf, n, &at, " | %s elapsed, ETA %s", el, eta);
}
