// test_attn_pe.c — the fused attention fed by the real encodings: q, k rotated by grape_rot_forward (hybrids),
// factors from grape_bias_factors_forward with the official initial parameters. Checks
//   1. the reference's double closed forms (attn_ref_bias_row) agree with the encoding's own materialised bias
//      (grape_bias_block) on every causal entry: 1e-5 relative to the largest |bias| — the kernel and the
//      encodings read the factors with the same conventions (signs, the 1/P of GRAPE-AP, FoX's inclusive c);
//   2. the fast kernel against the double reference on those inputs, forward and backward: 1e-4 relative.
#include "test_attn_fixture.h"
#include "test_inputs.h"

static float *memdup_f(const float *x, size_t n) {
    if (!x) return NULL;
    float *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

// Bias of every (b, h) from grape_bias_block vs attn_ref_bias_row; returns max |diff| / max |bias|.
static double bias_agreement(const fx_problem *p) {
    int T = p->T;
    float *blk = malloc((size_t)T * T * 4);
    double *row = malloc((size_t)T * 8), num = 0, den = 0;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) {
            grape_bias_block(blk, &p->f, b, h, 0, T, 0, T);
            for (int t = 0; t < T; t++) {
                attn_ref_bias_row(row, &p->fd, b, h, t, 0, T, p->H);
                for (int j = 0; j <= t; j++) {
                    double d = fabs(blk[(size_t)t * T + j] - row[j]);
                    num = d > num || d != d ? d : num;
                    den = fabs(row[j]) > den ? fabs(row[j]) : den;
                }
            }
        }
    free(blk), free(row);
    return den > 0 ? num / den : num;
}

static void run(const char *name, int B, int T, int H, int D) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    grape_pe *pe = NULL;
    if (grape_pe_parse(&cfg, name) || grape_pe_create(&pe, &cfg)) {
        t_true(name, 0);
        return;
    }
    float *params = calloc(grape_pe_num_params(pe) + 1, 4);
    grape_pe_init_params(pe, params, 11);
    grape_pe_prepare(pe, params);
    int w_gate = ti_width(pe, "gate"), w_probe = ti_width(pe, "probe"), w_phase = ti_width(pe, "phase");
    t_rng r = t_seed(5);
    fx_problem p;
    fx_inputs(&p, cfg.bias, B, T, H, D, 1.0, &r);
    size_t ntok = (size_t)B * T;
    float *gate = w_gate ? fx_randn(ntok * w_gate, 1.0, &r) : NULL;
    float *probe = w_probe ? fx_randn(ntok * w_probe, 1.0, &r) : NULL;
    float *plog = w_phase ? fx_randn(ntok * w_phase, 8.0, &r) : NULL;
    double *phase = w_phase ? calloc(ntok * w_phase, 8) : NULL;
    for (size_t i = 0; gate && i < ntok * w_gate; i++) gate[i] += 2.0f;
    if (phase) grape_phase_forward(phase, plog, pe, B, T);
    grape_positions pos = {0, (double)(T / 2), phase};
    grape_rot_forward(p.q, p.q, pe, &pos, GRAPE_QUERY, B, T);
    grape_rot_forward(p.k, p.k, pe, &pos, GRAPE_KEY, B, T);
    const float *in[TI_MAX] = {0};
    ti_set(in, pe, "phase", plog), ti_set(in, pe, "gate", gate), ti_set(in, pe, "probe", probe);
    void *ws = calloc(grape_bias_workspace_bytes(pe, B, T) + 1, 1);
    grape_bias_factors *f = NULL;
    grape_status st = grape_bias_factors_forward(&f, ws, pe, p.q, p.k, in, 0, B, T);
    t_true(name, st == GRAPE_OK && (f->kind != GRAPE_BIAS_GRAPE_AP || f->P == FX_P));
    p.slope = memdup_f(bf_f32(f, BF_SLOPE), (size_t)H);
    p.gate_q = memdup_f(bf_f32(f, BF_GATE_Q), p.nf);
    p.gate_k = memdup_f(bf_f32(f, BF_GATE_K), p.nf);
    p.probe_q = memdup_f(bf_f32(f, BF_PROBE_Q), p.np);
    p.probe_k = memdup_f(bf_f32(f, BF_PROBE_K), p.np);
    if (f->ch[BF_CUM]) p.cum = malloc(p.nf * 8), memcpy(p.cum, f->ch[BF_CUM], p.nf * 8);
    fx_bind(&p);
    char tag[96];
    snprintf(tag, sizeof tag, "%s B%d T%d H%d D%d", name, B, T, H, D);
    if (p.kind) {
        char nm[160];
        snprintf(nm, sizeof nm, "%s reference bias == grape_bias_block", tag);
        t_check(nm, bias_agreement(&p), 1e-5);
    }
    fx_check_vs_ref(tag, &p, 0, 1e-4);
    fx_free(&p);
    free(params), free(gate), free(probe), free(plog), free(phase), free(ws);
    grape_pe_free(pe);
}

int main(void) {
    static const char *names[] = {"alibi",         "fox",       "grape-a-k",           "grape-a-q",
                                  "grape-a-qk",    "grape-ap",  "grape-m+grape-ap",    "rope+fox",
                                  "xpos+alibi",    "grape-m-ctx+grape-a-qk", "grape-m-nc+grape-ap", "grape-m-basis"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) run(names[i], 2, 150, 3, 64);
    return t_finish();
}
