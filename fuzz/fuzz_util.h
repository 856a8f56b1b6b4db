// fuzz_util.h — the libFuzzer targets' scratch file: the input is written to a file under one private directory
// (the readers under test take paths), created once per process in /dev/shm (memory: a file per execution on disk
// costs ~2 ms) or else /tmp.
#ifndef GRAPE_FUZZ_UTIL_H
#define GRAPE_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fuzz_dir[] = "/dev/shm/grape-fuzz-XXXXXX";

static char fuzz_path[128];

static void fuzz_cleanup(void) {
    remove(fuzz_path);
    remove(fuzz_dir);
}

// fuzz_dir/name := data[0..n); its path (static buffer), NULL if it cannot be written. One name per target.
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t n) {
    char *path = fuzz_path;
    static int made;
    if (!made++ && !mkdtemp(fuzz_dir) && !mkdtemp(memcpy(fuzz_dir, "/tmp/grape-fuzz-XXXXXX", 23))) abort();
    if (made == 1) atexit(fuzz_cleanup);
    snprintf(path, sizeof fuzz_path, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    int written = n == 0 || fwrite(data, 1, n, f) == n; // close in either case
    return fclose(f) == 0 && written ? path : NULL;
}

#endif
