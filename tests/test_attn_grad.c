// test_attn_grad.c — the reference attention's own backward against 4-point finite differences in double, for
// q, k, v and every bias factor of every kind, with and without BCA (tolerance 1e-7 normwise relative; the
// stencil's truncation at h = 1e-4 is ~1e-10). Then FoX's row identity sum_j dS(t,j) = 0: exact in the reference
// (<= 1e-12 of the largest dcum), and the fast kernel's query-side dcum (its dcum minus the reference's key-side
// part) is below 1e-5 of the largest dcum.
#include "test_attn_fixture.h"

#define FD_TOL 1e-7
#define FD_STEP 1e-4

typedef struct {
    const fx_problem *p;
    int window;
    double *out, *lse;
} fd_ctx;

// L = sum(out * dout): its gradient is what attn_backward_ref computes for the upstream gradient dout.
static double loss(const double *x, void *vctx) {
    (void)x; // x aliases one of the arrays the problem points to
    fd_ctx *c = vctx;
    const fx_problem *p = c->p;
    attn_forward_ref(c->out, c->lse, p->qd, p->kd, p->vd, fx_bias_ref(p), 1.0 / sqrt((double)p->D), c->window, p->B,
                     p->T, p->H, p->D);
    double L = 0;
    for (size_t i = 0; i < p->n; i++) L += c->out[i] * p->doutd[i];
    return L;
}

static void fd_case(grape_bias_kind kind, int window) {
    fx_problem p;
    fx_make(&p, kind, 2, 11, 2, 4, 1.0, 100 + kind + 7 * window);
    fd_ctx c = {&p, window, malloc(p.n * 8), malloc((size_t)p.B * p.H * p.T * 8)};
    fx_grads g;
    fx_grads_make(&g, &p);
    attn_backward_ref(g.dqd, g.dkd, g.dvd, &g.gd, p.doutd, p.qd, p.kd, p.vd, fx_bias_ref(&p), 1.0 / sqrt((double)p.D),
                      window, p.B, p.T, p.H, p.D);
    struct { const char *what; double *x, *grad; size_t n; } vars[] = {
        {"q", p.qd, g.dqd, p.n},           {"k", p.kd, g.dkd, p.n},           {"v", p.vd, g.dvd, p.n},
        {"slope", p.sloped, g.dsloped, (size_t)p.H}, {"gate_q", p.gqd, g.dgqd, p.nf}, {"gate_k", p.gkd, g.dgkd, p.nf},
        {"cum", p.cum, g.dcumd, p.nf},      {"probe_q", p.pqd, g.dpqd, p.np},   {"probe_k", p.pkd, g.dpkd, p.np},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (!vars[i].x || !vars[i].grad) continue;
        if (!strcmp(vars[i].what, "slope") && !bias_kind_has(bias_kind_of(kind), BF_SLOPE)) continue; // e.g. FoX
        double *fd = malloc(vars[i].n * 8);
        t_fd_grad(fd, loss, vars[i].x, vars[i].n, FD_STEP, &c);
        char name[96];
        snprintf(name, sizeof name, "ref %s W%d d%s vs finite differences", fx_kind_name(kind), window, vars[i].what);
        t_check(name, t_rel_err_dd(vars[i].grad, fd, vars[i].n), FD_TOL);
        free(fd);
    }
    fx_grads_free(&g);
    free(c.out), free(c.lse);
    fx_free(&p);
}

static double max_abs_d(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

// FoX: dcum(t) = sum_j dS(t,j) - sum_i dS(i,t); the first (query-side) term vanishes in exact arithmetic.
static void fox_row_sums(int T) {
    fx_problem p;
    fx_make(&p, GRAPE_BIAS_FOX, 1, T, 2, 64, 1.0, 77);
    size_t nl = (size_t)p.H * T;
    fx_grads g;
    fx_grads_make(&g, &p);
    g.gd.row_sum = calloc(nl, 8);
    double scale = 1.0 / sqrt(64.0);
    attn_backward_ref(g.dqd, g.dkd, g.dvd, &g.gd, p.doutd, p.qd, p.kd, p.vd, &p.fd, scale, 0, 1, T, p.H, p.D);
    double big = max_abs_d(g.dcumd, p.nf);
    char name[96];
    snprintf(name, sizeof name, "fox T%d reference max|sum_j dS(t,j)| / max|dcum|", T);
    t_check(name, max_abs_d(g.gd.row_sum, nl) / big, 1e-12);

    float *out = malloc(p.n * 4), *lse = malloc(nl * 4);
    grape_attn_opts opts = {0};
    grape_attn_forward(out, lse, p.q, p.k, p.v, &p.f, &opts, 1, T, p.H, p.D);
    grape_attn_backward(g.dq, g.dk, g.dv, &g.g, p.dout, out, lse, p.q, p.k, p.v, &p.f, &opts, 1, T, p.H, p.D);
    double worst = 0; // fast dcum minus the reference's key-side part = the fast kernel's query-side sum
    for (int t = 0; t < T; t++)
        for (int h = 0; h < p.H; h++) {
            size_t f = (size_t)t * p.H + h;
            double q_side = g.dcum[f] - (g.dcumd[f] - g.gd.row_sum[(size_t)h * T + t]);
            worst = fabs(q_side) > worst ? fabs(q_side) : worst;
        }
    snprintf(name, sizeof name, "fox T%d fast kernel max|query-side dcum| / max|dcum|", T);
    t_check(name, worst / big, 1e-5);
    free(g.gd.row_sum);
    fx_grads_free(&g);
    free(out), free(lse);
    fx_free(&p);
}

int main(void) {
    for (int kind = 0; kind < GRAPE_BIAS_COUNT; kind++) {
        fd_case((grape_bias_kind)kind, 0);
        fd_case((grape_bias_kind)kind, 6); // BCA: h = 3, T = 11 spans four blocks
    }
    fox_row_sums(300);
    return t_finish();
}
