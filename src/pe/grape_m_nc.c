// grape_m_nc.c — non-commuting GRAPE-M mixture of rank r (GRAPE §3.2; grape_paper.md §1.2, trainable form):
//   y = Eᵀx ∈ R^r,  x̃ = x + E(R(nθ) y − y),  E = first r columns of Cayley(A) ∈ SO(R) (orthonormal frame),
//   r/2 learned log-frequencies (×16 form). O(r·R) per token and head.
// A is parameterised by its r leading columns: A_ij (i > j, j < r), minus the r/2 in-pair entries A_{i1,i0} of
// the frame's own planes (a rotation inside a plane commutes with R(nθ) on it: a pure gauge). Count:
// r·R − r(r+1)/2 − r/2 ("frame_skew"). Init 0 ⇒ E = the first r coordinates, frame pairs in cfg's layout.
#include <string.h>

#include "pe/rot_internal.h"

// Is A_ij (i > j) a free parameter? j must be a frame column and (i, j) not one of the frame's planes.
static int nc_free(size_t i, size_t j, int r, int interleaved) {
    if (j >= (size_t)r) return 0;
    size_t partner = interleaved ? (j % 2 == 0 ? j + 1 : j) : (j < (size_t)r / 2 ? j + (size_t)r / 2 : j);
    return i != partner;
}

size_t nc_skew_count(int R, int r) {
    return (size_t)r * (size_t)R - (size_t)r * (size_t)(r + 1) / 2 - (size_t)r / 2;
}

void nc_skew_to_A(double *A, const double *skew, int R, int r, int interleaved) {
    size_t N = (size_t)R, k = 0;
    memset(A, 0, N * N * sizeof(double));
    for (size_t j = 0; j < (size_t)r; j++)
        for (size_t i = j + 1; i < N; i++)
            if (nc_free(i, j, r, interleaved)) {
                A[i * N + j] = skew[k];
                A[j * N + i] = -skew[k++];
            }
}

void nc_skew_backward(float *dskew, const double *dA, int R, int r, int interleaved) {
    size_t N = (size_t)R, k = 0;
    for (size_t j = 0; j < (size_t)r; j++)
        for (size_t i = j + 1; i < N; i++)
            if (nc_free(i, j, r, interleaved)) dskew[k++] += (float)(dA[i * N + j] - dA[j * N + i]);
}

// y, x: (D); scratch: ROT_SCRATCH(R) floats. y == x allowed.
void nc_head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                     float *scratch) {
    int R = r->R, F = r->frame;
    const float *Et = r->ft + (size_t)set * F * R;
    float *v = scratch, *u = scratch + F;
    rot_rows_dot(v, x, Et, F, R);
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) u[c] -= v[c];
    if (y != x) memcpy(y, x, (size_t)r->D * sizeof(float));
    rot_rows_axpy(y, u, Et, F, R);
}

// v = Eᵀx, u = R v, g = Eᵀdy, gv = Rᵀg:  dx += dy + E(gv − g);  dE = dy (u − v)ᵀ + x (gv − g)ᵀ (rows for the GEMM).
// urow, grow: (r) or NULL; scratch: ROT_SCRATCH(R) floats.
void nc_head_backward(float *dx, float *dphi, float *urow, float *grow, const float *dy, const float *x,
                      const float *cs, const float *sn, const rot_state *r, int set, float *scratch) {
    int R = r->R, F = r->frame;
    const float *Et = r->ft + (size_t)set * F * R;
    float *v = scratch, *u = scratch + F, *g = scratch + 2 * F, *gv = scratch + 3 * F;
    rot_rows_dot(v, x, Et, F, R);
    rot_rows_dot(g, dy, Et, F, R);
    memset(gv, 0, (size_t)F * sizeof(float));
    rot_pairs_backward(gv, dphi, g, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) gv[c] -= g[c];
    for (int i = 0; i < r->D; i++) dx[i] += dy[i];
    rot_rows_axpy(dx, gv, Et, F, R);
    if (!urow) return;
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) urow[c] = u[c] - v[c], grow[c] = gv[c];
}
