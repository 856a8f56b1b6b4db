// lift_rot_ref.h — the reference path of the multiplicative action, in double: build the group element G(n)
// itself from its generators and apply it as a dense matrix. The executable spec and the test oracle of
// grape_rot_forward (rotation.c) and grape_plane_forward (rodrigues.c).
#ifndef GRAPE_PE_LIFT_ROT_REF_H
#define GRAPE_PE_LIFT_ROT_REF_H

#include "grape.h"
#include "pe/rot_internal.h"

// G ← G · exp(t L(a, b)), L = a bᵀ − b aᵀ, by the Rodrigues closed form (rank-2 update, O(d²)). G: (d,d).
void lift_rodrigues_right(double *G, const double *a, const double *b, double t, int d);
// G = exp(L) for any L (d,d) by scaling and squaring of a Taylor series: the oracle independent of Rodrigues.
grape_status lift_expm(double *G, const double *L, int d);
// G (D,D) of head h for angle multiplier `mult` (position n, or phase Φ): Π_i exp(mult·θ_i L(F e_i0, F e_i1)) with
// F = I, B or E, then the per-pair scale (xPos ζ^e, YaRN mscale) along each plane. tab: rot_tables_derive.
void lift_rot_matrix(double *G, const rot_state *r, const rot_tables *tab, int h, double mult,
                     const double *pair_scale);
// y = G(n) x for every (b, t, h), x, y: (B,T,H,D). params: the rotation's slice in double (NULL when none).
grape_status lift_rot_forward_ref(double *y, const double *x, const grape_pe *pe, const double *params,
                                  const grape_positions *pos, grape_side side, int B, int T);

#endif
