// grape_m_nc.c — non-commuting GRAPE-M mixture of rank r (GRAPE, arXiv 2512.07805 §3.2; trainable form):
//   y = Eᵀx ∈ R^r,  x̃ = x + E(R(nθ) y − y),  E = first r columns of Cayley(A) ∈ SO(R) (orthonormal frame),
//   r/2 learned log-frequencies (×16 form). O(r·R) per token and head.
// A is parameterised by its r leading columns: A_ij (i > j, j < r), minus the r/2 in-pair entries A_{i1,i0} of
// the frame's own planes (a rotation inside a plane commutes with R(nθ) on it: a pure gauge). Count:
// r·R − r(r+1)/2 − r/2 ("frame_skew"). Init 0 ⇒ E = the first r coordinates, frame pairs in cfg's layout.
#include <string.h>

#include "core/simd.h"
#include "pe/rot_internal.h"

#define NC_TILE (2 * VW) // columns of dEᵀ per register tile of the frame-gradient block

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

// v[0..fpad) = Eᵀx with E: (R, fpad) row-major, as v += x_i·E_i over the rows i, and g = Eᵀdy in the same pass
// when both is 1 (one load of E_i for both; a literal at each call, so the inlined loop has no branch).
// Broadcasting x_i against a lane chunk needs no horizontal sums (the row form <Eᵀ_c, x> spent most of its time
// reducing); NC_CHAINS partial sums over i per output keep FMA chains in flight.
#define NC_CHAINS 4

static inline void frame_project(float *v, float *g, const float *x, const float *dy, int both, const float *E, int R,
                                 int fpad) {
    for (int c0 = 0; c0 < fpad; c0 += ROT_FRAME_LANES) {
        float av[NC_CHAINS][ROT_FRAME_LANES] = {{0}}, ag[NC_CHAINS][ROT_FRAME_LANES] = {{0}};
        int i = 0;
        for (; i + NC_CHAINS <= R; i += NC_CHAINS)
            for (int k = 0; k < NC_CHAINS; k++) {
                const float *e = E + (size_t)(i + k) * (size_t)fpad + c0;
#pragma omp simd
                for (int l = 0; l < ROT_FRAME_LANES; l++) av[k][l] += x[i + k] * e[l];
                if (both)
#pragma omp simd
                    for (int l = 0; l < ROT_FRAME_LANES; l++) ag[k][l] += dy[i + k] * e[l];
            }
        for (; i < R; i++)
            for (int l = 0; l < ROT_FRAME_LANES; l++) {
                float e = E[(size_t)i * (size_t)fpad + c0 + l];
                av[0][l] += x[i] * e;
                if (both) ag[0][l] += dy[i] * e;
            }
        for (int w = NC_CHAINS / 2; w > 0; w /= 2)
            for (int k = 0; k < w; k++)
#pragma omp simd
                for (int l = 0; l < ROT_FRAME_LANES; l++) av[k][l] += av[k + w][l], ag[k][l] += ag[k + w][l];
        for (int l = 0; l < ROT_FRAME_LANES; l++) v[c0 + l] = av[0][l];
        if (both)
            for (int l = 0; l < ROT_FRAME_LANES; l++) g[c0 + l] = ag[0][l];
    }
}

// y, x: (D); scratch: ROT_SCRATCH(R) floats. y == x allowed.
void nc_head_forward(float *y, const float *x, const float *cs, const float *sn, const rot_state *r, int set,
                     float *scratch) {
    int R = r->R, F = r->frame;
    const float *Et = r->ft + (size_t)set * F * R;
    float *v = scratch, *u = scratch + r->fpad;
    frame_project(v, NULL, x, NULL, 0, r->fe + (size_t)set * R * r->fpad, R, r->fpad);
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) u[c] -= v[c];
    rot_rows_axpy(y, x, NULL, u, Et, F, R);
    if (y != x) memcpy(y + R, x + R, (size_t)(r->D - R) * sizeof(float));
}

