// registry.c — encoding names and default configuration: parsing "ROT+BIAS", canonical names, and the table `grape encodings` prints.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "grape.h"

static const char *const rot_names[GRAPE_ROT_COUNT] = {
    [GRAPE_ROT_NONE] = "nope",
    [GRAPE_ROT_ROPE] = "rope",
    [GRAPE_ROT_XPOS] = "xpos",
    [GRAPE_ROT_GRAPE_M] = "grape-m",
    [GRAPE_ROT_GRAPE_M_CTX] = "grape-m-ctx",
    [GRAPE_ROT_GRAPE_M_BASIS] = "grape-m-basis",
    [GRAPE_ROT_GRAPE_M_NC] = "grape-m-nc",
};

static const char *const bias_names[GRAPE_BIAS_COUNT] = {
    [GRAPE_BIAS_NONE] = "nope",
    [GRAPE_BIAS_ALIBI] = "alibi",
    [GRAPE_BIAS_FOX] = "fox",
    [GRAPE_BIAS_GRAPE_A_K] = "grape-a-k",
    [GRAPE_BIAS_GRAPE_A_Q] = "grape-a-q",
    [GRAPE_BIAS_GRAPE_A_QK] = "grape-a-qk",
    [GRAPE_BIAS_GRAPE_AP] = "grape-ap",
};

static const grape_pe_info infos[] = {
    {"nope", "multiplicative", "none", "GRAPE §4: trivial generator L = 0, A = 0"},
    {"rope", "multiplicative", "none (base, pair layout, partial rotary; PI/NTK/YaRN extension)",
     "GRAPE §3.1: MS-GRAPE on canonical planes (RoFormer)"},
    {"xpos", "multiplicative", "none (gamma 0.4, scale_base 512, shared anchor)", "LEX §3 (arXiv 2212.10554)"},
    {"grape-m", "multiplicative", "log_freq: 16*ln(theta), R/2 shared or H*R/2 per head",
     "GRAPE §3.1 learned frequencies; official GRAPE-M nonctx"},
    {"grape-m-ctx", "multiplicative", "log_freq R/2 (+ phase gate w, c in the model's projection)",
     "GRAPE §3.1 contextual phase; official GRAPE-M ctx"},
    {"grape-m-basis", "multiplicative", "log_freq R/2, basis_skew R(R-1)/2 (Cayley map: B orthogonal by construction)",
     "GRAPE §3.1 learned commuting basis"},
    {"grape-m-nc", "multiplicative", "log_freq r/2, frame_skew rR-r(r+1)/2-r/2 (Cayley frame E, r = nc_rank)",
     "GRAPE §3.2 non-commuting mixture (trainable E, theta form)"},
    {"alibi", "additive", "none (slopes m_h for any head count)", "GRAPE §4 unipotent lift; ALiBi (Press et al.)"},
    {"fox", "additive", "none here (gate W_f, b_f in the model's projection)",
     "GRAPE §5 endpoint-independent GRAPE-AP; FoX (Lin et al.)"},
    {"grape-a-k", "additive", "rho H, u H*D (key gate)", "GRAPE §4 eq. 4.6 key-gated slope"},
    {"grape-a-q", "additive", "rho H, v H*D (query gate)", "GRAPE §4 eq. 4.6 query-gated slope"},
    {"grape-a-qk", "additive", "rho H, u H*D, v H*D", "GRAPE §4 eq. 4.6 query+key-gated slope"},
    {"grape-ap", "additive", "none here (probe W_p H*P x C in the model's projection)",
     "GRAPE §5 path-integral additive; official v1 (ap_form: paper, relative)"},
    {"ROT+BIAS", "hybrid", "those of ROT and BIAS", "GRAPE §6 composition, e.g. grape-m+grape-ap, xpos+fox"},
};

void grape_pe_config_default(grape_pe_config *cfg, int n_heads, int head_dim) {
    *cfg = (grape_pe_config){
        .rot = GRAPE_ROT_NONE,
        .bias = GRAPE_BIAS_NONE,
        .n_heads = n_heads,
        .head_dim = head_dim,
        .rotary_dim = 0,
        .interleaved = 0,
        .rope_base = 10000.0,
        .scaling = GRAPE_SCALING_NONE,
        .scaling_factor = 1.0,
        .yarn_orig_ctx = 0,
        .yarn_ext_factor = -1.0,
        .yarn_attn_factor = 1.0,
        .yarn_beta_fast = 32.0,
        .yarn_beta_slow = 1.0,
        .xpos_gamma = 0.4,
        .xpos_scale_base = 512.0,
        .per_head = 0,
        .log_freq_scale = 16.0,
        .nc_rank = 8,
        .ap_probe_dim = 8,
        .ap_form = GRAPE_AP_OFFICIAL,
        .kv_shift = 0,
        .basis_folded = 0,
    };
}

int grape_pe_info_count(void) { return (int)(sizeof infos / sizeof infos[0]); }

const grape_pe_info *grape_pe_info_at(int i) { return (i >= 0 && i < grape_pe_info_count()) ? &infos[i] : NULL; }

static int find_name(const char *const *names, int n, const char *s, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0) return i;
    return -1;
}

grape_status grape_pe_parse(grape_pe_config *cfg, const char *name) {
    if (!name || !*name) return grape_fail(GRAPE_ERR_ARG, "empty encoding name");
    const char *plus = strchr(name, '+');
    if (!plus) {
        int r = find_name(rot_names, GRAPE_ROT_COUNT, name, strlen(name));
        int b = find_name(bias_names, GRAPE_BIAS_COUNT, name, strlen(name));
        if (r < 0 && b < 0)
            return grape_fail(GRAPE_ERR_ARG, "unknown encoding '%s' (run `grape encodings`)", name);
        cfg->rot = r > 0 ? (grape_rot_kind)r : GRAPE_ROT_NONE;
        cfg->bias = b > 0 ? (grape_bias_kind)b : GRAPE_BIAS_NONE;
        return GRAPE_OK;
    }
    int r = find_name(rot_names, GRAPE_ROT_COUNT, name, (size_t)(plus - name));
    int b = find_name(bias_names, GRAPE_BIAS_COUNT, plus + 1, strlen(plus + 1));
    if (r < 0 || b < 0)
        return grape_fail(GRAPE_ERR_ARG, "bad hybrid '%s': want ROT+BIAS, ROT one of nope, rope, xpos, grape-m*, "
                                         "BIAS one of alibi, fox, grape-a-*, grape-ap",
                          name);
    cfg->rot = (grape_rot_kind)r;
    cfg->bias = (grape_bias_kind)b;
    return GRAPE_OK;
}

void grape_pe_name(char *buf, size_t n, const grape_pe_config *cfg) {
    if (cfg->bias == GRAPE_BIAS_NONE)
        snprintf(buf, n, "%s", rot_names[cfg->rot]);
    else if (cfg->rot == GRAPE_ROT_NONE)
        snprintf(buf, n, "%s", bias_names[cfg->bias]);
    else
        snprintf(buf, n, "%s+%s", rot_names[cfg->rot], bias_names[cfg->bias]);
}
