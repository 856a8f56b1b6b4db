// rot_kinds.c — the table of multiplicative encoding kinds (rot_kinds.h). One row per kind; the dispatcher, the
// parameter layout and init, the token inputs, the model's order of norm and rotation read its row.
#include "pe/rot_kinds.h"

// grape-m-ctx's phase gate: ω = sigmoid((w·x + c)/16) with w = 0 and c = ln(expm1(1e-3)) at init (official
// GRAPE-M ctx code), the model's init.
#define CTX_GATE_BIAS (-6.9072552)

static const rot_kind kinds[GRAPE_ROT_COUNT] = {
    [GRAPE_ROT_NONE] = {.info = {"nope", "multiplicative", "none", "GRAPE §4: trivial generator L = 0, A = 0"}},
    [GRAPE_ROT_ROPE] = {.info = {"rope", "multiplicative",
                                 "none (base, pair layout, partial rotary; PI/NTK/YaRN extension)",
                                 "GRAPE §3.1: MS-GRAPE on canonical planes (RoFormer)"},
                        .turns = 1},
    [GRAPE_ROT_XPOS] = {.info = {"xpos", "multiplicative", "none (gamma 0.4, scale_base 512, shared anchor)",
                                 "LEX §3 (arXiv 2212.10554)"},
                        .turns = 1, .decay = 1, .norm_first = 1},
    [GRAPE_ROT_GRAPE_M] = {.info = {"grape-m", "multiplicative",
                                    "log_freq: 16*ln(theta), R/2 shared or H*R/2 per head",
                                    "GRAPE §3.1 learned frequencies; official GRAPE-M nonctx"},
                           .turns = 1, .learned_freq = 1, .x16 = 1, .per_head_sets = 1},
    [GRAPE_ROT_GRAPE_M_CTX] = {.info = {"grape-m-ctx", "multiplicative",
                                "log_freq R/2 (+ phase gate w, c in the model's projection)",
                                "GRAPE §3.1 contextual phase; official GRAPE-M ctx"},
                               .turns = 1, .learned_freq = 1, .phase = 1,
                               .inputs = {{.name = "phase", .width = TW_PHASE, .zero_init = 1, .has_bias = 1,
                                           .bias_init = CTX_GATE_BIAS}}},
    [GRAPE_ROT_GRAPE_M_BASIS] = {.info = {"grape-m-basis", "multiplicative",
                                  "log_freq R/2, basis_skew R(R-1)/2 (Cayley map: B orthogonal by construction)",
                                  "GRAPE §3.1 learned commuting basis"},
                                 .turns = 1, .learned_freq = 1, .x16 = 1, .per_head_sets = 1,
                                 .frame = ROT_FRAME_BASIS, .skew_name = "basis_skew"},
    [GRAPE_ROT_GRAPE_M_NC] = {.info = {"grape-m-nc", "multiplicative",
                               "log_freq r/2, frame_skew rR-r(r+1)/2-r/2 (Cayley frame E, r = nc_rank)",
                               "GRAPE §3.2 non-commuting mixture (trainable E, theta form)"},
                              .turns = 1, .learned_freq = 1, .x16 = 1, .per_head_sets = 1, .frame = ROT_FRAME_NC,
                              .skew_name = "frame_skew"},
};

const rot_kind *rot_kind_of(grape_rot_kind k) {
    return (unsigned)k < GRAPE_ROT_COUNT ? &kinds[k] : &kinds[GRAPE_ROT_NONE];
}

int rot_kind_find(const char *s, size_t len) {
    for (int k = 0; k < GRAPE_ROT_COUNT; k++)
        if (kind_named(&kinds[k].info, s, len)) return k;
    return -1;
}
