// dist.h — the processes of one launch (`mpirun -np N grape train|compare ...`) as the trainer's grape_train_group
// (docs/DISTRIBUTED.md). The Makefile links dist_mpi.c (OpenMPI) when it finds mpicc, dist_single.c otherwise;
// nothing else in grape knows about MPI, and libgrape never links it.
#ifndef GRAPE_CLI_DIST_H
#define GRAPE_CLI_DIST_H

#include "grape.h"

// Join the launch: under an MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment) every
// process of the job, else this process alone (rank 0 of 1, no MPI call made). Prints and returns 0 on failure,
// e.g. a build without MPI started by mpirun with N > 1 (every rank would train alone into the same directory).
// Test hook: GRAPE_FAULT_DIVERGE=R:K adds 1e-3 to gradient 0 of rank R after its K-th gradient sum, so the
// ranks' parameters differ from then on (tests/sh/test_mpi.sh checks the checkpoint catches it).
int dist_init(grape_train_group *world);
// The world's ranks of the same color, in world rank order (a collective over the world; one split per process).
int dist_split(grape_train_group *sub, const grape_train_group *world, int color);
// 1 on every rank when ok is 1 on every rank (a collective over g: also a barrier).
int dist_all_ok(const grape_train_group *g, int ok);
// The group a trainer takes: NULL for one process (no collective is called), else g.
static inline const grape_train_group *dist_trainer_group(const grape_train_group *g) {
    return g->size > 1 ? g : NULL;
}
// Processes of the world on this machine (1 without MPI): the default --threads is the cores over this count.
int dist_local_size(void);
// The gradient sums of this process so far: each is a barrier (waiting for the slowest rank: load imbalance,
// which no overlap can hide) then the all-reduce proper (the transfer an overlap with the backward could hide).
typedef struct {
    int64_t calls;
    double bytes, wait_s, transfer_s; // totals
} dist_stats;
dist_stats dist_grad_stats(void);
// Leave the launch and return rc: MPI_Finalize, or MPI_Abort of every process when abort_all (a failure some
// other rank may not share, which would leave it waiting in a collective forever).
int dist_end(int rc, int abort_all);

#endif
