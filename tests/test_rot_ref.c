// test_rot_ref.c — the reference lift as mathematics (double): Rodrigues = matrix exponential, canonical MS-GRAPE
// = RoPE in the official sign and both layouts, the one-parameter-group laws G(n+m) = G(n)G(m) and
// G(−n) = G(n)ᵀ for every rotation and for a general non-commuting generator, orthogonality of B and E,
// and the Cayley backward against finite differences.
#include "test_rot_util.h"

#include "ref/dmat.h"
#include "pe/rot_internal.h"

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static void transpose_d(double *T, const double *A, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) T[j * n + i] = A[i * n + j];
}

static void identity_d(double *G, int n) {
    memset(G, 0, (size_t)n * n * sizeof(double));
    for (int i = 0; i < n; i++) G[i * n + i] = 1.0;
}

// Rodrigues (rank-2 update) = expm of n·L(a, b), for well-separated and nearly parallel a, b.
static void test_rodrigues_vs_expm(t_rng *rng) {
    enum { d = 9 };
    double a[d], b[d], L[d * d], E[d * d], G[d * d];
    const double eps[] = {1.0, 1e-3, 1e-5, 1e-9};
    for (int k = 0; k < 4; k++) {
        t_fill_d(a, d, 1.0, rng);
        t_fill_d(b, d, 1.0, rng);
        for (int i = 0; i < d; i++) b[i] = a[i] + eps[k] * b[i]; // s = |a||b| sin∠ ≈ eps
        double t = 2.7;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) L[i * d + j] = t * (a[i] * b[j] - b[i] * a[j]);
        lift_expm(E, L, d);
        identity_d(G, d);
        lift_rodrigues_right(G, a, b, t, d);
        char lab[96];
        snprintf(lab, sizeof lab, "Rodrigues == expm(tL), separation %.0e", eps[k]);
        t_check(lab, max_abs_diff(G, E, d * d), 1e-12);
    }
}

// lift of rope (canonical coordinate planes) equals the explicit RoPE: the official sign on half-split pairs,
// torchscale / GPT-J / llama.cpp NORMAL's y0 = x0 cos − x1 sin, y1 = x0 sin + x1 cos on interleaved pairs; and
// grape_rot_forward's float kernel equals the same explicit formula.
static void test_canonical_is_rope(int interleaved) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 1, 12);
    cfg.rot = GRAPE_ROT_ROPE, cfg.rotary_dim = 10, cfg.interleaved = interleaved;
    grape_pe *pe;
    grape_pe_create(&pe, &cfg);
    const rot_state *r = pe->rot;
    double G[144], E[144], scale[5] = {1, 1, 1, 1, 1}, n = 37.0;
    lift_rot_matrix(G, r, &r->tab, 0, n, scale);
    identity_d(E, 12);
    for (int p = 0; p < 5; p++) {
        int i0 = interleaved ? 2 * p : p, i1 = interleaved ? 2 * p + 1 : p + 5;
        double phi = n * pow(10000.0, -2.0 * p / 10), c = cos(phi), s = sin(phi);
        double sg = interleaved ? -1.0 : 1.0;        // half-split: y_a = a cos + b sin, y_b = −a sin + b cos
        E[i0 * 12 + i0] = c, E[i0 * 12 + i1] = sg * s; // interleaved: y_a = a cos − b sin, y_b = a sin + b cos
        E[i1 * 12 + i0] = -sg * s, E[i1 * 12 + i1] = c;
    }
    float x[12], y[12];
    double want[12], werr = 0, wmax = 0;
    for (int i = 0; i < 12; i++) x[i] = (float)(0.3 * i - 1.1);
    grape_positions at = {.pos0 = 37};
    grape_rot_forward(y, x, pe, &at, GRAPE_QUERY, 1, 1);
    for (int i = 0; i < 12; i++) {
        want[i] = 0;
        for (int j = 0; j < 12; j++) want[i] += E[i * 12 + j] * x[j];
        werr = fmax(werr, fabs(y[i] - want[i])), wmax = fmax(wmax, fabs(want[i]));
    }
    t_check(interleaved ? "rope kernel == y0 = x0 cos - x1 sin, y1 = x0 sin + x1 cos (interleaved, torchscale sign)"
                        : "rope kernel == y_a = a cos + b sin, y_b = -a sin + b cos (half-split, official sign)",
            werr / wmax, 1e-6);
    t_check(interleaved ? "canonical MS-GRAPE == RoPE (interleaved)" : "canonical MS-GRAPE == RoPE (half-split)",
            max_abs_diff(G, E, 144), 1e-13);
    grape_pe_free(pe);
}

