// test_rot_config.c — rotation configuration: clear errors for impossible configs, parameter tensors (names,
// shapes, offsets, weight decay), RoPE context extension against llama.cpp (YaRN corr dims, ext_factor 0 = PI,
// factor 1 = RoPE, NTK base, mscale), and the xPos ζ table.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grape.h"
#include "pe/pe_internal.h"
#include "pe/rot_internal.h"
#include "util.h"

static void expect_error(const char *name, void (*edit)(grape_pe_config *)) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 4, 64);
    cfg.rot = GRAPE_ROT_ROPE;
    edit(&cfg);
    grape_pe *pe = NULL;
    grape_status st = grape_pe_create(&pe, &cfg);
    char lab[128];
    snprintf(lab, sizeof lab, "refuses %s (\"%s\")", name, grape_last_error());
    t_true(lab, st == GRAPE_ERR_ARG && pe == NULL && strlen(grape_last_error()) > 0);
}

static void odd_rotary(grape_pe_config *c) { c->rotary_dim = 33; }
static void big_rotary(grape_pe_config *c) { c->rotary_dim = 66; }
static void nc_odd(grape_pe_config *c) { c->rot = GRAPE_ROT_GRAPE_M_NC, c->nc_rank = 5; }
static void nc_big(grape_pe_config *c) { c->rot = GRAPE_ROT_GRAPE_M_NC, c->rotary_dim = 16, c->nc_rank = 18; }
static void base_nan(grape_pe_config *c) { c->rope_base = NAN; }
static void base_one(grape_pe_config *c) { c->rope_base = 1.0; }
static void factor_small(grape_pe_config *c) { c->scaling = GRAPE_SCALING_LINEAR, c->scaling_factor = 0.5; }
static void yarn_no_ctx(grape_pe_config *c) { c->scaling = GRAPE_SCALING_YARN, c->scaling_factor = 4; }
static void xpos_bad(grape_pe_config *c) { c->rot = GRAPE_ROT_XPOS, c->xpos_scale_base = 0; }
static void lfs_bad(grape_pe_config *c) { c->rot = GRAPE_ROT_GRAPE_M, c->log_freq_scale = INFINITY; }

static void test_tensors(void) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 3, 16);
    // frame_skew of grape-m-nc (R = 16, r = 8): r·R − r(r+1)/2 − r/2 = 128 − 36 − 4 = 88 per head
    struct {
        grape_rot_kind kind;
        int per_head, n;
        const char *name1;
        int count;
        size_t off, total;
    } cases[] = {
        {GRAPE_ROT_ROPE, 0, 0, NULL, 0, 0, 0},
        {GRAPE_ROT_GRAPE_M, 0, 1, NULL, 0, 0, 8},
        {GRAPE_ROT_GRAPE_M, 1, 1, NULL, 0, 0, 24},
        {GRAPE_ROT_GRAPE_M_CTX, 1, 1, NULL, 0, 0, 8},
        {GRAPE_ROT_GRAPE_M_BASIS, 0, 2, "basis_skew", 120, 8, 128},
        {GRAPE_ROT_GRAPE_M_NC, 1, 2, "frame_skew", 88, 12, 3 * (4 + 88)},
    };
    for (int i = 0; i < 6; i++) {
        cfg.rot = cases[i].kind, cfg.per_head = cases[i].per_head;
        grape_pe *pe;
        char lab[128];
        snprintf(lab, sizeof lab, "param tensors of case %d (%zu floats)", i, cases[i].total);
        if (grape_pe_create(&pe, &cfg)) {
            t_true(lab, 0);
            continue;
        }
        int ok = grape_pe_num_param_tensors(pe) == cases[i].n && grape_pe_num_params(pe) == cases[i].total;
        if (cases[i].n >= 1) {
            const grape_param_info *t = grape_pe_param_tensor(pe, 0);
            ok &= !strcmp(t->name, "log_freq") && t->offset == 0 && t->weight_decay == 1;
        }
        if (cases[i].n == 2) {
            const grape_param_info *t = grape_pe_param_tensor(pe, 1);
            ok &= !strcmp(t->name, cases[i].name1) && t->weight_decay == 1 && t->offset == cases[i].off &&
                  (cases[i].per_head ? t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == cases[i].count
                                     : t->ndim == 1 && t->shape[0] == cases[i].count);
        }
        t_true(lab, ok);
        grape_pe_free(pe);
    }
}

