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

// y[c] = <Et[c], x> for the r frame rows; Et: (r, R).
static void frame_project(float *y, const float *x, const float *Et, int r, int R) {
    for (int c = 0; c < r; c++) {
        const float *e = Et + (size_t)c * R;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < R; i++) s += e[i] * x[i];
        y[c] = s;
    }
}

// out[0..R) += Σ_c d[c] Et[c]
static void frame_expand(float *out, const float *d, const float *Et, int r, int R) {
    for (int c = 0; c < r; c++) {
        const float *e = Et + (size_t)c * R;
        float dc = d[c];
#pragma omp simd
        for (int i = 0; i < R; i++) out[i] += dc * e[i];
    }
}

// y, x: (D); scratch: 2r floats. y == x allowed.
void nc_head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                     float *scratch) {
    int R = r->R, F = r->frame;
    const float *Et = r->ft + (size_t)set * F * R;
    float *v = scratch, *u = scratch + F;
    frame_project(v, x, Et, F, R);
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) u[c] -= v[c];
    if (y != x) memcpy(y, x, (size_t)r->D * sizeof(float));
    frame_expand(y, u, Et, F, R);
}

// v = Eᵀx, u = R v, g = Eᵀdy, gv = Rᵀg:  dx += dy + E(gv − g);  dE += dy (u − v)ᵀ + x (gv − g)ᵀ.
// dF: (r, R) double rows of dEᵀ; scratch: 4r floats.
void nc_head_backward(float *dx, float *dphi, double *dF, const float *dy, const float *x, const float *cs,
                      const float *sn, const rot_state *r, int set, float *scratch) {
    int R = r->R, F = r->frame;
    const float *Et = r->ft + (size_t)set * F * R;
    float *v = scratch, *u = scratch + F, *g = scratch + 2 * F, *gv = scratch + 3 * F;
    frame_project(v, x, Et, F, R);
    frame_project(g, dy, Et, F, R);
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    memset(gv, 0, (size_t)F * sizeof(float));
    rot_pairs_backward(gv, dphi, g, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) {
        u[c] -= v[c];
        gv[c] -= g[c];
    }
    for (int i = 0; i < r->D; i++) dx[i] += dy[i];
    frame_expand(dx, gv, Et, F, R);
    for (int c = 0; c < F; c++) {
        double *row = dF + (size_t)c * R;
        double uc = u[c], gc = gv[c];
#pragma omp simd
        for (int i = 0; i < R; i++) row[i] += uc * dy[i] + gc * x[i];
    }
}