// G(n+m) = G(n) G(m) and G(−n) = G(n)ᵀ for each rotation with random learned parameters.
static void test_group_laws(grape_rot_kind kind, int per_head, t_rng *rng) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 2, 10);
    cfg.rot = kind, cfg.rotary_dim = 8, cfg.per_head = per_head, cfg.nc_rank = 4;
    rot_fix f;
    if (!rot_fix_create(&f, &cfg, 1, 1, 0, GRAPE_QUERY, rng)) return;
    f.pos.xpos_anchor = 0; // ζ^(n/sb)R(nθ) is a one-parameter group (in GL) only for anchor 0
    const rot_state *r = f.pe->rot;
    rot_tables tab;
    rot_tables_alloc(&tab, r);
    if (r->n_params) rot_tables_derive(&tab, r, f.p);
    else memcpy(tab.theta, r->theta0, (size_t)r->npair * sizeof(double));
    enum { D = 10 };
    double Gn[D * D], Gm[D * D], Gnm[D * D], P[D * D], Gt[D * D], sn[8], sm[8], snm[8];
    const double n = 5.0, m = -12.25;
    double err_mul = 0, err_inv = 0;
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < r->npair; k++) {
            sn[k] = rot_pair_scale(r, &f.pos, n, GRAPE_QUERY, k);
            sm[k] = rot_pair_scale(r, &f.pos, m, GRAPE_QUERY, k);
            snm[k] = rot_pair_scale(r, &f.pos, n + m, GRAPE_QUERY, k);
        }
        lift_rot_matrix(Gn, r, &tab, h, n, sn);
        lift_rot_matrix(Gm, r, &tab, h, m, sm);
        lift_rot_matrix(Gnm, r, &tab, h, n + m, snm);
        dmat_mul(P, Gn, Gm, D);
        err_mul = fmax(err_mul, max_abs_diff(P, Gnm, D * D));
        if (kind == GRAPE_ROT_XPOS) continue; // a scaling, not orthogonal: G(−n) = G(n)^-1 ≠ G(n)ᵀ
        for (int k = 0; k < r->npair; k++) sm[k] = rot_pair_scale(r, &f.pos, -n, GRAPE_QUERY, k);
        lift_rot_matrix(Gm, r, &tab, h, -n, sm);
        transpose_d(Gt, Gn, D);
        err_inv = fmax(err_inv, max_abs_diff(Gm, Gt, D * D));
    }
    char lab[96];
    snprintf(lab, sizeof lab, "%s%s: G(n+m) == G(n)G(m)", rot_kind_names[kind], per_head ? " per-head" : "");
    t_check(lab, err_mul, 1e-12);
    if (kind != GRAPE_ROT_XPOS) {
        snprintf(lab, sizeof lab, "%s%s: G(-n) == G(n)^T", rot_kind_names[kind], per_head ? " per-head" : "");
        t_check(lab, err_inv, 1e-12);
    }
    rot_tables_free(&tab);
    rot_fix_free(&f);
}

// A general non-commuting generator L = Σ_j ω_j L(a_j, b_j) (3 random planes): exp is still a one-parameter group.
static void test_noncommuting_generator(t_rng *rng) {
    enum { d = 8 };
    double L[d * d] = {0}, a[d], b[d], nL[d * d], En[d * d], Em[d * d], Enm[d * d], P[d * d], Et[d * d];
    for (int j = 0; j < 3; j++) {
        t_fill_d(a, d, 1.0, rng);
        t_fill_d(b, d, 1.0, rng);
        double w = 0.3 * (j + 1);
        for (int i = 0; i < d; i++)
            for (int k = 0; k < d; k++) L[i * d + k] += w * (a[i] * b[k] - b[i] * a[k]);
    }
    double n = 3.0, m = 4.5;
    for (int i = 0; i < d * d; i++) nL[i] = n * L[i];
    lift_expm(En, nL, d);
    for (int i = 0; i < d * d; i++) nL[i] = m * L[i];
    lift_expm(Em, nL, d);
    for (int i = 0; i < d * d; i++) nL[i] = (n + m) * L[i];
    lift_expm(Enm, nL, d);
    dmat_mul(P, En, Em, d);
    t_check("non-commuting generator: G(n+m) == G(n)G(m)", max_abs_diff(P, Enm, d * d), 1e-11);
    for (int i = 0; i < d * d; i++) nL[i] = -n * L[i];
    lift_expm(Em, nL, d);
    transpose_d(Et, En, d);
    t_check("non-commuting generator: G(-n) == G(n)^T", max_abs_diff(Em, Et, d * d), 1e-11);
    dmat_mul(P, Et, En, d);
    identity_d(Em, d);
    t_check("non-commuting generator: G(n)^T G(n) == I", max_abs_diff(P, Em, d * d), 1e-11);
}

