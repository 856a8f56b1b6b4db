// dist_mpi.c — grape_train_group on MPI (OpenMPI from Debian: libopenmpi-dev, openmpi-bin). The gradient sum is one
// MPI_Allreduce over the whole contiguous gradient vector after the backward: overlapping per-layer buckets with
// the backward would save at most the all-reduce's share of a step, measured at under 1% here
// (docs/DISTRIBUTED.md, "Communication").
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/dist.h"
#include "core/error.h"

static MPI_Comm comms[2]; // the world and one split of it
static int inited, split, fault_rank = -1;
static int64_t fault_call;
static dist_stats stats;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static grape_status mpi_status(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return GRAPE_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return error_fail(GRAPE_ERR_IO, "%s failed: %s", what, msg);
}

// MPI counts are int: vectors longer than INT_MAX go in pieces.
static grape_status allreduce(void *v, size_t n, size_t elem, MPI_Datatype type, MPI_Comm comm) {
    for (size_t i = 0; i < n; i += INT_MAX) {
        int k = n - i < INT_MAX ? (int)(n - i) : INT_MAX;
        grape_status s = mpi_status(MPI_Allreduce(MPI_IN_PLACE, (char *)v + i * elem, k, type, MPI_SUM, comm),
                                    "MPI_Allreduce");
        if (s) return s;
    }
    return GRAPE_OK;
}

static grape_status sum_f32(float *v, size_t n, void *impl) {
    MPI_Comm comm = *(MPI_Comm *)impl;
    double t0 = now();
    grape_status s = mpi_status(MPI_Barrier(comm), "MPI_Barrier");
    double t1 = now();
    if (!s) s = allreduce(v, n, sizeof *v, MPI_FLOAT, comm);
    stats.wait_s += t1 - t0, stats.transfer_s += now() - t1, stats.bytes += (double)(n * sizeof *v);
    if (++stats.calls == fault_call && n > 0) {
        int rank;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        if (rank == fault_rank) v[0] += 1e-3f;
    }
    return s;
}

static grape_status sum_f64(double *v, size_t n, void *impl) {
    return allreduce(v, n, sizeof *v, MPI_DOUBLE, *(MPI_Comm *)impl);
}

static grape_status gather_u64(uint64_t v, uint64_t *all, void *impl) {
    return mpi_status(MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, *(MPI_Comm *)impl), "MPI_Allgather");
}

static void group_of(grape_train_group *g, MPI_Comm *comm) {
    *g = (grape_train_group){.ctx = comm, .sum_f32 = sum_f32, .sum_f64 = sum_f64, .gather_u64 = gather_u64};
    MPI_Comm_rank(*comm, &g->rank);
    MPI_Comm_size(*comm, &g->size);
}

static int launched(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK"); }

int dist_init(grape_train_group *world) {
    *world = (grape_train_group){.rank = 0, .size = 1};
    if (!launched()) return 1;
    int provided;
    // Only the main thread calls MPI; OpenMP threads compute between the calls.
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return !cli_error("MPI_Init_thread failed");
    inited = 1;
    comms[0] = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    group_of(world, &comms[0]);
    const char *f = getenv("GRAPE_FAULT_DIVERGE");
    long long k;
    if (f && sscanf(f, "%d:%lld", &fault_rank, &k) == 2) fault_call = k;
    return 1;
}

int dist_split(grape_train_group *sub, const grape_train_group *world, int color) {
    if (!inited) return *sub = *world, 1;
    if (MPI_Comm_split(comms[0], color, world->rank, &comms[1]) != MPI_SUCCESS)
        return !cli_error("MPI_Comm_split failed");
    split = 1;
    group_of(sub, &comms[1]);
    return 1;
}

int dist_all_ok(const grape_train_group *g, int ok) {
    if (!inited) return ok;
    int all = 0;
    return MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, *(MPI_Comm *)g->ctx) == MPI_SUCCESS && all;
}

int dist_local_size(void) {
    if (!inited) return 1;
    MPI_Comm local;
    int n = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) != MPI_SUCCESS) return 1;
    MPI_Comm_size(local, &n);
    MPI_Comm_free(&local);
    return n;
}

dist_stats dist_grad_stats(void) { return stats; }

int dist_end(int rc, int abort_all) {
    if (!inited) return rc;
    if (abort_all) MPI_Abort(MPI_COMM_WORLD, rc ? rc : 1);
    if (split) MPI_Comm_free(&comms[1]);
    MPI_Finalize();
    return rc;
}