// v = Eᵀx, u = R v, g = Eᵀdy, gv = Rᵀg:  dx += dy + E(gv − g);  dEᵀ = Σ (u − v) dyᵀ + (gv − g) xᵀ, whose
// coefficients go to coef = [u − v | gv − g] (2·fpad floats, or NULL) for nc_frame_grad_tokens.
void nc_head_backward(float *dx, float *dphi, float *coef, const float *dy, const float *x, const float *cs,
                      const float *sn, const rot_state *r, int set, float *scratch) {
    int R = r->R, F = r->frame, fp = r->fpad;
    const float *Et = r->ft + (size_t)set * F * R, *E = r->fe + (size_t)set * R * fp;
    float *v = scratch, *u = scratch + fp, *g = scratch + 2 * fp, *gv = scratch + 3 * fp;
    frame_project(v, g, x, dy, 1, E, R, fp);
    memset(gv, 0, (size_t)F * sizeof(float));
    rot_pairs_backward(gv, dphi, g, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) gv[c] -= g[c];
    rot_rows_axpy(dx, dx, dy, gv, Et, F, R);
    for (int i = R; i < r->D; i++) dx[i] += dy[i];
    if (!coef) return;
    rot_pairs_forward(u, v, cs, sn, r->npair, r->cfg.interleaved);
    for (int c = 0; c < F; c++) coef[c] = u[c] - v[c], coef[fp + c] = gv[c];
}

// Rows c..c+nr of dEᵀ (nr ≤ NC_ROWS) over NC_TILE columns from i0: Σ_k a_k[c]·p_k + b_k[c]·q_k, summed in registers
// over the block's rows (each load of p_k, q_k shared by the nr rows), then added into the double sums.
#define NC_ROWS 4

static inline void frame_grad_tile(double *dF, const float *coef, size_t lc, const float *p, const float *q, size_t ld,
                                   int K, int fp, int R, int c, int nr, int i0) {
    vf acc[NC_ROWS][2];
    for (int j = 0; j < nr; j++) acc[j][0] = acc[j][1] = vf_set1(0.0f);
    for (int k = 0; k < K; k++) {
        const float *pk = p + (size_t)k * ld + i0, *qk = q + (size_t)k * ld + i0, *ck = coef + (size_t)k * lc + c;
        vf p0 = vf_load(pk), p1 = vf_load(pk + VW), q0 = vf_load(qk), q1 = vf_load(qk + VW);
        for (int j = 0; j < nr; j++) {
            vf a = vf_set1(ck[j]), b = vf_set1(ck[fp + j]);
            acc[j][0] = vf_fma(b, q0, vf_fma(a, p0, acc[j][0]));
            acc[j][1] = vf_fma(b, q1, vf_fma(a, p1, acc[j][1]));
        }
    }
    for (int j = 0; j < nr; j++) {
        float t[2 * VW];
        vf_store(t, acc[j][0]), vf_store(t + VW, acc[j][1]);
        double *d = dF + (size_t)(c + j) * (size_t)R + (size_t)i0;
        for (int l = 0; l < 2 * VW; l++) d[l] += t[l];
    }
}

// dF (frame, R) += Σ_k (u − v)_k dy_kᵀ + (gv − g)_k x_kᵀ over K rows of one set: coefficient rows at stride lc
// floats, dy and x rows at stride ld floats.
static void frame_grad_block(double *dF, const float *coef, size_t lc, const float *dy, const float *x, size_t ld,
                             int K, const rot_state *r) {
    int R = r->R, fp = r->fpad, full = R - R % NC_TILE;
    for (int c = 0; c < r->frame; c += NC_ROWS) {
        int nr = r->frame - c < NC_ROWS ? r->frame - c : NC_ROWS;
        for (int i0 = 0; i0 < full; i0 += NC_TILE) frame_grad_tile(dF, coef, lc, dy, x, ld, K, fp, R, c, nr, i0);
    }
    for (int c = 0; c < r->frame; c++) // columns past the last whole tile
        for (int i = full; i < R; i++) {
            float s = 0.0f;
            for (size_t k = 0; k < (size_t)K; k++) {
                const float *ck = coef + k * lc;
                s += ck[c] * dy[k * ld + (size_t)i] + ck[fp + c] * x[k * ld + (size_t)i];
            }
            dF[(size_t)c * (size_t)R + (size_t)i] += s;
        }
}

// dEᵀ += the frame-gradient terms of nb tokens from bt0: one pass over the block per set.
void nc_frame_grad_tokens(double *dF, const float *coef, const float *dy, const float *x, const rot_state *r,
                          int64_t bt0, int nb) {
    size_t H = (size_t)r->H, D = (size_t)r->D, lc = 2 * (size_t)r->fpad, row0 = (size_t)bt0 * H;
    if (r->nset == 1) {
        frame_grad_block(dF, coef, lc, dy + row0 * D, x + row0 * D, D, nb * r->H, r);
        return;
    }
    for (size_t s = 0; s < H; s++) // per-head frames: the set's rows are every H-th
        frame_grad_block(dF + s * (size_t)r->frame * (size_t)r->R, coef + s * lc, H * lc, dy + (row0 + s) * D,
                         x + (row0 + s) * D, H * D, nb, r);
}
