// test_rot_reserve.c — the rotation workspace (grape_pe_reserve): forward and backward calls within the reservation
// allocate nothing (rot_state's workspace-allocation counter stays put), a larger call grows it once and the next
// call of that size (either direction) allocates nothing, and every result is bitwise that of an encoding that never reserved.
#include "test_rot_util.h"

enum { B = 2, T = 7, H = 3, D = 16 };

typedef struct {
    float *y, *dx, *dp;
    double *dph;
} outs;

static size_t allocs(const rot_fix *f) { return atomic_load(&f->pe->rot->work.allocs); }

// Forward and backward (every gradient) of f's data at nb × nt tokens into o, zeroed first.
static grape_status run(outs *o, rot_fix *f, int nb, int nt) {
    memset(o->dx, 0, f->nx * sizeof(float));
    memset(o->dp, 0, (f->np + 1) * sizeof(float));
    memset(o->dph, 0, f->nph * sizeof(double));
    grape_status st = grape_rot_forward(o->y, f->xf, f->pe, &f->pos, f->side, nb, nt);
    if (!st) st = grape_rot_backward(o->dx, o->dp, o->dph, f->wf, f->xf, f->pe, &f->pos, f->side, nb, nt);
    return st;
}

static int same(const outs *a, const outs *b, const rot_fix *f) {
    return !memcmp(a->y, b->y, f->nx * sizeof(float)) && !memcmp(a->dx, b->dx, f->nx * sizeof(float)) &&
           !memcmp(a->dp, b->dp, (f->np + 1) * sizeof(float)) && !memcmp(a->dph, b->dph, f->nph * sizeof(double));
}

static void outs_alloc(outs *o, const rot_fix *f) {
    o->y = calloc(f->nx, sizeof(float)), o->dx = calloc(f->nx, sizeof(float));
    o->dp = calloc(f->np + 1, sizeof(float)), o->dph = calloc(f->nph, sizeof(double));
}

static void outs_free(outs *o) { free(o->y), free(o->dx), free(o->dp), free(o->dph); }

static void test_reserve(grape_rot_kind kind, int per_head) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    cfg.rot = kind, cfg.per_head = per_head, cfg.rotary_dim = 12, cfg.nc_rank = 4;
    rot_fix f, g; // f never reserves; g reserves 1 × 3 tokens. Same seed: same parameters and data.
    t_rng r1 = t_seed(11), r2 = t_seed(11);
    char lab[160];
    snprintf(lab, sizeof lab, "%s per_head=%d: fixtures", rot_kind_names[kind], per_head);
    if (!t_true(lab, rot_fix_create(&f, &cfg, B, T, 5, GRAPE_KEY, &r1) &&
                         rot_fix_create(&g, &cfg, B, T, 5, GRAPE_KEY, &r2)))
        return;
    outs of, og;
    outs_alloc(&of, &f), outs_alloc(&og, &g);
    grape_status st = grape_pe_reserve(g.pe, 1, 3);
    size_t a0 = allocs(&g);
    const int shapes[4][2] = {{1, 3}, {1, 1}, {B, T}, {B, T}}; // within, within (decode), grows, grown
    int ok_same = 1;
    size_t fa[4] = {0}, ga[4] = {0};
    for (int i = 0; i < 4 && !st; i++) {
        st = run(&of, &f, shapes[i][0], shapes[i][1]);
        fa[i] = allocs(&f);
        if (!st) st = run(&og, &g, shapes[i][0], shapes[i][1]);
        ok_same &= same(&of, &og, &f);
        ga[i] = allocs(&g);
    }
    snprintf(lab, sizeof lab, "%s per_head=%d: calls succeed", rot_kind_names[kind], per_head);
    t_true(lab, st == GRAPE_OK);
    snprintf(lab, sizeof lab, "%s per_head=%d: reserved results bitwise equal to unreserved", rot_kind_names[kind],
             per_head);
    t_true(lab, ok_same);
    // Growing may be a no-op when the tables of both shapes round to the same aligned size.
    snprintf(lab, sizeof lab, "%s per_head=%d: no allocation within the reservation, at most one to grow past it",
             rot_kind_names[kind], per_head);
    t_true(lab, ga[0] == a0 && ga[1] == a0 && ga[2] <= a0 + 1 && ga[3] == ga[2]);
    snprintf(lab, sizeof lab, "%s per_head=%d: unreserved: one allocation per new largest shape", rot_kind_names[kind],
             per_head);
    t_true(lab, fa[0] == 1 && fa[1] == 1 && fa[2] <= 2 && fa[3] == fa[2]);
    outs_free(&of), outs_free(&og);
    rot_fix_free(&f), rot_fix_free(&g);
}

static void test_reserve_args(void) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    cfg.rot = GRAPE_ROT_ROPE;
    grape_pe *pe = NULL;
    grape_status st = grape_pe_create(&pe, &cfg);
    t_true("reserve rejects max_B = 0 and max_T = -1",
           !st && grape_pe_reserve(pe, 0, 4) == GRAPE_ERR_ARG && grape_pe_reserve(pe, 1, -1) == GRAPE_ERR_ARG);
    t_true("reserve rejects a NULL encoding", grape_pe_reserve(NULL, 1, 1) == GRAPE_ERR_ARG);
    grape_pe_free(pe);
}

int main(void) {
    for (int k = GRAPE_ROT_ROPE; k < GRAPE_ROT_COUNT; k++) test_reserve((grape_rot_kind)k, 0);
    test_reserve(GRAPE_ROT_GRAPE_M_CTX, 1);
    test_reserve(GRAPE_ROT_GRAPE_M_NC, 1);
    test_reserve_args();
    return t_finish();
}
