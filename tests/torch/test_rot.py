"""The multiplicative encodings against PyTorch float64 references written from the spec, with torch.matrix_exp
as the independent oracle: G(n) = matrix_exp(n * sum_i theta_i (p_i q_i^T - q_i p_i^T)) with (p_i, q_i) the
canonical pair planes (rope, xpos, grape-m, grape-m-ctx), the columns of B = Cayley(A) (grape-m-basis) or of the
frame E (grape-m-nc), in the official sign (y_a = a cos + b sin). Forward and autograd backward of
L = sum(w * G(n) x): dx, dlog_freq, dskew, dlogit (through the phase), and the rank-2 plane's dx, da, db, domega."""
import ctypes as C

import numpy as np
import torch

from common import Config, DP, FP, Positions, VP, bind_pe, check, dptr, finish, fptr, load_lib, parse_pe, rel_err

lib = load_lib(testing=True)
KINDS = {n: parse_pe(lib, n).rot for n in ("rope", "xpos", "grape-m", "grape-m-ctx", "grape-m-basis", "grape-m-nc")}


bind_pe(lib)
lib.grape_rot_forward.argtypes = [FP, FP, VP, C.POINTER(Positions), C.c_int, C.c_int, C.c_int]
lib.grape_rot_backward.argtypes = [FP, FP, DP, FP, FP, VP, C.POINTER(Positions), C.c_int, C.c_int, C.c_int]
lib.grape_phase_forward.argtypes = [DP, FP, VP, C.c_int, C.c_int]
lib.grape_phase_backward.argtypes = [FP, DP, FP, VP, C.c_int, C.c_int]
lib.grape_plane_forward.argtypes = [FP, FP, FP, FP, C.c_float, DP, C.c_int, C.c_int]
lib.grape_plane_backward.argtypes = [FP, FP, FP, FP, FP, FP, FP, FP, C.c_float, DP, C.c_int, C.c_int]

rng = np.random.default_rng(1234)


def f32(shape, std=1.0):
    return np.ascontiguousarray((rng.standard_normal(shape) * std).astype(np.float32))


def pairs(npair, interleaved):
    return [(2 * p, 2 * p + 1) if interleaved else (p, p + npair) for p in range(npair)]


def cayley(A):
    eye = torch.eye(A.shape[-1])
    return torch.linalg.solve(eye + A, eye - A)


def skew_basis(s, R):
    """A = S - S^T, S strictly lower, packed row-major (grape-m-basis basis_skew)."""
    A = torch.zeros(R, R)
    k = 0
    for i in range(1, R):
        for j in range(i):
            A = A.index_put((torch.tensor(i), torch.tensor(j)), s[k])
            k += 1
    return A - A.T


