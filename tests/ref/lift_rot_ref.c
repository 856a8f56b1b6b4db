// lift_rot_ref.c — reference lift of the multiplicative action (GRAPE, arXiv 2512.07805 §2–3): G(n) as an explicit
// matrix, the product of the Rodrigues exponentials of its rank-2 generators n·θ_i·L(F e_i0, F e_i1), in double.
// With the official sign, L(e_i0, e_i1) x = e_i0 x_i1 − e_i1 x_i0, so exp(φL) gives y_i0 = x_i0 cos φ + x_i1 sin φ,
// y_i1 = −x_i0 sin φ + x_i1 cos φ: canonical MS-GRAPE is RoPE (tests/test_rot_ref.c).
#include <math.h>
#include <string.h>

#include "dmat.h"
#include "core/error.h"
#include "core/mem.h"
#include "lift_rot_ref.h"
#include "pe/pe_internal.h"
#include "rodrigues.h"

// exp(tL) = I + t S1 L + t² S2 L² with w = t²(αβ − γ²); G·exp(tL) = G + (Ga) pᵀ + (Gb) qᵀ where
// p = t S1 b + t² S2 (γ b − β a), q = −t S1 a + t² S2 (γ a − α b). Rows with Ga = Gb = 0 are unchanged.
void lift_rodrigues_right(double *G, const double *a, const double *b, double t, int d) {
    size_t n = (size_t)d;
    double al = 0, be = 0, ga = 0, c[4];
    for (size_t i = 0; i < n; i++) {
        al += a[i] * a[i];
        be += b[i] * b[i];
        ga += a[i] * b[i];
    }
    rodrigues_coeffs(t * t * fmax(0.0, al * be - ga * ga), c);
    double f1 = t * c[0], f2 = t * t * c[1];
    for (size_t i = 0; i < n; i++) {
        double Ga = 0, Gb = 0;
        for (size_t k = 0; k < n; k++) {
            Ga += G[i * n + k] * a[k];
            Gb += G[i * n + k] * b[k];
        }
        if (Ga == 0.0 && Gb == 0.0) continue;
        double cb = Ga * (f1 + f2 * ga) - Gb * f2 * al, ca = Gb * (f2 * ga - f1) - Ga * f2 * be;
        for (size_t j = 0; j < n; j++) G[i * n + j] += cb * b[j] + ca * a[j];
    }
}

grape_status lift_expm(double *G, const double *L, int d) {
    size_t n = (size_t)d;
    double norm = 0;
    for (size_t i = 0; i < n * n; i++) norm = fmax(norm, fabs(L[i]));
    int sq = norm * d > 0.5 ? (int)ceil(log2(norm * d / 0.5)) : 0;
    double scale = ldexp(1.0, -sq);
    double *term = mem_alloc(2 * n * n * sizeof(double));
    if (!term) return GRAPE_ERR_NOMEM;
    double *tmp = term + n * n;
    memset(G, 0, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++) G[i * n + i] = term[i * n + i] = 1.0;
    for (int k = 1; k <= 24; k++) { // ‖L/2^sq‖ ≤ 1/2: 24 terms reach double precision
        dmat_mul(tmp, term, L, n);
        for (size_t i = 0; i < n * n; i++) G[i] += (term[i] = tmp[i] * scale / k);
    }
    for (int s = 0; s < sq; s++) {
        dmat_mul(tmp, G, G, n);
        memcpy(G, tmp, n * n * sizeof(double));
    }
    mem_free(term);
    return GRAPE_OK;
}

// Column c of the head's frame F (D-vector): B or E columns on the rotary dims, e_c for coordinate planes.
static void frame_column(double *f, const rot_state *r, const rot_tables *tab, int set, int c) {
    size_t R = (size_t)r->R;
    memset(f, 0, (size_t)r->D * sizeof(double));
    int framed = r->kind == GRAPE_ROT_GRAPE_M_NC || (r->kind == GRAPE_ROT_GRAPE_M_BASIS && !r->cfg.basis_folded);
    if (!framed) {
        f[c] = 1.0;
        return;
    }
    const double *Bs = tab->basis + (size_t)set * R * R;
    for (size_t i = 0; i < R; i++) f[i] = Bs[i * R + (size_t)c];
}

