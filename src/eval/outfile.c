// outfile.c — see outfile.h.
#include "eval/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

static grape_status put_all(int fd, const char *p, size_t n, const char *tmp) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return grape_fail(GRAPE_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        p += w, n -= (size_t)w;
    }
    return fsync(fd) ? grape_fail(GRAPE_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno)) : GRAPE_OK;
}

grape_status out_write_atomic(const char *path, const void *data, size_t n) {
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return grape_fail(GRAPE_ERR_ARG, "path too long: '%s'", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return grape_fail(GRAPE_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    grape_status s = put_all(fd, data, n, tmp);
    if (close(fd) && !s) s = grape_fail(GRAPE_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (!s && rename(tmp, path)) s = grape_fail(GRAPE_ERR_IO, "cannot rename to '%s': %s", path, strerror(errno));
    if (s) {
        unlink(tmp);
        return s;
    }
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC); // the rename itself survives a crash
    if (dfd >= 0) {
        if (fsync(dfd)) s = grape_fail(GRAPE_ERR_IO, "cannot sync the directory of '%s': %s", path, strerror(errno));
        close(dfd);
    }
    return s;
}
