// bias_kinds.c — the table of additive encoding kinds (bias_kinds.h). One row per kind; everything else that
// depends on the kind (parameters, init, factors, token inputs, the closed form) reads its row.
#include "pe/bias_kinds.h"

#define F(x) BF_BIT(BF_##x)

const bias_factor_desc bias_factor_descs[BF_COUNT] = {
    [BF_SLOPE] = {"slope", GRAPE_F32, 1, 0},   [BF_GATE_Q] = {"gate_q", GRAPE_F32, 0, 0},
    [BF_GATE_K] = {"gate_k", GRAPE_F32, 0, 0}, [BF_CUM] = {"cum", GRAPE_F64, 0, 0},
    [BF_PROBE_Q] = {"probe_q", GRAPE_F32, 0, 1}, [BF_PROBE_K] = {"probe_k", GRAPE_F32, 0, 1},
};

// Rows: {name, family, parameters, source}, then the closed form, the factors, the parameters and the token
// inputs ({name, width, zero_init, has_bias, bias_init}: the model's projection rows "attn.w_<name>" and its bias
// "attn.b_<name>").
static const bias_kind kinds[GRAPE_BIAS_COUNT] = {
    [GRAPE_BIAS_NONE] = {.info = {"nope", "additive", "none", "GRAPE §4: A = 0"}, .form = BIAS_FORM_NONE},
    [GRAPE_BIAS_ALIBI] = {.info = {"alibi", "additive", "none (slopes m_h for any head count)",
                                   "GRAPE §4 unipotent lift; ALiBi (Press et al.)"},
                          .form = BIAS_FORM_LINEAR, .factors = F(SLOPE)},
    [GRAPE_BIAS_FOX] = {.info = {"fox", "additive", "none here (gate W_f, b_f in the model's projection)",
                                 "GRAPE §5 endpoint-independent GRAPE-AP; FoX (Lin et al.)"},
                        .form = BIAS_FORM_CUM, .factors = F(CUM),
                        .inputs = {{.name = "gate", .width = TW_H, .has_bias = 1, .bias_init = 0.0}}},
    [GRAPE_BIAS_GRAPE_A_K] = {.info = {"grape-a-k", "additive", "rho H, u H*D (key gate)",
                                       "GRAPE §4 eq. 4.6 key-gated slope"},
                              .form = BIAS_FORM_LINEAR, .factors = F(SLOPE) | F(GATE_K), .learned_slope = 1,
                              .gate_k = 1},
    [GRAPE_BIAS_GRAPE_A_Q] = {.info = {"grape-a-q", "additive", "rho H, v H*D (query gate)",
                                       "GRAPE §4 eq. 4.6 query-gated slope"},
                              .form = BIAS_FORM_LINEAR, .factors = F(SLOPE) | F(GATE_Q), .learned_slope = 1,
                              .gate_q = 1},
    [GRAPE_BIAS_GRAPE_A_QK] = {.info = {"grape-a-qk", "additive", "rho H, u H*D, v H*D",
                                        "GRAPE §4 eq. 4.6 query+key-gated slope"},
                               .form = BIAS_FORM_LINEAR, .factors = F(SLOPE) | F(GATE_Q) | F(GATE_K),
                               .learned_slope = 1, .gate_q = 1, .gate_k = 1},
    [GRAPE_BIAS_GRAPE_AP] = {.info = {"grape-ap", "additive", "none here (probe W_p H*P x C in the model's projection)",
                                      "GRAPE §5 path-integral additive; official v1 (ap_form: paper, relative)"},
                             .form = BIAS_FORM_PATH, .factors = F(SLOPE) | F(PROBE_Q) | F(PROBE_K),
                             .inputs = {{.name = "probe", .width = TW_HP}}},
    [GRAPE_BIAS_GRAPE_A] = {.info = {"grape-a", "additive", "rho H (learned slope, no gate)",
                                     "GRAPE §4 ungated member: omega_h = softplus(rho_h) m_h (learned-slope ALiBi)"},
                            .form = BIAS_FORM_LINEAR, .factors = F(SLOPE), .learned_slope = 1},
};

const bias_kind *bias_kind_of(grape_bias_kind k) {
    return (unsigned)k < GRAPE_BIAS_COUNT ? &kinds[k] : &kinds[GRAPE_BIAS_NONE];
}

int bias_kind_find(const char *s, size_t len) {
    for (int k = 0; k < GRAPE_BIAS_COUNT; k++)
        if (kind_named(&kinds[k].info, s, len)) return k;
    return -1;
}