// BᵀB = I (grape-m-basis) and EᵀE = I (grape-m-nc) for random skew parameters.
static void test_orthogonality(grape_rot_kind kind, t_rng *rng) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 1, 24);
    cfg.rot = kind, cfg.nc_rank = 6;
    rot_fix f;
    if (!rot_fix_create(&f, &cfg, 1, 1, 0, GRAPE_QUERY, rng)) return;
    for (size_t i = f.pe->rot->n_freq; i < f.np; i++) f.p[i] = 2.0 * t_normal(rng); // far from B = I
    rot_tables tab;
    rot_tables_alloc(&tab, f.pe->rot);
    rot_tables_derive(&tab, f.pe->rot, f.p);
    int R = 24, F = f.pe->rot->frame;
    double err = 0, off = 0;
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) {
            double s = 0;
            for (int k = 0; k < R; k++) s += tab.basis[k * R + i] * tab.basis[k * R + j];
            err = fmax(err, fabs(s - (i == j)));
        }
    for (int i = 0; i < R * R; i++) off = fmax(off, fabs(tab.basis[i] - (i % (R + 1) == 0)));
    char lab[96];
    snprintf(lab, sizeof lab, "%s: frame columns orthonormal (%s^T %s = I), frame far from I (%.2f)",
             rot_kind_names[kind], kind == GRAPE_ROT_GRAPE_M_NC ? "E" : "B", kind == GRAPE_ROT_GRAPE_M_NC ? "E" : "B",
             off);
    t_check(lab, off > 0.5 ? err : 1.0, 1e-12);
    rot_tables_free(&tab);
    rot_fix_free(&f);
}

// Cayley backward vs finite differences of Σ W⊙Cayley(A(S)) over the packed strictly-lower S.
typedef struct {
    int n;
    const double *W;
} cay_ctx;

static double cayley_loss(const double *S, void *vctx) {
    const cay_ctx *c = vctx;
    int n = c->n;
    double A[64], B[64], M[64], s = 0;
    basis_skew_to_A(A, S, n);
    cayley_forward(B, M, A, n);
    for (int i = 0; i < n * n; i++) s += c->W[i] * B[i];
    return s;
}

static void test_cayley_backward(t_rng *rng) {
    enum { n = 7, ns = n * (n - 1) / 2 };
    double S[ns], W[n * n], A[n * n], B[n * n], M[n * n], dA[n * n] = {0}, work[n * n], fd[ns], an[ns];
    t_fill_d(S, ns, 0.7, rng);
    t_fill_d(W, n * n, 1.0, rng);
    basis_skew_to_A(A, S, n);
    cayley_forward(B, M, A, n);
    cayley_backward(dA, W, M, n, work);
    for (int i = 1, k = 0; i < n; i++)
        for (int j = 0; j < i; j++, k++) an[k] = dA[i * n + j] - dA[j * n + i];
    cay_ctx c = {n, W};
    t_fd_grad(fd, cayley_loss, S, ns, 1e-4, &c);
    t_check("Cayley backward vs fd (double)", t_rel_err_dd(an, fd, ns), 1e-9);
}

int main(void) {
    t_rng rng = t_seed(7);
    test_rodrigues_vs_expm(&rng);
    test_canonical_is_rope(0);
    test_canonical_is_rope(1);
    for (int k = 1; k < GRAPE_ROT_COUNT; k++) test_group_laws((grape_rot_kind)k, 0, &rng);
    test_group_laws(GRAPE_ROT_GRAPE_M_BASIS, 1, &rng);
    test_group_laws(GRAPE_ROT_GRAPE_M_NC, 1, &rng);
    test_noncommuting_generator(&rng);
    test_orthogonality(GRAPE_ROT_GRAPE_M_BASIS, &rng);
    test_orthogonality(GRAPE_ROT_GRAPE_M_NC, &rng);
    test_cayley_backward(&rng);
    return t_finish();
}
