// atomic_file.h — the one way grape writes a file: a temp file beside the target, every write checked, fsync,
// rename over the target, fsync of the directory. A reader sees the old file or the new one, never a half-written
// one, and a failure anywhere removes the temp file and leaves the old file as it was. The temp file is PATH.tmp.PID;
// one left by a writer that was killed is removed by the next atomic_open of the same PATH when no process of that
// PID runs on this host (on a file system shared between hosts, two hosts must not write the same PATH).
// Fault injection for the tests (tests/test_train_faults.c): with GRAPE_FAULT_WRITE_BYTES=N in the environment, a
// file's writes past its first N bytes fail with ENOSPC, as on a full disk. Unset: no limit.
#ifndef GRAPE_CORE_ATOMIC_FILE_H
#define GRAPE_CORE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

typedef struct {
    int fd;
    uint64_t budget; // bytes left before the injected ENOSPC
    char path[4096], tmp[4096 + 32];
} atomic_file;

// Create the temp file for path. On failure nothing is left behind (atomic_finish need not be called).
grape_status atomic_open(atomic_file *f, const char *path);
// Append n bytes; a short write, ENOSPC or EIO is an error naming the temp file.
grape_status atomic_write(atomic_file *f, const void *p, size_t n);
// s == GRAPE_OK: fsync, close, rename over the target, fsync the directory. Otherwise (an earlier write failed):
// close and remove the temp file. Returns s, or the first failure of this step.
grape_status atomic_finish(atomic_file *f, grape_status s);
// mkdir -p dir (every missing parent too).
grape_status atomic_mkdirs(const char *dir);
// The whole file at once.
grape_status atomic_write_file(const char *path, const void *data, size_t n);

#endif
