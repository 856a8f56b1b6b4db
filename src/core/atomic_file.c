// atomic_file.c — see atomic_file.h.
#include "core/atomic_file.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static uint64_t fault_budget(void) {
    const char *e = getenv("GRAPE_FAULT_WRITE_BYTES");
    return e && *e ? strtoull(e, NULL, 10) : UINT64_MAX;
}

// A writer killed between atomic_open and atomic_finish (SIGKILL, power loss) leaves PATH.tmp.PID behind. Remove
// those of path whose PID no longer runs on this host, so repeated kills do not pile up checkpoint-sized files.
static void remove_stale_temps(const char *path) {
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    DIR *d = opendir(dirname(dir));
    if (!d) return;
    const char *name = basename(base);
    size_t n = strlen(name);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, name, n) != 0 || strncmp(e->d_name + n, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + n + 5, &end, 10);
        if (*end == '\0' && pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

grape_status atomic_open(atomic_file *f, const char *path) {
    f->fd = -1;
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path)
        return error_fail(GRAPE_ERR_ARG, "path too long: '%s'", path);
    remove_stale_temps(path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) return error_fail(GRAPE_ERR_IO, "cannot create '%s': %s", f->tmp, strerror(errno));
    f->budget = fault_budget();
    return GRAPE_OK;
}

grape_status atomic_write(atomic_file *f, const void *p, size_t n) {
    for (const char *c = p; n > 0;) {
        size_t want = n < f->budget ? n : (size_t)f->budget;
        ssize_t w = want ? write(f->fd, c, want) : (errno = ENOSPC, -1);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return error_fail(GRAPE_ERR_IO, "cannot write '%s': %s", f->tmp, strerror(errno));
        c += w;
        n -= (size_t)w;
        f->budget -= (uint64_t)w;
    }
    return GRAPE_OK;
}

// fsync the directory holding path, so the rename itself survives a crash.
static grape_status sync_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return error_fail(GRAPE_ERR_IO, "cannot open the directory of '%s': %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc ? error_fail(GRAPE_ERR_IO, "cannot sync the directory of '%s': %s", path, strerror(errno)) : GRAPE_OK;
}

grape_status atomic_finish(atomic_file *f, grape_status s) {
    if (!s && fsync(f->fd) != 0) s = error_fail(GRAPE_ERR_IO, "cannot sync '%s': %s", f->tmp, strerror(errno));
    if (close(f->fd) != 0 && !s) s = error_fail(GRAPE_ERR_IO, "cannot close '%s': %s", f->tmp, strerror(errno));
    f->fd = -1;
    if (!s && rename(f->tmp, f->path) != 0)
        s = error_fail(GRAPE_ERR_IO, "cannot rename to '%s': %s", f->path, strerror(errno));
    if (s) {
        unlink(f->tmp);
        return s;
    }
    return sync_dir(f->path);
}

grape_status atomic_write_file(const char *path, const void *data, size_t n) {
    atomic_file f;
    grape_status s = atomic_open(&f, path);
    return s ? s : atomic_finish(&f, atomic_write(&f, data, n));
}

grape_status atomic_mkdirs(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return error_fail(GRAPE_ERR_ARG, "path too long: %s", dir);
    for (char *c = p + 1;; c++) {
        int end = *c == '\0';
        if (*c != '/' && !end) continue;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return error_fail(GRAPE_ERR_IO, "cannot create '%s': %s", p, strerror(errno));
        if (end) return GRAPE_OK;
        *c = '/';
    }
}
