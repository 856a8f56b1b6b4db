// test_rot_laws.c — properties of the float kernels: the exact relative law (logits unchanged when every position,
// the xPos anchor, or the contextual phase shifts by c ∈ {1, 1000, 10^6}), streaming (keys rotated once at arrival
// with T = 1 calls equal the full computation), xPos centering and finiteness at L = 8192, init = RoPE, and the
// grape-m-ctx phase forward/backward.
#include "test_rot_util.h"

#include "core/mathx.h"

// logits (B,H,T,T) in double of rotated q and k (B,T,H,D).
static void logits(double *out, const float *q, const float *k, int B, int T, int H, int D) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                for (int j = 0; j < T; j++) {
                    const float *qt = q + (((size_t)b * T + t) * H + h) * D, *kj = k + (((size_t)b * T + j) * H + h) * D;
                    double s = 0;
                    for (int i = 0; i < D; i++) s += (double)qt[i] * kj[i];
                    out[(((size_t)b * H + h) * T + t) * T + j] = s;
                }
}

typedef struct {
    rot_fix f;
    float *k, *qr, *kr;
    double *L0, *L1;
    size_t nl;
} law_case;

static grape_status rotate_qk(law_case *c, const grape_positions *pos) {
    grape_status st = grape_rot_forward(c->qr, c->f.xf, c->f.pe, pos, GRAPE_QUERY, c->f.B, c->f.T);
    if (!st) st = grape_rot_forward(c->kr, c->k, c->f.pe, pos, GRAPE_KEY, c->f.B, c->f.T);
    return st;
}

static void test_shift_law(grape_rot_kind kind, int interleaved, t_rng *rng) {
    enum { B = 2, T = 9, H = 3, D = 16 };
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    cfg.rot = kind, cfg.rotary_dim = 12, cfg.interleaved = interleaved, cfg.nc_rank = 4;
    law_case c = {0};
    if (!rot_fix_create(&c.f, &cfg, B, T, 0, GRAPE_QUERY, rng)) return;
    c.nl = (size_t)B * H * T * T;
    c.k = calloc(c.f.nx, sizeof(float)), c.qr = calloc(c.f.nx, sizeof(float)), c.kr = calloc(c.f.nx, sizeof(float));
    c.L0 = calloc(c.nl, sizeof(double)), c.L1 = calloc(c.nl, sizeof(double));
    t_fill(c.k, c.f.nx, 1.0, rng);
    grape_positions pos = c.f.pos;
    grape_status st = rotate_qk(&c, &pos);
    logits(c.L0, c.qr, c.kr, B, T, H, D);
    const double shifts[] = {1, 1000, 1e6};
    double *ph = calloc(c.f.nph, sizeof(double));
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < c.f.nph; i++) ph[i] = c.f.ph[i] + shifts[s];
        grape_positions sh = {.pos0 = pos.pos0 + (int64_t)shifts[s], .xpos_anchor = pos.xpos_anchor + shifts[s],
                              .phase = ph};
        if (!st) st = rotate_qk(&c, &sh);
        logits(c.L1, c.qr, c.kr, B, T, H, D);
        char lab[128];
        snprintf(lab, sizeof lab, "%s %s: logits unchanged under shift %.0e", rot_kind_names[kind],
                 interleaved ? "interleaved" : "half-split", shifts[s]);
        t_check(lab, st ? 1.0 : t_rel_err_dd(c.L1, c.L0, c.nl), 1e-4);
    }
    // streaming: key j rotated alone at arrival (B = T = 1 calls at pos0 = j, its own phase), then logits
    size_t tok = (size_t)H * D;
    for (int b = 0; b < B && !st; b++)
        for (int j = 0; j < T && !st; j++) {
            size_t i = (size_t)b * T + (size_t)j;
            grape_positions one = {.pos0 = pos.pos0 + j, .xpos_anchor = pos.xpos_anchor,
                                   .phase = c.f.ph + i * (size_t)c.f.pe->rot->phase_heads};
            st = grape_rot_forward(c.kr + i * tok, c.k + i * tok, c.f.pe, &one, GRAPE_KEY, 1, 1);
        }
    if (!st) st = grape_rot_forward(c.qr, c.f.xf, c.f.pe, &pos, GRAPE_QUERY, B, T);
    logits(c.L1, c.qr, c.kr, B, T, H, D);
    char lab[128];
    snprintf(lab, sizeof lab, "%s %s: streaming keys == full computation", rot_kind_names[kind],
             interleaved ? "interleaved" : "half-split");
    t_check(lab, st ? 1.0 : t_rel_err_dd(c.L1, c.L0, c.nl), 1e-6);
    free(ph), free(c.k), free(c.qr), free(c.kr), free(c.L0), free(c.L1);
    rot_fix_free(&c.f);
}

