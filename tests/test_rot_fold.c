// test_rot_fold.c — grape-m-basis fast path: folding Bᵀ into the q/k projection (grape_basis_fold) and rotating
// with cfg.basis_folded = 1 gives the same logits as B R(nθ) Bᵀ applied to unfolded q, k; the fold backward
// (dW, dbasis_skew) and the folded rotation backward (dlog_freq) against finite differences in double.
#include "test_rot_util.h"

enum { H = 3, D = 16, R = 12, C = 10, T = 5 };

// out (T,H,D) = W (H·D × C) applied to each token of x (T, C).
static void project(float *out, const float *W, const float *x) {
    for (int t = 0; t < T; t++)
        for (int r = 0; r < H * D; r++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += (double)W[r * C + c] * x[t * C + c];
            out[t * H * D + r] = (float)s;
        }
}

static double logit_err(const float *q1, const float *k1, const float *q2, const float *k2) {
    double e = 0, m = 0;
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < T; j++) {
                double s1 = 0, s2 = 0;
                for (int i = 0; i < D; i++) {
                    s1 += (double)q1[(t * H + h) * D + i] * k1[(j * H + h) * D + i];
                    s2 += (double)q2[(t * H + h) * D + i] * k2[(j * H + h) * D + i];
                }
                e = fmax(e, fabs(s1 - s2)), m = fmax(m, fabs(s1));
            }
    return e / m;
}

// Double fold reference: loss = Σ G ⊙ blockdiag(B_hᵀ) W over [W | params] packed.
typedef struct {
    const rot_state *r;
    const double *G;
    size_t nw;
} fold_ctx;

static double fold_loss(const double *v, void *vctx) {
    const fold_ctx *c = vctx;
    rot_tables tab;
    rot_tables_alloc(&tab, c->r);
    rot_tables_derive(&tab, c->r, v + c->nw);
    double s = 0;
    for (int h = 0; h < H; h++) {
        const double *B = tab.basis + (c->r->nset > 1 ? h : 0) * R * R;
        for (int i = 0; i < D; i++)
            for (int cc = 0; cc < C; cc++) {
                double f = 0;
                if (i >= R) f = v[(h * D + i) * C + cc];
                else
                    for (int k = 0; k < R; k++) f += B[k * R + i] * v[(h * D + k) * C + cc];
                s += c->G[(h * D + i) * C + cc] * f;
            }
    }
    rot_tables_free(&tab);
    return s;
}

static void run(int per_head, t_rng *rng) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    cfg.rot = GRAPE_ROT_GRAPE_M_BASIS, cfg.rotary_dim = R, cfg.per_head = per_head;
    rot_fix fu, ff;
    if (!rot_fix_create(&fu, &cfg, 1, T, 40, GRAPE_QUERY, rng)) return;
    cfg.basis_folded = 1;
    if (!rot_fix_create(&ff, &cfg, 1, T, 40, GRAPE_QUERY, rng)) return;
    size_t nw = (size_t)H * D * C, np = fu.np;
    memcpy(ff.pf, fu.pf, np * sizeof(float));
    memcpy(ff.p, fu.p, np * sizeof(double));
    grape_pe_prepare(ff.pe, ff.pf);
    float *Wq = malloc(nw * 4), *Wk = malloc(nw * 4), *Fq = malloc(nw * 4), *Fk = malloc(nw * 4), x[T * C];
    float *q = malloc(T * H * D * 4), *k = malloc(T * H * D * 4), *q2 = malloc(T * H * D * 4),
          *k2 = malloc(T * H * D * 4);
    t_fill(Wq, nw, 0.3, rng), t_fill(Wk, nw, 0.3, rng), t_fill(x, T * C, 1.0, rng);
    project(q, Wq, x), project(k, Wk, x);
    grape_rot_forward(q, q, fu.pe, &fu.pos, GRAPE_QUERY, 1, T);
    grape_rot_forward(k, k, fu.pe, &fu.pos, GRAPE_KEY, 1, T);
    grape_status st = grape_basis_fold(Fq, Wq, ff.pe, C);
    if (!st) st = grape_basis_fold(Fk, Wk, ff.pe, C);
    project(q2, Fq, x), project(k2, Fk, x);
    grape_rot_forward(q2, q2, ff.pe, &ff.pos, GRAPE_QUERY, 1, T);
    grape_rot_forward(k2, k2, ff.pe, &ff.pos, GRAPE_KEY, 1, T);
    const char *tag = per_head ? " per-head" : "";
    char lab[128];
    snprintf(lab, sizeof lab, "basis%s: folded W + R(n theta) == B R B^T logits", tag);
    t_check(lab, st ? 1.0 : logit_err(q, k, q2, k2), 1e-5);
    // fold backward vs fd
    double *v = calloc(nw + np, sizeof(double)), *G = calloc(nw, sizeof(double)), *fd = calloc(nw + np, 8);
    float *Gf = malloc(nw * 4), *dW = calloc(nw, 4), *dp = calloc(np, 4);
    t_fill(Gf, nw, 1.0, rng);
    for (size_t i = 0; i < nw; i++) v[i] = Wq[i], G[i] = Gf[i];
    memcpy(v + nw, fu.p, np * sizeof(double));
    st = grape_basis_fold_backward(dW, dp, Gf, Wq, ff.pe, C);
    fold_ctx c = {ff.pe->rot, G, nw};
    t_fd_grad(fd, fold_loss, v, nw + np, 1e-4, &c);
    size_t nf = (size_t)ff.pe->rot->nset * ff.pe->rot->n_freq;
    snprintf(lab, sizeof lab, "basis%s: fold backward dW vs fd", tag);
    t_check(lab, st ? 1.0 : t_rel_err(dW, fd, nw), 1e-4);
    snprintf(lab, sizeof lab, "basis%s: fold backward dbasis_skew vs fd", tag);
    t_check(lab, st ? 1.0 : t_rel_err(dp + nf, fd + nw + nf, np - nf), 1e-4);
    // folded rotation: only log_freq gets a gradient, and it matches fd of the folded reference
    st = grape_rot_backward(ff.dx, ff.dp, NULL, ff.wf, ff.xf, ff.pe, &ff.pos, GRAPE_QUERY, 1, T);
    snprintf(lab, sizeof lab, "basis%s folded: dlog_freq vs fd", tag);
    t_check(lab, st ? 1.0 : rot_fix_fd_err(&ff, ff.p, ff.dp, nf, 1e-4, 64), 1e-4);
    double sk = 0;
    for (size_t i = nf; i < np; i++) sk = fmax(sk, fabs(ff.dp[i]));
    snprintf(lab, sizeof lab, "basis%s folded: rotation leaves dbasis_skew to the fold", tag);
    t_check(lab, sk, 0);
    free(v), free(G), free(fd), free(Gf), free(dW), free(dp);
    free(Wq), free(Wk), free(Fq), free(Fk), free(q), free(k), free(q2), free(k2);
    rot_fix_free(&fu), rot_fix_free(&ff);
}

int main(void) {
    t_rng rng = t_seed(3);
    run(0, &rng);
    run(1, &rng);
    return t_finish();
}
