// rope.c — RoPE frequency tables (GRAPE §3.1: MS-GRAPE on canonical planes; RoFormer):
//   θ_i = base^(−2i/n_dims), i = 0..n_dims/2−1, with n_dims the rotated width (R, or r for grape-m-nc),
// then the configured context extension (rope_ext.c). Fixed for rope/xpos; the init of the learned kinds.
#include <math.h>

#include "pe/rot_internal.h"

void rope_theta_table(double *theta, double *mscale, const grape_pe_config *cfg, int npair) {
    int n_dims = 2 * npair;
    double base = rope_ext_base(cfg, n_dims);
    for (int i = 0; i < npair; i++) theta[i] = pow(base, -2.0 * i / n_dims);
    *mscale = rope_ext_apply(theta, cfg, npair);
}