void lift_rot_matrix(double *G, const rot_state *r, const rot_tables *tab, int h, double mult,
                     const double *pair_scale) {
    size_t D = (size_t)r->D;
    int set = r->nset > 1 ? h : 0;
    double p[4096], q[4096]; // D <= GRAPE_MAX_HEAD_DIM
    memset(G, 0, D * D * sizeof(double));
    for (size_t i = 0; i < D; i++) G[i * D + i] = 1.0;
    for (int k = 0; k < r->npair; k++) {
        int i0, i1;
        rot_pair_index(k, r->npair, r->cfg.interleaved, &i0, &i1);
        frame_column(p, r, tab, set, i0);
        frame_column(q, r, tab, set, i1);
        // interleaved pairs turn the other way (torchscale / GPT-J / llama.cpp NORMAL sign): angle negated
        double sg = r->cfg.interleaved ? -1.0 : 1.0;
        lift_rodrigues_right(G, p, q, sg * mult * tab->theta[(size_t)set * r->npair + k], r->D);
        // scale along the plane: G ← G (I + (s − 1)(p pᵀ + q qᵀ))
        double s1 = pair_scale[k] - 1.0;
        for (size_t i = 0; i < D && s1 != 0.0; i++) {
            double Gp = 0, Gq = 0;
            for (size_t j = 0; j < D; j++) {
                Gp += G[i * D + j] * p[j];
                Gq += G[i * D + j] * q[j];
            }
            for (size_t j = 0; j < D; j++) G[i * D + j] += s1 * (Gp * p[j] + Gq * q[j]);
        }
    }
}

grape_status lift_rot_forward_ref(double *y, const double *x, const grape_pe *pe, const double *params,
                                  const grape_positions *pos, grape_side side, int B, int T) {
    const rot_state *r = pe->rot;
    size_t D = (size_t)r->D, H = (size_t)r->H;
    if (r->kind == GRAPE_ROT_NONE) {
        memmove(y, x, (size_t)B * (size_t)T * H * D * sizeof(double));
        return GRAPE_OK;
    }
    rot_tables tab;
    grape_status st = rot_tables_alloc(&tab, r);
    if (st) return st;
    if (r->n_params) st = rot_tables_derive(&tab, r, params);
    else memcpy(tab.theta, r->theta0, (size_t)r->npair * sizeof(double));
    double *G = mem_alloc((D * D + (size_t)r->npair) * sizeof(double));
    if (!G || st) {
        mem_free(G);
        rot_tables_free(&tab);
        return st ? st : GRAPE_ERR_NOMEM;
    }
    double *scale = G + D * D, last_mult = NAN;
    int last_set = -1, last_t = -1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < (int)H; h++) {
                double mult = rot_token_mult(r, pos, b, t, h, T);
                int set = r->nset > 1 ? h : 0;
                if (mult != last_mult || set != last_set || t != last_t) { // G is shared by heads of one set
                    for (int k = 0; k < r->npair; k++)
                        scale[k] = rot_pair_scale(r, pos, (double)(pos->pos0 + t), side, k);
                    lift_rot_matrix(G, r, &tab, h, mult, scale);
                    last_mult = mult, last_set = set, last_t = t;
                }
                size_t off = (((size_t)b * (size_t)T + (size_t)t) * H + (size_t)h) * D;
                for (size_t i = 0; i < D; i++) {
                    double s = 0;
                    for (size_t j = 0; j < D; j++) s += G[i * D + j] * x[off + j];
                    y[off + i] = s;
                }
            }
    mem_free(G);
    rot_tables_free(&tab);
    return GRAPE_OK;
}
