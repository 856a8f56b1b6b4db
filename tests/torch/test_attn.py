"""The fused causal attention (grape_attn_forward / grape_attn_backward) against a PyTorch float64 reference
written from the spec: materialised bias b(t,j) from the factors (grape.h closed forms; GRAPE-AP as
slope * sum_{l=j+1..t} logsigmoid(<p_t, r_l>/P)), causal (or LEX BCA block) mask, softmax, autograd.
Forward out and lse, backward dq, dk, dv and every factor gradient; tolerance 1e-4 normwise relative."""
import ctypes as C

import numpy as np
import torch
import torch.nn.functional as F

from common import FP, VP, Opts, bind_bias, bind_pe, channels, check, finish, fptr, load_lib, parse_pe, rel_err

lib = load_lib()
TOL = 1e-4


bind_pe(lib)
bind_bias(lib)
lib.grape_attn_forward.argtypes = [FP, FP, FP, FP, FP, VP, C.POINTER(Opts)] + [C.c_int] * 4
lib.grape_attn_backward.argtypes = [FP, FP, FP, VP, FP, FP, FP, FP, FP, FP, VP, C.POINTER(Opts)] + [C.c_int] * 4


def make_factors(kind, B, T, H, P, g):
    f = {}
    if kind != "none" and kind != "fox":
        f["slope"] = torch.rand(H, generator=g) * 0.5 + 0.05
    if kind in ("grape-a-q", "grape-a-qk"):
        f["gate_q"] = torch.rand(B, T, H, generator=g) * 1.4 + 0.1
    if kind in ("grape-a-k", "grape-a-qk"):
        f["gate_k"] = torch.rand(B, T, H, generator=g) * 1.4 + 0.1
    if kind == "fox":
        f["cum"] = torch.cumsum(F.logsigmoid(2 + 1.5 * torch.randn(B, T, H, generator=g)), dim=1)
    if kind == "grape-ap":
        f["probe_q"] = 2 * torch.randn(B, T, H, P, generator=g)
        f["probe_k"] = torch.randn(B, T, H, P, generator=g)
    # float32-representable values, so both sides see the same inputs (cum stays double in the C API)
    return {k: (v if k == "cum" else v.float().double()) for k, v in f.items()}


def bias_ref(kind, f, B, T, H, P):
    """b[b,h,t,j] for j <= t (0 elsewhere; the mask is added separately)."""
    t = torch.arange(T, dtype=torch.float64)
    d = (t[:, None] - t[None, :])  # t - j
    if kind == "none":
        return torch.zeros(B, H, T, T)
    if kind == "alibi":
        return (-f["slope"][:, None, None] * d).expand(B, H, T, T)
    if kind.startswith("grape-a-"):
        lam = torch.zeros(B, H, T, T)
        if "gate_q" in f:
            lam = lam + f["gate_q"].permute(0, 2, 1)[:, :, :, None]
        if "gate_k" in f:
            lam = lam + f["gate_k"].permute(0, 2, 1)[:, :, None, :]
        return -f["slope"][None, :, None, None] * d * lam
    if kind == "fox":
        c = f["cum"].permute(0, 2, 1)
        return c[:, :, :, None] - c[:, :, None, :]
    # grape-ap: psi[t,l] = logsigmoid(<p_t, r_l>/P) for l <= t; b(t,j) = slope * sum_{l>j} psi[t,l]
    psi = F.logsigmoid(torch.einsum("bthp,blhp->bhtl", f["probe_q"], f["probe_k"]) / P)
    psi = psi * (d >= 0)
    suffix = torch.flip(torch.cumsum(torch.flip(psi, [-1]), -1), [-1])  # sum_{l>=j}
    return f["slope"][None, :, None, None] * (suffix - psi)


