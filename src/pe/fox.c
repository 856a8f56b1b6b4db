// fox.c — Forgetting Transformer gate prefix (Lin et al., ICLR 2025, arXiv 2503.02130;
// github.com/zhixuan-lin/forgetting-transformer).
#include "core/mathx.h"
#include "pe/bias_internal.h"

// c_t = Σ_{l<=t} log f_l with log f = log σ(logit) in fp32 (as the reference), the sum in double: at T ~ 1e5
// c reaches ~1e4 and an fp32 prefix would lose the per-token differences the bias is made of.
// cum, gate_logit: (B,T,H)
void fox_cum_forward(double *cum, const float *gate_logit, int B, int T, int H) {
    size_t TH = (size_t)T * (size_t)H;
#pragma omp parallel for if ((size_t)B * TH > 65536)
    for (int b = 0; b < B; b++) {
        double *c = cum + (size_t)b * TH;
        const float *x = gate_logit + (size_t)b * TH;
        for (int h = 0; h < H; h++) c[h] = log_sigmoid_f(x[h]);
        for (size_t i = (size_t)H; i < TH; i++) c[i] = c[i - (size_t)H] + log_sigmoid_f(x[i]);
    }
}

// d log f_t = Σ_{s>=t} dc_s (reverse cumsum, double), dlogit_t += d log f_t · σ(-logit_t) = d log f_t (1 - f_t).
// dgate_logit, dcum, gate_logit: (B,T,H)
void fox_cum_backward(float *dgate_logit, const double *dcum, const float *gate_logit, int B, int T, int H) {
    size_t TH = (size_t)T * (size_t)H;
#pragma omp parallel for collapse(2) if ((size_t)B * TH > 65536)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            double acc = 0;
            for (int64_t t = T - 1; t >= 0; t--) {
                size_t i = (size_t)b * TH + (size_t)t * (size_t)H + (size_t)h;
                acc += dcum[i];
                dgate_logit[i] += (float)acc * sigmoid_f(-gate_logit[i]);
            }
        }
}
