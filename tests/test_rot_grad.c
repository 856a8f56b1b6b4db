// test_rot_grad.c — every rotation's float forward against the double reference lift (G(n) built from its
// generators), and every backward (dx, dparams, dphase) against 4-point finite differences of that reference.
// Shapes: odd T, head counts 3, 5, 6, D ∈ {8, 64, 128 with partial rotary 64}, both pair layouts, per-head sets.
#include "test_rot_util.h"

typedef struct {
    int B, T, H, D, R, il, per_head;
    int64_t pos0;
} shape;

static void run_case(grape_rot_kind kind, const shape *s, grape_side side, t_rng *rng) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, s->H, s->D);
    cfg.rot = kind, cfg.rotary_dim = s->R, cfg.interleaved = s->il, cfg.per_head = s->per_head;
    cfg.nc_rank = s->R >= 8 ? 6 : 2;
    rot_fix f;
    char name[160], lab[240];
    snprintf(name, sizeof name, "%s B%d T%d H%d D%d R%d %s%s %s pos0=%lld", rot_kind_names[kind], s->B, s->T, s->H,
             s->D, s->R, s->il ? "interleaved" : "half-split", s->per_head ? " per-head" : "",
             side == GRAPE_QUERY ? "q" : "k", (long long)s->pos0);
    if (!t_true(name, rot_fix_create(&f, &cfg, s->B, s->T, s->pos0, side, rng))) return;
    grape_status st = grape_rot_forward(f.yf, f.xf, f.pe, &f.pos, side, s->B, s->T);
    rot_fix_loss(NULL, &f);
    snprintf(lab, sizeof lab, "%s: forward vs lift", name);
    t_check(lab, st ? 1.0 : t_rel_err(f.yf, f.y, f.nx), 2e-6);
    float *inplace = malloc(f.nx * sizeof(float));
    memcpy(inplace, f.xf, f.nx * sizeof(float));
    if (!st) st = grape_rot_forward(inplace, inplace, f.pe, &f.pos, side, s->B, s->T);
    snprintf(lab, sizeof lab, "%s: in-place forward (y == x) == out-of-place", name);
    t_check(lab, st ? 1.0 : t_rel_err_ff(inplace, f.yf, f.nx), 0);
    free(inplace);
    st = grape_rot_backward(f.dx, f.dp, f.dph, f.wf, f.xf, f.pe, &f.pos, side, s->B, s->T);
    size_t cap = s->D > 16 ? 10 : s->D > 8 ? 24 : 400;
    snprintf(lab, sizeof lab, "%s: dx vs fd", name);
    t_check(lab, st ? 1.0 : rot_fix_fd_err(&f, f.x, f.dx, f.nx, 1e-3, cap), 1e-4);
    size_t nf = (size_t)f.pe->rot->nset * f.pe->rot->n_freq;
    if (nf) {
        snprintf(lab, sizeof lab, "%s: dlog_freq vs fd", name);
        t_check(lab, rot_fix_fd_err(&f, f.p, f.dp, nf, 1e-4, cap), 1e-4);
    }
    if (f.np > nf) {
        snprintf(lab, sizeof lab, "%s: dskew vs fd", name);
        t_check(lab, rot_fix_fd_err(&f, f.p + nf, f.dp + nf, f.np - nf, 1e-4, cap), 1e-4);
    }
    if (kind == GRAPE_ROT_GRAPE_M_CTX) {
        float *dphf = calloc(f.nph, sizeof(float));
        for (size_t i = 0; i < f.nph; i++) dphf[i] = (float)f.dph[i];
        snprintf(lab, sizeof lab, "%s: dphase vs fd", name);
        t_check(lab, rot_fix_fd_err(&f, f.ph, dphf, f.nph, 1e-4, cap), 1e-4);
        free(dphf);
    }
    rot_fix_free(&f);
}

int main(void) {
    t_rng rng = t_seed(42);
    const shape shapes[] = {
        {2, 5, 3, 8, 8, 0, 0, 3},     {2, 5, 3, 8, 8, 1, 0, 17},    {1, 7, 5, 16, 12, 0, 1, 2},
        {1, 3, 5, 64, 64, 1, 0, 900}, {1, 3, 6, 128, 32, 0, 0, 5},
    };
    for (int k = 0; k < GRAPE_ROT_COUNT; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            run_case((grape_rot_kind)k, &shapes[i], i % 2 ? GRAPE_KEY : GRAPE_QUERY, &rng);
    return t_finish();
}
