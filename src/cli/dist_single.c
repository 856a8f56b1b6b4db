// dist_single.c — dist.h for a build without MPI: one process. Started by an MPI launcher with more than one
// process, it refuses, since every rank would train alone into the same directory.
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/dist.h"

int dist_init(grape_train_group *world) {
    *world = (grape_train_group){.rank = 0, .size = 1};
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1)
            return !cli_error("this grape was built without MPI, but %s=%s says an MPI launcher started %s copies of "
                             "it: install libopenmpi-dev and rebuild (make MPI=1; docs/DISTRIBUTED.md)",
                             vars[i], v, v);
    }
    return 1;
}

int dist_split(grape_train_group *sub, const grape_train_group *world, int color) {
    (void)color;
    *sub = *world;
    return 1;
}

int dist_all_ok(const grape_train_group *g, int ok) {
    (void)g;
    return ok;
}

int dist_local_size(void) { return 1; }

dist_stats dist_grad_stats(void) { return (dist_stats){0}; }

int dist_end(int rc, int abort_all) {
    (void)abort_all;
    return rc;
}
