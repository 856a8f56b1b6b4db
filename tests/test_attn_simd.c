// test_attn_simd.c — the vector exp and log sigmoid of src/core/simd.h (the ISA this build selected) against
// libm in double over their whole working range: exp max relative error <= 3e-7 on [-87, 88] and exactly 0 below
// the underflow cut (the causal mask's -inf included); log sigmoid max error <= 3e-7 * max(1, |log sigmoid|).
#include <math.h>
#include <stdio.h>

#include "core/simd.h"
#include "core/mathx.h"
#include "util.h"

int main(void) {
    float x[VW], y[VW];
    double e_exp = 0, e_ls = 0;
    int n = 0;
    for (double a = -87.0; a <= 88.0; a += 1.0 / 4096) {
        for (int i = 0; i < VW; i++) x[i] = (float)(a + i * (1.0 / (4096.0 * VW)));
        vf_store(y, vf_exp(vf_load(x)));
        for (int i = 0; i < VW; i++) {
            double r = exp((double)x[i]), e = fabs(y[i] - r) / r;
            e_exp = e > e_exp ? e : e_exp;
        }
        vf_store(y, vf_log_sigmoid(vf_load(x)));
        for (int i = 0; i < VW; i++) {
            double r = log_sigmoid_d((double)x[i]), e = fabs(y[i] - r) / fmax(1.0, fabs(r));
            e_ls = e > e_ls ? e : e_ls;
        }
        n++;
    }
    printf("# %d vectors of %d lanes\n", n, VW);
    t_check("vf_exp max relative error on [-87, 88]", e_exp, 3e-7);
    t_check("vf_log_sigmoid max error on [-87, 88]", e_ls, 3e-7);
    float lo[VW];
    for (int i = 0; i < VW; i++) lo[i] = i == 0 ? -INFINITY : -88.0f - (float)i * 10.0f;
    vf_store(y, vf_exp(vf_load(lo)));
    double worst = 0;
    for (int i = 0; i < VW; i++) worst = fabs(y[i]) > worst ? fabs(y[i]) : worst;
    t_check("vf_exp is exactly 0 for -inf and below the underflow cut", worst, 0.0);
    float nan[VW];
    for (int i = 0; i < VW; i++) nan[i] = NAN;
    vf_store(y, vf_exp(vf_load(nan)));
    t_true("vf_exp propagates NaN", isnan(y[0]));
    return t_finish();
}