// Two xPos centerings (floor(L/2) and torchscale's −floor(−L/2)) give identical logits; at L = 8192 the
// centered scales stay finite and below 1/ζ0^8 ≈ 22519 (LEX, arXiv 2212.10554).
static void test_xpos_centering(t_rng *rng) {
    enum { H = 1, D = 64, T = 8192 };
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    cfg.rot = GRAPE_ROT_XPOS;
    rot_fix f;
    if (!rot_fix_create(&f, &cfg, 1, T, 0, GRAPE_QUERY, rng)) return;
    float *k = calloc(f.nx, sizeof(float)), *q2 = calloc(f.nx, sizeof(float)), *k2 = calloc(f.nx, sizeof(float));
    t_fill(k, f.nx, 1.0, rng);
    grape_positions p1 = {.pos0 = 0, .xpos_anchor = T / 2}, p2 = {.pos0 = 0, .xpos_anchor = T / 2 + 1};
    grape_rot_forward(f.yf, f.xf, f.pe, &p1, GRAPE_QUERY, 1, T);
    grape_rot_forward(f.dx, k, f.pe, &p1, GRAPE_KEY, 1, T);
    grape_rot_forward(q2, f.xf, f.pe, &p2, GRAPE_QUERY, 1, T);
    grape_rot_forward(k2, k, f.pe, &p2, GRAPE_KEY, 1, T);
    double e = 0, m = 0;
    int finite = 1;
    const int pairs[][2] = {{8191, 0}, {8191, 8190}, {4096, 100}, {5000, 4999}, {7, 3}};
    for (int p = 0; p < 5; p++) {
        const float *a1 = f.yf + (size_t)pairs[p][0] * D, *b1 = f.dx + (size_t)pairs[p][1] * D;
        const float *a2 = q2 + (size_t)pairs[p][0] * D, *b2 = k2 + (size_t)pairs[p][1] * D;
        double s1 = 0, s2 = 0;
        for (int i = 0; i < D; i++) s1 += (double)a1[i] * b1[i], s2 += (double)a2[i] * b2[i];
        e = fmax(e, fabs(s1 - s2)), m = fmax(m, fabs(s1));
    }
    for (size_t i = 0; i < f.nx; i++) finite &= isfinite(f.yf[i]) && isfinite(f.dx[i]);
    t_check("xpos: centering floor(L/2) vs torchscale -floor(-L/2) give identical logits", e / m, 1e-5);
    t_true("xpos: centered q/k finite at L=8192", finite);
    // newest key n = 8192, anchor 4096, pair 0: scale ζ0^((c − n)/sb) = 1/ζ0^8 = 22519
    float unit[D] = {1.0f}, out[D];
    grape_positions newest = {.pos0 = T, .xpos_anchor = T / 2};
    grape_rot_forward(out, unit, f.pe, &newest, GRAPE_KEY, 1, 1);
    double sc = hypot(out[0], out[D / 2]);
    t_check("xpos: worst centered key scale 1/zeta0^8 = 22519 (LEX §1.5)", fabs(sc - 22519.0) / 22519.0, 1e-4);
    free(k), free(q2), free(k2);
    rot_fix_free(&f);
}

// Far from the anchor (|n − c| = 10^6): a query past the anchor (and a key before it) only shrinks, to 0, never
// NaN (the KV cache re-scales queries against old key blocks that way); a key past the anchor would overflow, so the
// call is refused with a message, while keys within the reach (84·sb/|ln ζ0| ≈ 34k tokens by default) are served.
static void test_xpos_far_from_anchor(void) {
    enum { D = 16, T = 40 };
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 1, D);
    cfg.rot = GRAPE_ROT_XPOS;
    grape_pe *pe;
    grape_pe_create(&pe, &cfg);
    float x[T * D], y[T * D];
    for (int i = 0; i < T * D; i++) x[i] = 1.0f;
    grape_positions far = {.pos0 = 1000000, .xpos_anchor = 0};
    int ok = grape_rot_forward(y, x, pe, &far, GRAPE_QUERY, 1, T) == GRAPE_OK;
    for (int i = 0; i < T * D / 2 && ok; i++) ok = isfinite(y[i]) && fabsf(y[i]) < 1e-30f;
    t_true("xpos: query 10^6 past the anchor underflows to 0, not NaN", ok);
    grape_status st = grape_rot_forward(y, x, pe, &far, GRAPE_KEY, 1, T);
    printf("# %s\n", grape_last_error());
    t_true("xpos: keys 10^6 past the anchor refused (UNSUPPORTED, message names the float range)",
           st == GRAPE_ERR_UNSUPPORTED && strstr(grape_last_error(), "float range"));
    grape_positions near = {.pos0 = 34000 - T, .xpos_anchor = 0};
    ok = grape_rot_forward(y, x, pe, &near, GRAPE_KEY, 1, T) == GRAPE_OK;
    for (int i = 0; i < T * D && ok; i++) ok = isfinite(y[i]);
    t_true("xpos: keys 34k past the anchor (within reach) finite", ok);
    grape_pe_free(pe);
}

