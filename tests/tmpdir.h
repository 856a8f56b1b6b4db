// tmpdir.h — one scratch directory per test binary (mkdtemp under /tmp), paths inside it, and its removal.
#ifndef GRAPE_TESTS_TMPDIR_H
#define GRAPE_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmp_root[] = "/tmp/grape-test-XXXXXX";

static inline int tmp_create(void) { return mkdtemp(tmp_root) != NULL; }

// tmp_root/name in one of 4 rotating buffers, so a call can take a few paths at once.
static inline char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, name);
    return buf[k];
}

static inline void tmp_remove(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp_root);
}

#endif
