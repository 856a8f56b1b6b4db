// grape_m.c — learned log-frequencies (official GRAPE-M nonctx, github.com/model-architectures/GRAPE
// model/llama-mha-grape-m-nonctx.py):
//   θ_i = exp(λ_i / 16) with λ stored ×16 (Adam's step on ln θ becomes lr/16); init λ_i = 16·ln θ_i^RoPE.
//   Backward: dθ_i = Σ n·dφ_i, dλ_i = dθ_i·θ_i/16. grape-m-ctx stores λ without the ×16 (θ = exp λ, official
//   model/llama-mha-grape-m-ctx.py); grape-m-basis and grape-m-nc reuse the ×16 form.
#include <math.h>

#include "pe/rot_internal.h"

double rot_freq_scale(const rot_state *r) {
    return r->kd->x16 ? r->cfg.log_freq_scale : 1.0;
}

void rot_log_freq_init(const rot_state *r, float *log_freq) {
    double scale = rot_freq_scale(r);
    for (int i = 0; i < r->npair; i++) log_freq[i] = (float)(scale * log(r->theta0[i]));
}

void rot_log_freq_backward(const rot_state *r, float *dlog_freq, const double *dtheta) {
    double scale = rot_freq_scale(r);
    size_t np = (size_t)r->npair;
    for (size_t s = 0; s < (size_t)r->nset; s++)
        for (size_t i = 0; i < np; i++)
            dlog_freq[s * r->n_freq + i] += (float)(dtheta[s * np + i] * r->tab.theta[s * np + i] / scale);
}
