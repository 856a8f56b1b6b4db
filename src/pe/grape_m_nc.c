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

// v[0..fpad) = Eᵀx with E: (R, fpad) row-major, as v += x_i·E_i over the rows i. Broadcasting x_i against a
// lane chunk needs no horizontal sums (the row form <Eᵀ_c, x> spent most of its time reducing); NC_CHAINS partial
// sums over i keep that many FMA chains in flight.
#define NC_CHAINS 8

static void frame_project(float *v, const float *x, const float *E, int R, int fpad) {
    for (int c0 = 0; c0 < fpad; c0 += ROT_FRAME_LANES) {
        float acc[NC_CHAINS][ROT_FRAME_LANES] = {{0}};
        int i = 0;
        for (; i + NC_CHAINS <= R; i += NC_CHAINS)
            for (int k = 0; k < NC_CHAINS; k++) {
                const float *e = E + (size_t)(i + k) * (size_t)fpad + c0;
#pragma omp simd
                for (int l = 0; l < ROT_FRAME_LANES; l++) acc[k][l] += x[i + k] * e[l];
            }
        for (; i < R; i++)
            for (int l = 0; l < ROT_FRAME_LANES; l++) acc[0][l] += x[i] * E[(size_t)i * (size_t)fpad + c0 + l];
        for (int w = NC_CHAINS / 2; w > 0; w /= 2)
            for (int k = 0; k < w; k++)
#pragma omp simd
                for (int l = 0; l < ROT_FRAME_LANES; l++) acc[k][l] += acc[k + w][l];
        for (int l = 0; l < ROT_FRAME_LANES; l++) v[c0 + l] = acc[0][l];
    }
}

// dEt[c][0..R) += a_c·p + b_c·q: one head's rank-2 term of the frame gradient (dEt: (F, R), L1-resident).
static void frame_grad_rank2(float *dEt, const float *a, const float *p, const float *b, const float *q, int F, int R) {
    for (int c = 0; c < F; c++) {
        float *row = dEt + (size_t)c * (size_t)R, ac = a[c], bc = b[c];
#pragma omp simd
        for (int i = 0; i < R; i++) row[i] += ac * p[i] + bc * q[i];
    }
}

// y, x: (D); scratch: ROT_SCRATCH(R) floats. y == x allowed.
void nc_head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                     float *scratch) {
    int R = r->R, F = r->frame;
    const float *Et = r->ft + (size_t)set * F * R;
    float *v = scratch, *u = scratch + r->fpad;
    frame_project(v, x, r->fe + (size_t)set * R * r->fpad, R, r->fpad);
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) u[c] -= v[c];
    if (y != x) memcpy(y, x, (size_t)r->D * sizeof(float));
    rot_rows_axpy(y, u, Et, F, R);
}

// v = Eᵀx, u = R v, g = Eᵀdy, gv = Rᵀg:  dx += dy + E(gv − g);  dEᵀ += (u − v) dyᵀ + (gv − g) xᵀ.
// dEt: (r, R) this thread's frame-gradient sums of the head's set, or NULL; scratch: ROT_SCRATCH(R) floats.
void nc_head_backward(float *dx, float *dphi, float *dEt, const float *dy, const float *x, const float *cs,
                      const float *sn, const rot_state *r, int set, float *scratch) {
    int R = r->R, F = r->frame, fp = r->fpad;
    const float *Et = r->ft + (size_t)set * F * R, *E = r->fe + (size_t)set * R * fp;
    float *v = scratch, *u = scratch + fp, *g = scratch + 2 * fp, *gv = scratch + 3 * fp;
    frame_project(v, x, E, R, fp);
    frame_project(g, dy, E, R, fp);
    memset(gv, 0, (size_t)F * sizeof(float));
    rot_pairs_backward(gv, dphi, g, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) gv[c] -= g[c];
    for (int i = 0; i < r->D; i++) dx[i] += dy[i];
    rot_rows_axpy(dx, gv, Et, F, R);
    if (!dEt) return;
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) u[c] -= v[c];
    frame_grad_rank2(dEt, u, dy, gv, x, F, R);
}