def visible(T, W):
    t = torch.arange(T)
    ok = t[None, :] <= t[:, None]
    if W and T > W:
        h = W // 2
        lo = torch.clamp((t // h - 1) * h, min=0)
        ok = ok & (t[None, :] >= lo[:, None])
    return ok


def c_arr(x, dtype=np.float32):
    return np.ascontiguousarray(x.detach().numpy().astype(dtype))


def run(kind, B, T, H, D, W, seed):
    P = 8
    g = torch.Generator().manual_seed(seed)
    q, k, v, dout = (torch.randn(B, T, H, D, generator=g).float().double() for _ in range(4))
    f = make_factors(kind, B, T, H, P, g)
    leaves = [q, k, v] + list(f.values())
    for x in leaves:
        x.requires_grad_(True)
    scale = 1.0 / np.sqrt(D)
    s = torch.einsum("bthd,bjhd->bhtj", q, k) * scale + bias_ref(kind, f, B, T, H, P)
    s = s.masked_fill(~visible(T, W), float("-inf"))
    lse = torch.logsumexp(s, -1)
    out = torch.einsum("bhtj,bjhd->bthd", torch.softmax(s, -1), v)
    (out * dout).sum().backward()

    cq, ck, cv, cdo = (c_arr(x) for x in (q, k, v, dout))
    # The factors: a handle bound by the library for the kind (its channel list), filled here by channel name.
    cfg = parse_pe(lib, "nope" if kind == "none" else kind)
    cfg.n_heads, cfg.head_dim, cfg.ap_probe_dim = H, D, P
    pe = VP()
    assert lib.grape_pe_create(C.byref(pe), C.byref(cfg)) == 0
    ws = np.zeros(lib.grape_bias_workspace_bytes(pe, B, T) // 8 + 8)
    gws = np.zeros_like(ws)
    fac = VP()
    assert lib.grape_bias_factors_bind(C.byref(fac), ws.ctypes.data, pe, 0, B, T) == 0
    views = channels(lib, fac)
    check(f"{kind}: the library's channels are the kind's", float(sorted(views) != sorted(f)), 0)
    for n, x in f.items():
        views[n][...] = x.detach().numpy()
    opts = Opts(scale=0.0, bca_window=W)
    o = np.zeros_like(cq)
    l = np.zeros((B, H, T), np.float32)
    fp = fac if kind != "none" else None
    st = lib.grape_attn_forward(fptr(o), fptr(l), fptr(cq), fptr(ck), fptr(cv), fp, C.byref(opts), B, T, H, D)
    tag = f"{kind} B{B} T{T} H{H} D{D} W{W}"
    check(f"{tag} forward status", float(st), 0)
    check(f"{tag} out", rel_err(o, out), TOL)
    check(f"{tag} lse", rel_err(l, lse), TOL)

    dq, dk, dv = np.zeros_like(cq), np.zeros_like(cq), np.zeros_like(cq)
    grads = VP()
    assert lib.grape_bias_grads_bind(C.byref(grads), gws.ctypes.data, fac) == 0
    gr = channels(lib, grads, grads=True)
    gp = grads if kind != "none" else None
    st = lib.grape_attn_backward(fptr(dq), fptr(dk), fptr(dv), gp, fptr(cdo), fptr(o), fptr(l), fptr(cq), fptr(ck),
                                 fptr(cv), fp, C.byref(opts), B, T, H, D)
    check(f"{tag} backward status", float(st), 0)
    for name, got, ref in [("dq", dq, q.grad), ("dk", dk, k.grad), ("dv", dv, v.grad)] + \
            [("d" + n, gr[n], f[n].grad) for n in f]:
        check(f"{tag} {name}", rel_err(got, ref), TOL)
    lib.grape_pe_free(pe)


run("none", 2, 100, 3, 32, 0, 1)
run("alibi", 1, 130, 3, 64, 0, 2)
run("fox", 2, 150, 2, 64, 0, 3)
run("grape-a-qk", 1, 90, 2, 32, 0, 4)
run("grape-ap", 1, 200, 2, 64, 0, 5)
run("grape-ap", 1, 160, 2, 32, 64, 6)  # BCA
run("fox", 1, 190, 1, 64, 100, 7)      # BCA, h = 50 not dividing the tile
finish()
