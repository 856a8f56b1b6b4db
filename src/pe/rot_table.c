// rot_table.c — the angles of one rotation call: each token's angle multiplier (position n or contextual phase Φ),
// its per-pair scale (xPos ζ^e, YaRN mscale), and the call's cos/sin table, shared across batch and heads where the
// angles are: (nb, T, nh, npair) with nb = B only for contextual phases and nh = H only for per-head frequencies or
// phases. The rotation's forward and backward (rotation.c) read it; nothing here applies a rotation.
#include <math.h>
#include <stdint.h>

#include "core/mathx.h"
#include "core/mem.h"
#include "pe/pe_internal.h"
#include "pe/rot_internal.h"

// ---------------------------------------------------------------------------------------------------------
// Per-token angle sources

double rot_token_mult(const rot_state *r, const grape_positions *pos, int b, int t, int h, int T) {
    if (!r->kd->phase) return (double)(pos->pos0 + t);
    size_t i = ((size_t)b * (size_t)T + (size_t)t) * (size_t)r->phase_heads + (r->phase_heads > 1 ? h : 0);
    return pos->phase[i];
}

double rot_pair_scale(const rot_state *r, const grape_positions *pos, double n, grape_side side, int p) {
    if (!r->kd->decay) return r->mscale;
    return r->mscale * exp(xpos_exponent(&r->cfg, n, pos->xpos_anchor, side) * r->ln_zeta[p]);
}

void rot_xpos_query_ratio(float *out, const grape_pe *pe, double delta) {
    const rot_state *r = pe->rot;
    for (int d = 0; d < r->D; d++) out[d] = 1.0f;
    for (int p = 0; r->kind == GRAPE_ROT_XPOS && p < r->npair; p++) {
        int i0, i1;
        rot_pair_index(p, r->npair, r->cfg.interleaved, &i0, &i1);
        out[i0] = out[i1] = (float)exp(xpos_exponent(&r->cfg, delta, 0.0, GRAPE_QUERY) * r->ln_zeta[p]);
    }
}

// ---------------------------------------------------------------------------------------------------------
// The table of one call

// Contextual phases are arbitrary reals: every row is evaluated at its own phase.
static void table_fill_phase(rot_table *tb, const rot_state *r, const grape_positions *pos, int nb, int T, int nh) {
    size_t np = (size_t)r->npair;
    double theta_max = 0;
    for (size_t p = 0; p < np; p++) theta_max = fmax(theta_max, r->tab.theta[p]);
#pragma omp parallel for schedule(static) if ((int64_t)nb * T >= ROT_PAR_MIN_TOKENS)
    for (int64_t bt = 0; bt < (int64_t)nb * T; bt++) {
        int b = (int)(bt / T), t = (int)(bt % T);
        for (int h = 0; h < nh; h++) {
            size_t off = (size_t)bt * tb->st + (size_t)h * np;
            rot_sincos_row(tb->cs + off, tb->sn + off, rot_token_mult(r, pos, b, t, h, T), r->tab.theta,
                           theta_max, r->mscale, np);
        }
    }
}

// Integer positions: exact range-reduced angle (and xPos scale) every TABLE_RESYNC positions, then the rotation
// recurrence (c, s) ← (c cδ − s sδ, s cδ + c sδ) and g ← g·gδ in double in between (error ~TABLE_RESYNC·1e-16,
// far below float), so a call costs a few flops per entry instead of a sin, a cos and an exp.
#define TABLE_RESYNC 32

// Ratio of the per-pair scale between positions n + 1 and n: ζ^(±1/sb) for xPos, 1 otherwise (a ratio of two
// scales would be 0/0 where ζ^e underflows far from the anchor).
static double pair_scale_step(const rot_state *r, grape_side side, int p) {
    if (!r->kd->decay) return 1.0;
    return exp(xpos_exponent(&r->cfg, 1.0, 0.0, side) * r->ln_zeta[p]);
}

static void table_fill_positions(rot_table *tb, const rot_state *r, const grape_positions *pos, grape_side side,
                                 int T, int nh) {
    size_t np = (size_t)r->npair;
    int64_t nblk = ((int64_t)T + TABLE_RESYNC - 1) / TABLE_RESYNC;
#pragma omp parallel for schedule(static) if (T >= ROT_PAR_MIN_TOKENS)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int t0 = (int)(blk * TABLE_RESYNC), t1 = t0 + TABLE_RESYNC < T ? t0 + TABLE_RESYNC : T;
        double n0 = (double)(pos->pos0 + t0);
        for (int h = 0; h < nh; h++)
            for (size_t p = 0; p < np; p++) {
                double theta = r->tab.theta[(r->nset > 1 ? (size_t)h * np : 0) + p], s, c, sd, cd;
                double g = rot_pair_scale(r, pos, n0, side, (int)p);
                double gd = pair_scale_step(r, side, (int)p);
                angle_sincos(n0, theta, &s, &c);
                angle_sincos(1.0, theta, &sd, &cd);
                for (int t = t0; t < t1; t++) {
                    size_t off = (size_t)t * tb->st + (size_t)h * np + p;
                    tb->cs[off] = (float)(g * c);
                    tb->sn[off] = (float)(g * s);
                    double c2 = c * cd - s * sd;
                    s = s * cd + c * sd, c = c2, g *= gd;
                }
            }
    }
}

// Strides of the call's table and its slices in the workspace (plan or hand out).
void rot_table_plan(rot_table *tb, grape_arena *a, int *ov, const rot_state *r, int B, int T) {
    int nb = r->kd->phase ? B : 1;
    int nh = (r->nset > 1 || r->phase_heads > 1) ? r->H : 1;
    size_t np = (size_t)r->npair, n;
    if (!size_mul(&n, (size_t)nb * (size_t)T, (size_t)nh * np) || !size_mul(&n, n, sizeof(float))) *ov = 1;
    tb->sh = np;
    tb->st = (size_t)nh * np;
    tb->sb = (size_t)T * tb->st;
    tb->cs = arena_take(a, n);
    tb->sn = arena_take(a, n);
    tb->head_varies = nh > 1;
}

void rot_table_fill(rot_table *tb, const rot_state *r, const grape_positions *pos, grape_side side, int B, int T) {
    int nh = tb->head_varies ? r->H : 1;
    if (r->kd->phase) table_fill_phase(tb, r, pos, B, T, nh);
    else table_fill_positions(tb, r, pos, side, T, nh);
}
