// metrics.c — see metrics.h.
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

// Byte offset just after the last line whose "step" is <= step (lines are in step order).
static grape_status keep_prefix(const char *path, int64_t step, long *keep) {
    *keep = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? GRAPE_OK : grape_fail(GRAPE_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long at = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        const char *k = strstr(line, "\"step\":");
        if (!k || strtoll(k + 7, NULL, 10) > step || line[n - 1] != '\n') break;
        at += (long)n;
    }
    free(line);
    fclose(f);
    *keep = at;
    return GRAPE_OK;
}

grape_status metrics_open(metrics_log *ml, const char *dir, int64_t resume_step) {
    *ml = (metrics_log){0};
    char path[TRAIN_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", dir, METRICS_FILE) >= (int)sizeof path)
        return grape_fail(GRAPE_ERR_ARG, "path too long: %s", dir);
    long keep = 0;
    grape_status s = resume_step >= 0 ? keep_prefix(path, resume_step, &keep) : GRAPE_OK;
    if (s) return s;
    ml->f = fopen(path, resume_step >= 0 ? "a" : "w");
    if (!ml->f) return grape_fail(GRAPE_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (resume_step >= 0 && ftruncate(fileno(ml->f), keep) != 0) {
        metrics_close(ml);
        return grape_fail(GRAPE_ERR_IO, "cannot truncate '%s': %s", path, strerror(errno));
    }
    return GRAPE_OK;
}

grape_status metrics_write(metrics_log *ml, const train_report *r) {
    json_buf *b = &ml->line;
    jb_reset(b);
    // loss with 9 significant digits: a float mean reads back exactly, so runs can be compared bit for bit.
    jb_printf(
        b,
        "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": %.1f, \"elapsed\": %.2f",
        (long long)r->step, r->loss, r->lr, r->grad_norm, r->tokens_per_s, r->elapsed);
    if (!isnan(r->val_bpb)) jb_printf(b, ", \"val_bpb\": %.6f", r->val_bpb);
    jb_raw(b, "}\n", 2);
    grape_status s = jb_status(b);
    if (s) return s;
    if (fwrite(b->p, 1, b->len, ml->f) != b->len || fflush(ml->f) != 0)
        return grape_fail(GRAPE_ERR_IO, "cannot append to %s: %s", METRICS_FILE, strerror(errno));
    return GRAPE_OK;
}

void metrics_close(metrics_log *ml) {
    if (ml->f) fclose(ml->f);
    jb_free(&ml->line);
    *ml = (metrics_log){0};
}
