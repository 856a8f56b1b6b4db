// rope_ext.c — RoPE context extension with llama.cpp/GGML semantics (ggml's rope_yarn, ggml_rope_yarn_corr_dims):
//   linear (PI):  θ_i ← θ_i / s                       (s = scaling_factor = L_target / L_train)
//   NTK-aware:    base ← base · s^(n/(n−2))
//   YaRN:         θ_i ← θ_i/s · (1 − mix_i) + θ_i · mix_i,  mix_i = ramp_i · ext_factor,
//                 ramp_i = 1 − clamp((i − low)/max(0.001, high − low), 0, 1), [low, high] = corr_dims(β_fast, β_slow),
//                 mscale = attn_factor · (1 + 0.1 ln s) when ext_factor ≠ 0 (on cos and sin, for q and k).
#include <math.h>

#include "pe/rot_internal.h"

double rope_ext_base(const grape_pe_config *cfg, int n_dims) {
    if (cfg->scaling != GRAPE_SCALING_NTK || n_dims <= 2) return cfg->rope_base;
    return cfg->rope_base * pow(cfg->scaling_factor, n_dims / (n_dims - 2.0));
}

// corr_dim(β) = n·ln(n_ctx_orig / (2π β)) / (2 ln base): the pair index whose wavelength spans n_ctx_orig/β.
static double yarn_corr_dim(int n_dims, int n_ctx_orig, double beta, double base) {
    return n_dims * log(n_ctx_orig / (beta * 2.0 * M_PI)) / (2.0 * log(base));
}

void rope_yarn_corr_dims(double dims[2], int n_dims, int n_ctx_orig, double base, double beta_fast,
                         double beta_slow) {
    dims[0] = fmax(0.0, floor(yarn_corr_dim(n_dims, n_ctx_orig, beta_fast, base)));
    dims[1] = fmin(n_dims - 1.0, ceil(yarn_corr_dim(n_dims, n_ctx_orig, beta_slow, base)));
}

double rope_ext_apply(double *theta, const grape_pe_config *cfg, int npair) {
    double s = cfg->scaling_factor;
    if (cfg->scaling == GRAPE_SCALING_LINEAR)
        for (int i = 0; i < npair; i++) theta[i] /= s;
    if (cfg->scaling != GRAPE_SCALING_YARN) return 1.0;
    double ext = cfg->yarn_ext_factor < 0 ? 1.0 : cfg->yarn_ext_factor, dims[2];
    rope_yarn_corr_dims(dims, 2 * npair, cfg->yarn_orig_ctx, cfg->rope_base, cfg->yarn_beta_fast,
                        cfg->yarn_beta_slow);
    for (int i = 0; i < npair; i++) {
        double y = (i - dims[0]) / fmax(0.001, dims[1] - dims[0]);
        double mix = (1.0 - fmin(1.0, fmax(0.0, y))) * ext;
        theta[i] = theta[i] / s * (1.0 - mix) + theta[i] * mix;
    }
    return cfg->yarn_attn_factor * (ext != 0.0 ? 1.0 + 0.1 * log(s) : 1.0);
}
