// bench_basis.c — `grape bench basis`: the two forms of grape-m-basis in ns per token per head against RoPE.
//   unfolded: G(n) = B R(nθ) Bᵀ applied to q (O(R²) per token and head);
//   folded:   Bᵀ moved into the q/k projection by grape_basis_fold (once per step per projection), the rotation
//             is R(nθ) only (O(R)). The fold's own cost (forward + backward for W_q and W_k, C = H·D) is reported
//             per step and amortised over the step's B·T·H token-heads.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/mem.h"
#include "grape.h"

typedef struct {
    grape_pe *pe;
    int B, T, C;
    grape_positions pos;
    float *x, *y, *dy, *dx, *params, *dparams, *w, *wf, *dw;
} basis_bench;

static void fwd(void *p) {
    basis_bench *b = p;
    grape_rot_forward(b->y, b->x, b->pe, &b->pos, GRAPE_QUERY, b->B, b->T);
}

static void bwd(void *p) {
    basis_bench *b = p;
    grape_rot_backward(b->dx, b->dparams, NULL, b->dy, b->x, b->pe, &b->pos, GRAPE_QUERY, b->B, b->T);
}

// Per step: fold and fold backward of W_q and W_k.
static void fold_step(void *p) {
    basis_bench *b = p;
    for (int k = 0; k < 2; k++) {
        grape_basis_fold(b->wf, b->w, b->pe, b->C);
        grape_basis_fold_backward(b->dw, b->dparams, b->wf, b->w, b->pe, b->C);
    }
}

static grape_status setup(basis_bench *b, grape_rot_kind kind, int folded, int H, int D) {
    grape_pe_config c;
    grape_pe_config_default(&c, H, D);
    c.rot = kind, c.basis_folded = folded;
    grape_status st = grape_pe_create(&b->pe, &c);
    if (st) return st;
    size_t n = (size_t)b->B * (size_t)b->T * (size_t)H * (size_t)D, np = grape_pe_num_params(b->pe) + 1;
    size_t nw = (size_t)H * (size_t)D * (size_t)b->C;
    float **bufs[] = {&b->x, &b->y, &b->dy, &b->dx, &b->params, &b->dparams, &b->w, &b->wf, &b->dw};
    size_t sizes[] = {n, n, n, n, np, np, nw, nw, nw};
    for (int i = 0; i < 9; i++)
        if (!(*bufs[i] = mem_alloc(sizes[i] * sizeof(float)))) return GRAPE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) b->x[i] = (float)(i % 13) * 0.1f - 0.6f, b->dy[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (size_t i = 0; i < nw; i++) b->w[i] = (float)(i % 11) * 0.01f - 0.05f;
    if ((st = grape_pe_init_params(b->pe, b->params, 1))) return st;
    for (size_t i = 0; i + 1 < np; i++) b->params[i] += 0.01f * (float)(i % 5); // B away from I
    return grape_pe_prepare(b->pe, b->params);
}

static void teardown(basis_bench *b) {
    grape_pe_free(b->pe);
    float *bufs[] = {b->x, b->y, b->dy, b->dx, b->params, b->dparams, b->w, b->wf, b->dw};
    for (int i = 0; i < 9; i++) mem_free(bufs[i]);
}

// ns per token-head of forward and backward (and of the per-step fold when with_fold).
static int measure(double out[3], grape_rot_kind kind, int folded, int B, int T, int H, int D, int reps) {
    basis_bench b = {.B = B, .T = T, .C = H * D};
    grape_status st = setup(&b, kind, folded, H, D);
    double per = 1e9 / ((double)B * T * H);
    if (!st) {
        out[0] = bench_median(fwd, &b, reps) * per;
        out[1] = bench_median(bwd, &b, reps) * per;
        out[2] = kind == GRAPE_ROT_GRAPE_M_BASIS ? bench_median(fold_step, &b, reps) * per : 0.0;
    }
    teardown(&b);
    if (st) cli_error("bench basis: %s", grape_last_error());
    return !st;
}

int bench_basis(int argc, char **argv) {
    static const char *const known[] = {"--D", "--B", "--T", "--H", "--reps", "--threads", NULL};
    static const char *const booleans[] = {NULL};
    cli_args a = {argc, argv, known};
    long D = 128, B = 2, T = 2048, H = 8, reps = 21, threads = 1;
    if (!args_check(&a, booleans) || !args_long(&a, "--D", 2, 1024, &D) || !args_long(&a, "--B", 1, 1024, &B) ||
        !args_long(&a, "--T", 1, 1 << 20, &T) || !args_long(&a, "--H", 1, 1024, &H) ||
        !args_long(&a, "--reps", 1, 101, &reps) || !args_long(&a, "--threads", 1, 1024, &threads))
        return 1;
    if (D % 2) return cli_error("bench basis: --D must be even, got %ld", D);
    omp_set_num_threads((int)threads);
    double rope[3], unf[3], fol[3];
    if (!measure(rope, GRAPE_ROT_ROPE, 0, (int)B, (int)T, (int)H, (int)D, (int)reps) ||
        !measure(unf, GRAPE_ROT_GRAPE_M_BASIS, 0, (int)B, (int)T, (int)H, (int)D, (int)reps) ||
        !measure(fol, GRAPE_ROT_GRAPE_M_BASIS, 1, (int)B, (int)T, (int)H, (int)D, (int)reps))
        return 1;
    printf("grape-m-basis at D=%ld: B=%ld T=%ld H=%ld, %ld threads, wall clock, median of %ld; ns per token per head\n",
           D, B, T, H, threads, reps);
    printf("%-34s %10s %10s %9s %9s\n", "form", "forward", "backward", "fwd/rope", "bwd/rope");
    printf("%-34s %10.2f %10.2f %8.2fx %8.2fx\n", "rope", rope[0], rope[1], 1.0, 1.0);
    printf("%-34s %10.2f %10.2f %8.2fx %8.2fx\n", "unfolded  B R(n theta) B^T", unf[0], unf[1], unf[0] / rope[0],
           unf[1] / rope[1]);
    printf("%-34s %10.2f %10.2f %8.2fx %8.2fx\n", "folded    R(n theta) only", fol[0], fol[1], fol[0] / rope[0],
           fol[1] / rope[1]);
    printf("%-34s %10s %10.2f   (fold + fold backward of W_q, W_k per step, C = H*D, amortised)\n",
           "folded    fold per step", "", fol[2]);
    printf("%-34s %10.2f %10.2f %8.2fx %8.2fx\n", "folded    total", fol[0], fol[1] + fol[2], fol[0] / rope[0],
           (fol[1] + fol[2]) / rope[1]);
    return 0;
}
