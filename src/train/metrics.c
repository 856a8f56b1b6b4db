// metrics.c — see metrics.h.
#include "train/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

// Byte offset just after the last line whose "step" is <= step (lines are in step order), and that line's
// "elapsed". A line that is not a complete JSON object with an integer "step" ends the kept prefix.
static grape_status keep_prefix(const char *path, int64_t step, long *keep, double *elapsed) {
    *keep = 0;
    *elapsed = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? GRAPE_OK : error_fail(GRAPE_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long at = 0;
    while ((n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
        json_t *o = json_loadb(line, (size_t)n, 0, NULL);
        const json_t *st = json_object_get(o, "step");
        int keep_line = json_is_integer(st) && json_integer_value(st) <= step;
        if (keep_line) *elapsed = json_number_value(json_object_get(o, "elapsed"));
        json_decref(o);
        if (!keep_line) break;
        at += (long)n;
    }
    free(line);
    fclose(f);
    *keep = at;
    return GRAPE_OK;
}

grape_status metrics_open(metrics_log *ml, const char *dir, int64_t resume_step, double *elapsed) {
    *ml = (metrics_log){0};
    *elapsed = 0;
    char path[GRAPE_TRAIN_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", dir, GRAPE_METRICS_FILE) >= (int)sizeof path)
        return error_fail(GRAPE_ERR_ARG, "path too long: %s", dir);
    long keep = 0;
    grape_status s = resume_step >= 0 ? keep_prefix(path, resume_step, &keep, elapsed) : GRAPE_OK;
    if (s) return s;
    ml->f = fopen(path, resume_step >= 0 ? "a" : "w");
    if (!ml->f) return error_fail(GRAPE_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (resume_step >= 0 && ftruncate(fileno(ml->f), keep) != 0) {
        metrics_close(ml);
        return error_fail(GRAPE_ERR_IO, "cannot truncate '%s': %s", path, strerror(errno));
    }
    return GRAPE_OK;
}

// x rounded to the digits printf's fmt keeps: printed below with 9 significant digits, it reads as that text
// (a decimal of at most 9 digits survives the round trip through a double).
static json_t *rounded(const char *fmt, double x) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, x);
    return json_real(strtod(buf, NULL));
}

grape_status metrics_write(metrics_log *ml, const grape_train_report *r) {
    // loss with 9 significant digits: a float mean reads back exactly, so runs can be compared bit for bit.
    json_t *o = json_pack("{sI so so so so so}", "step", (json_int_t)r->step, "loss", rounded("%.9g", r->loss), "lr",
                          rounded("%.6g", r->lr), "grad_norm", rounded("%.6g", r->grad_norm), "tokens_per_s",
                          rounded("%.1f", r->tokens_per_s), "elapsed", rounded("%.2f", r->elapsed));
    if (o && !isnan(r->val_bpb) && json_object_set_new(o, "val_bpb", rounded("%.6f", r->val_bpb))) {
        json_decref(o);
        o = NULL;
    }
    char *text = o ? json_dumps(o, JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!text)
        return error_fail(GRAPE_ERR_NUMERIC, "cannot format metrics line of step %lld (a value is not finite)",
                          (long long)r->step);
    int ok = fputs(text, ml->f) >= 0 && fputc('\n', ml->f) != EOF && fflush(ml->f) == 0;
    free(text);
    return ok ? GRAPE_OK : error_fail(GRAPE_ERR_IO, "cannot append to %s: %s", GRAPE_METRICS_FILE, strerror(errno));
}

void metrics_close(metrics_log *ml) {
    if (ml->f) fclose(ml->f);
    *ml = (metrics_log){0};
}