static void test_yarn(void) {
    double d[2];
    rope_yarn_corr_dims(d, 128, 4096, 1e4, 32, 1);
    t_check("YaRN corr dims n=128 ctx=4096 base=1e4 -> [20, 46]", fabs(d[0] - 20) + fabs(d[1] - 46), 0);
    rope_yarn_corr_dims(d, 128, 8192, 5e5, 32, 1);
    t_check("YaRN corr dims n=128 ctx=8192 base=5e5 -> [18, 35]", fabs(d[0] - 18) + fabs(d[1] - 35), 0);
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 1, 128);
    double plain[64], t[64], ms;
    rope_theta_table(plain, &ms, &cfg, 64);
    cfg.scaling = GRAPE_SCALING_YARN, cfg.yarn_orig_ctx = 4096, cfg.scaling_factor = 4, cfg.yarn_ext_factor = 0;
    rope_theta_table(t, &ms, &cfg, 64);
    double e = fabs(ms - 1.0);
    for (int i = 0; i < 64; i++) e = fmax(e, fabs(t[i] - plain[i] / 4) / plain[i]);
    t_check("YaRN ext_factor=0 == linear interpolation (mscale 1)", e, 1e-15);
    cfg.scaling_factor = 1, cfg.yarn_ext_factor = -1;
    rope_theta_table(t, &ms, &cfg, 64);
    e = fabs(ms - 1.0);
    for (int i = 0; i < 64; i++) e = fmax(e, fabs(t[i] - plain[i]) / plain[i]);
    t_check("YaRN factor 1 == plain RoPE", e, 1e-15);
    cfg.scaling_factor = 4;
    rope_theta_table(t, &ms, &cfg, 64);
    t_check("YaRN mscale(4) = 1 + 0.1 ln 4", fabs(ms - (1 + 0.1 * log(4.0))), 1e-15);
    t_check("YaRN pair 20 (<= low) extrapolates, pair 46 (>= high) interpolates",
            fabs(t[20] - plain[20]) / plain[20] + fabs(t[46] - plain[46] / 4) / plain[46], 1e-15);
    t_true("YaRN pair 33 (inside the ramp) lies between", t[33] < plain[33] && t[33] > plain[33] / 4);
    cfg.scaling = GRAPE_SCALING_NTK, cfg.scaling_factor = 8;
    t_check("NTK base(alpha=8, d=128) = 82685 (llama.cpp example)", fabs(rope_ext_base(&cfg, 128) - 82685) / 82685,
            1e-4);
    cfg.scaling = GRAPE_SCALING_LINEAR;
    rope_theta_table(t, &ms, &cfg, 64);
    t_check("linear scaling divides every theta by the factor", fabs(t[5] * 8 - plain[5]) / plain[5], 1e-15);
}

static void test_xpos_zeta(void) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 1, 64);
    double lz[32];
    xpos_ln_zeta(lz, &cfg, 32);
    t_check("xpos zeta_0 = 0.4/1.4", fabs(exp(lz[0]) - 0.4 / 1.4), 1e-15);
    t_check("xpos zeta_31 (d=64) = 0.97768", fabs(exp(lz[31]) - 0.97768), 1e-5);
}

int main(void) {
    expect_error("odd rotary_dim", odd_rotary);
    expect_error("rotary_dim > head_dim", big_rotary);
    expect_error("odd nc_rank", nc_odd);
    expect_error("nc_rank > rotary_dim", nc_big);
    expect_error("non-finite rope_base", base_nan);
    expect_error("rope_base 1", base_one);
    expect_error("scaling_factor < 1", factor_small);
    expect_error("YaRN without yarn_orig_ctx", yarn_no_ctx);
    expect_error("xpos scale_base 0", xpos_bad);
    expect_error("infinite log_freq_scale", lfs_bad);
    test_tensors();
    test_yarn();
    test_xpos_zeta();
    return t_finish();
}