// At init every learned rotation equals rope (grape-m, basis B = I; nc with r = R, E = I).
static void test_init_is_rope(grape_rot_kind kind, t_rng *rng) {
    enum { B = 1, T = 11, H = 5, D = 16 };
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    cfg.rot = GRAPE_ROT_ROPE;
    rot_fix f;
    if (!rot_fix_create(&f, &cfg, B, T, 100, GRAPE_QUERY, rng)) return;
    grape_rot_forward(f.yf, f.xf, f.pe, &f.pos, GRAPE_QUERY, B, T);
    cfg.rot = kind, cfg.nc_rank = D;
    grape_pe *pe;
    grape_pe_create(&pe, &cfg);
    float *p = calloc(grape_pe_num_params(pe), sizeof(float));
    grape_pe_init_params(pe, p, 3);
    grape_pe_prepare(pe, p);
    grape_rot_forward(f.dx, f.xf, pe, &f.pos, GRAPE_QUERY, B, T);
    char lab[96];
    snprintf(lab, sizeof lab, "%s at init == rope", rot_kind_names[kind]);
    t_check(lab, t_rel_err_ff(f.dx, f.yf, f.nx), 1e-6);
    free(p);
    grape_pe_free(pe);
    rot_fix_free(&f);
}

// grape-m-ctx phase: Φ = exclusive cumsum of sigmoid(logit/16); backward vs fd of Σ w·Φ.
typedef struct {
    int B, T, hp;
    const double *w;
    double *phi;
} phase_ctx;

static double phase_loss(const double *logit, void *vctx) {
    phase_ctx *c = vctx;
    double s = 0;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->hp; h++) {
            double run = 0;
            for (int t = 0; t < c->T; t++) {
                size_t i = ((size_t)b * c->T + t) * c->hp + h;
                c->phi[i] = run;
                s += c->w[i] * run;
                run += sigmoid_d(logit[i] / 16.0);
            }
        }
    return s;
}

static void test_phase(int per_head, t_rng *rng) {
    enum { B = 2, T = 13, H = 3 };
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, 8);
    cfg.rot = GRAPE_ROT_GRAPE_M_CTX, cfg.per_head = per_head;
    grape_pe *pe;
    grape_pe_create(&pe, &cfg);
    int hp = per_head ? H : 1;
    size_t n = (size_t)B * T * hp;
    float *lf = calloc(n, sizeof(float)), *dl = calloc(n, sizeof(float));
    double *l = calloc(n, sizeof(double)), *w = calloc(n, sizeof(double)), *phi = calloc(n, sizeof(double));
    double *ref = calloc(n, sizeof(double)), *fd = calloc(n, sizeof(double));
    t_fill(lf, n, 20.0, rng);
    t_fill_d(w, n, 1.0, rng);
    for (size_t i = 0; i < n; i++) l[i] = lf[i];
    phase_ctx c = {B, T, hp, w, ref};
    phase_loss(l, &c);
    grape_status st = grape_phase_forward(phi, lf, pe, B, T);
    t_check(per_head ? "phase forward per head" : "phase forward", st ? 1.0 : t_rel_err_dd(phi, ref, n), 1e-14);
    st = grape_phase_backward(dl, w, lf, pe, B, T);
    t_fd_grad(fd, phase_loss, l, n, 1e-3, &c);
    t_check(per_head ? "phase backward (dlogit) vs fd per head" : "phase backward (dlogit) vs fd",
            st ? 1.0 : t_rel_err(dl, fd, n), 1e-5);
    free(lf), free(dl), free(l), free(w), free(phi), free(ref), free(fd);
    grape_pe_free(pe);
}

int main(void) {
    t_rng rng = t_seed(11);
    for (int k = 0; k < GRAPE_ROT_COUNT; k++)
        for (int il = 0; il < 2; il++) test_shift_law((grape_rot_kind)k, il, &rng);
    test_xpos_centering(&rng);
    test_xpos_far_from_anchor();
    test_init_is_rope(GRAPE_ROT_GRAPE_M, &rng);
    test_init_is_rope(GRAPE_ROT_GRAPE_M_BASIS, &rng);
    test_init_is_rope(GRAPE_ROT_GRAPE_M_NC, &rng);
    test_phase(0, &rng);
    test_phase(1, &rng);
    return t_finish();
}