def skew_nc(s, R, r, interleaved):
    """A in the r leading columns, without the in-pair entries of the frame's planes (grape-m-nc frame_skew)."""
    A = torch.zeros(R, R)
    k = 0
    for j in range(r):
        partner = (j + 1 if j % 2 == 0 else j) if interleaved else (j + r // 2 if j < r // 2 else j)
        for i in range(j + 1, R):
            if i != partner:
                A = A.index_put((torch.tensor(i), torch.tensor(j)), s[k])
                k += 1
    return A - A.T


def generator(theta, frame, interleaved, D):
    """sum_i theta_i (p_i q_i^T - q_i p_i^T) embedded in D dims; frame (R, 2*npair) holds the plane vectors.
    Interleaved pairs turn the other way (torchscale / GPT-J / llama.cpp NORMAL: y0 = x0 cos - x1 sin)."""
    R, F = frame.shape
    L = torch.zeros(D, D)
    sign = -1.0 if interleaved else 1.0
    for k, (i0, i1) in enumerate(pairs(F // 2, interleaved)):
        p, q = frame[:, i0], frame[:, i1]
        Lk = torch.zeros(D, D)
        Lk[:R, :R] = sign * (torch.outer(p, q) - torch.outer(q, p))
        L = L + theta[k] * Lk
    return L


class Case:
    def __init__(self, kind, H=3, D=16, R=12, interleaved=0, per_head=0, nc_rank=4):
        self.cfg = Config()
        lib.grape_pe_config_default(C.byref(self.cfg), H, D)
        self.cfg.rot, self.cfg.rotary_dim, self.cfg.interleaved = KINDS[kind], R, interleaved
        self.cfg.per_head, self.cfg.nc_rank = per_head, nc_rank
        self.kind, self.H, self.D, self.R, self.il = kind, H, D, R, interleaved
        self.pe = VP()
        assert lib.grape_pe_create(C.byref(self.pe), C.byref(self.cfg)) == 0
        self.np = lib.grape_pe_num_params(self.pe)
        self.params = np.zeros(max(self.np, 1), np.float32)
        lib.grape_pe_init_params(self.pe, fptr(self.params), 1)
        self.npair = (nc_rank if kind == "grape-m-nc" else R) // 2
        self.nset = H if per_head and kind in ("grape-m", "grape-m-basis", "grape-m-nc") else 1
        nf = self.nset * self.npair if kind.startswith("grape-m") else 0
        scale = 1.0 if kind == "grape-m-ctx" else 16.0
        self.params[:nf] += (rng.standard_normal(nf) * 0.1 * scale).astype(np.float32)
        self.params[nf:self.np] += (rng.standard_normal(self.np - nf) * 0.3).astype(np.float32)
        self.nf = nf
        assert lib.grape_pe_prepare(self.pe, fptr(self.params)) == 0

    def theta_frames(self, p):
        """Per set: (theta, frame) in torch from the parameter vector p (float64 tensor)."""
        R, npair = self.R, self.npair
        out = []
        for s in range(self.nset):
            if self.kind in ("rope", "xpos"):
                theta = torch.tensor([10000.0 ** (-2.0 * i / R) for i in range(npair)])
            else:
                lam = p[s * npair:(s + 1) * npair]
                theta = torch.exp(lam if self.kind == "grape-m-ctx" else lam / 16.0)
            frame = torch.eye(R)
            if self.kind in ("grape-m-basis", "grape-m-nc"):
                nskew = (self.np - self.nf) // self.nset
                sk = p[self.nf + s * nskew:self.nf + (s + 1) * nskew]
                A = skew_basis(sk, R) if self.kind == "grape-m-basis" else skew_nc(sk, R, 2 * npair, self.il)
                frame = cayley(A)[:, :2 * npair]
            out.append((theta, frame))
        return out

    def reference(self, x, p, mult, pos, anchor, side):
        """y = G(mult) x (B,T,H,D) with matrix_exp; xPos scales each pair by zeta^(+-(n-c)/512)."""
        B, T, H, D = x.shape
        sets = self.theta_frames(p)
        ys = []
        for h in range(H):
            theta, frame = sets[h if self.nset > 1 else 0]
            L = generator(theta, frame, self.il, D)
            m = mult[:, :, h] if mult.dim() == 3 else mult
            G = torch.matrix_exp(m[..., None, None] * L)  # (B,T,D,D)
            y = (G @ x[:, :, h, :, None])[..., 0]
            if self.kind == "xpos":
                zeta = torch.tensor([(2 * i + 0.4 * self.R) / (1.4 * self.R) for i in range(self.npair)])
                e = (pos - anchor) / 512.0 * (1 if side == 0 else -1)
                sc = torch.ones(T, D)
                for k, (i0, i1) in enumerate(pairs(self.npair, self.il)):
                    sc[:, i0] = zeta[k] ** e
                    sc[:, i1] = zeta[k] ** e
                y = y * sc
            ys.append(y)
        return torch.stack(ys, dim=2)


def run_rotation(kind, interleaved=0, per_head=0, side=0, B=2, T=5, pos0=3):
    c = Case(kind, interleaved=interleaved, per_head=per_head)
    H, D = c.H, c.D
    tag = f"{kind}{' interleaved' if interleaved else ''}{' per-head' if per_head else ''} {'qk'[side]}"
    x, w = f32((B, T, H, D)), f32((B, T, H, D))
    hp = H if (per_head and kind == "grape-m-ctx") else 1
    logit = f32((B, T, hp), 20.0)
    phase = np.zeros((B, T, hp))
    if kind == "grape-m-ctx":
        lib.grape_phase_forward(dptr(phase), fptr(logit), c.pe, B, T)
    anchor = pos0 + T // 2
    pos = Positions(pos0=pos0, xpos_anchor=anchor, phase=dptr(phase) if kind == "grape-m-ctx" else None)
    y = np.zeros_like(x)
    lib.grape_rot_forward(fptr(y), fptr(x), c.pe, C.byref(pos), side, B, T)
    dx, dp, dph = np.zeros_like(x), np.zeros(max(c.np, 1), np.float32), np.zeros_like(phase)
    st = lib.grape_rot_backward(fptr(dx), fptr(dp), dptr(dph), fptr(w), fptr(x), c.pe, C.byref(pos), side, B, T)
    dlogit = np.zeros_like(logit)
    if kind == "grape-m-ctx":
        lib.grape_phase_backward(fptr(dlogit), dptr(dph), fptr(logit), c.pe, B, T)
    # torch reference
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    pt = torch.tensor(c.params[:c.np], dtype=torch.float64, requires_grad=True)
    lt = torch.tensor(logit, dtype=torch.float64, requires_grad=True)
    posv = torch.arange(T, dtype=torch.float64) + pos0
    if kind == "grape-m-ctx":
        om = torch.sigmoid(lt / 16.0)
        mult = torch.cumsum(om, dim=1) - om  # exclusive
        mult = mult if hp > 1 else mult[..., 0]
    else:
        mult = posv.expand(B, T)
    yt = c.reference(xt, pt, mult, posv, anchor, side)
    (torch.tensor(w, dtype=torch.float64) * yt).sum().backward()
    check(f"torch {tag}: forward (matrix_exp oracle)", rel_err(y, yt), 2e-6)
    check(f"torch {tag}: dx vs autograd", 1.0 if st else rel_err(dx, xt.grad), 1e-4)
    if c.nf:
        check(f"torch {tag}: dlog_freq vs autograd", rel_err(dp[:c.nf], pt.grad[:c.nf]), 1e-4)
    if c.np > c.nf:
        check(f"torch {tag}: dskew vs autograd", rel_err(dp[c.nf:c.np], pt.grad[c.nf:]), 1e-4)
    if kind == "grape-m-ctx":
        check(f"torch {tag}: dlogit (through the phase) vs autograd", rel_err(dlogit, lt.grad), 1e-4)
    lib.grape_pe_free(c.pe)


def run_plane(s_small=None):
    N, D = 6, 10
    a, b, x, w = f32(D, 0.6), f32(D, 0.6), f32((N, D)), f32((N, D))
    if s_small is not None:  # |a| = 1, b = s * u with u orthogonal to a: s = |a||b| sin = s_small
        a = (a / np.linalg.norm(a)).astype(np.float32)
        u = b - a * (a @ b)
        b = (s_small * u / np.linalg.norm(u)).astype(np.float32)
    omega = 0.37
    pos = np.array([0, 1, -3, 7.5, 100, -41.0])
    y = np.zeros_like(x)
    lib.grape_plane_forward(fptr(y), fptr(x), fptr(a), fptr(b), omega, dptr(pos), N, D)
    dx, da, db, dom = np.zeros_like(x), np.zeros_like(a), np.zeros_like(b), np.zeros(1, np.float32)
    lib.grape_plane_backward(fptr(dx), fptr(da), fptr(db), fptr(dom), fptr(w), fptr(x), fptr(a), fptr(b), omega,
                             dptr(pos), N, D)
    at, bt, xt = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b, x))
    ot = torch.tensor(float(np.float32(omega)), dtype=torch.float64, requires_grad=True)
    L = torch.outer(at, bt) - torch.outer(bt, at)
    G = torch.matrix_exp(torch.tensor(pos)[:, None, None] * ot * L)
    yt = (G @ xt[..., None])[..., 0]
    # the loss drops the identity so tiny-s gradients are not swamped by rounding of the x term
    (torch.tensor(w, dtype=torch.float64) * (yt - xt)).sum().backward()
    tag = "random a, b" if s_small is None else f"s = {s_small:g}"
    check(f"torch plane {tag}: forward (matrix_exp)", rel_err(y, yt), 2e-6)
    check(f"torch plane {tag}: dx vs autograd", rel_err(dx, xt.grad + torch.tensor(w, dtype=torch.float64)), 1e-4)
    check(f"torch plane {tag}: da vs autograd", rel_err(da, at.grad), 1e-4)
    check(f"torch plane {tag}: db vs autograd", rel_err(db, bt.grad), 1e-4)
    check(f"torch plane {tag}: domega vs autograd", rel_err(dom, ot.grad.reshape(1)), 1e-4)


for kind in KINDS:
    for il in (0, 1):
        run_rotation(kind, interleaved=il, side=il)
for kind in ("grape-m", "grape-m-ctx", "grape-m-basis", "grape-m-nc"):
    run_rotation(kind, per_head=1)
run_plane()
for s in (1e-3, 1e-5, 1e-9):
    run_plane(s)
finish()
