"""The additive encodings (alibi, fox, grape-a, grape-a-k/q/qk, grape-ap in its official, paper and relative forms) and
KV-shift against PyTorch float64 references written from the papers and the official code
(github.com/model-architectures/GRAPE: model/llama-mha-alibi.py, -fox.py, -grape-a-*.py, -grape-ap-v1.py,
kv_shift.py), forward and autograd backward: L = sum(W * bias) over the causal entries, C gradients from
grape_bias_block_backward + grape_bias_factors_backward."""
import ctypes as C
import math

import numpy as np
import torch
import torch.nn.functional as F

from common import Config, FP, VP, bias_kind, bind_bias, bind_pe, check, finish, fptr, load_lib, token_inputs

lib = load_lib(testing=True)


bind_pe(lib)
bind_bias(lib)
lib.grape_bias_block.argtypes = [FP, VP] + [C.c_int] * 6
lib.grape_bias_block_backward.argtypes = [VP, FP, VP] + [C.c_int] * 6
lib.grape_kv_shift_forward.argtypes = [FP, FP, FP] + [C.c_int] * 4
lib.grape_kv_shift_backward.argtypes = [FP, FP, FP, FP, FP] + [C.c_int] * 4


def alibi_slopes(H):
    """Press et al.: 2^(-8h/n') for n' = 2^floor(log2 H), then every other slope of the 2n' set."""
    n = 2 ** int(math.floor(math.log2(H)))
    base = [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]
    extra = [2.0 ** (-(8.0 / n) * (j - 0.5)) for j in range(1, H - n + 1)]
    return torch.tensor(base + extra)


def rot_half(x, angle):
    """Official half-split rotation, base 1: y1 = a cos + b sin, y2 = -a sin + b cos; x (B,T,H,P), angle (T)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    c, s = torch.cos(angle)[None, :, None, None], torch.sin(angle)[None, :, None, None]
    return torch.cat([a * c + b * s, -a * s + b * c], dim=-1)


def ref_bias(kind, form, params, q, k, gate, probe, pos0):
    """(B,H,T,T) bias from the spec; -inf above the diagonal."""
    B, T, H, D = q.shape
    m = alibi_slopes(H)
    t = torch.arange(T, dtype=torch.float64)
    dist = t[:, None] - t[None, :]
    if kind == "alibi":
        bias = (-m[:, None, None] * dist).expand(B, H, T, T)
    elif kind == "grape-a" or kind.startswith("grape-a-"):
        omega = F.softplus(params["rho"]) * m
        lam = torch.zeros(B, H, T, T) if "u" in params or "v" in params else torch.ones(B, H, T, T)
        for name, x, side in (("u", k, "k"), ("v", q, "q")):
            if name not in params:
                continue
            w = params[name] / params[name].norm(dim=-1, keepdim=True).clamp_min(1e-6)
            g = F.softplus(torch.einsum("bthd,hd->bht", x, w) / math.sqrt(D))
            lam = lam + (g[..., None, :] if side == "k" else g[..., :, None])
        bias = -omega[None, :, None, None] * dist * lam
    elif kind == "fox":
        c = torch.cumsum(F.logsigmoid(gate), dim=1).permute(0, 2, 1)  # (B,H,T)
        bias = c[..., :, None] - c[..., None, :]
    else:  # grape-ap
        P = probe.shape[-1]
        angle = pos0 + t
        p_hat = probe / torch.sqrt((probe ** 2).mean(-1, keepdim=True) + 2.0 ** -7)
        r = rot_half(p_hat, angle)
        pq = (probe, p_hat, r)[form]  # official: raw p_t; paper: <p^_t, R_l p^_l>; relative: <R_t p^_t, R_l p^_l>
        S = torch.einsum("bthp,blhp->bhtl", pq, r) / P
        a = m[None, :, None, None] * F.logsigmoid(S) * (dist >= 0)  # a(t,l), zero for l > t
        later = (t[None, :] > t[:, None]).double()  # [j, l] = l > j
        bias = a @ later.T  # b(t,j) = sum_l a(t,l) [l > j]
    return torch.where(dist >= 0, bias, torch.tensor(-math.inf))


def run_case(kind, form, B, T, H, D, P, pos0, seed):
    label = f"{kind}{('', '(paper)', '(relative)')[form]} B{B} T{T} H{H} D{D} P{P}"
    rng = np.random.default_rng(seed)
    cfg = Config()
    lib.grape_pe_config_default(C.byref(cfg), H, D)
    if not check(f"{label}: config layout matches grape.h (n_heads, rope_base, ap_probe_dim, xpos_gamma)",
                 abs(cfg.n_heads - H) + abs(cfg.rope_base - 1e4) + abs(cfg.ap_probe_dim - 8) +
                 abs(cfg.xpos_gamma - 0.4), 0.0):
        return
    cfg.bias, cfg.ap_probe_dim, cfg.ap_form = bias_kind(lib, kind), P, form
    pe = VP()
    assert lib.grape_pe_create(C.byref(pe), C.byref(cfg)) == 0
    n_params = lib.grape_pe_num_params(pe)
    params = rng.normal(0, 0.6, n_params).astype(np.float32)
    names = {}
    for i in range(lib.grape_pe_num_param_tensors(pe)):
        info = lib.grape_pe_param_tensor(pe, i).contents
        size = int(np.prod(info.shape[:info.ndim]))
        names[info.name.decode()] = (info.offset, size, tuple(info.shape[:info.ndim]))
    assert lib.grape_pe_prepare(pe, fptr(params) if n_params else None) == 0
    q = rng.normal(0, 1, (B, T, H, D)).astype(np.float32)
    k = rng.normal(0, 1, (B, T, H, D)).astype(np.float32)
    gate = rng.normal(0, 2, (B, T, H)).astype(np.float32)
    probe = rng.normal(0, 1, (B, T, H, P)).astype(np.float32)
    W = rng.normal(0, 1, (B, H, T, T)).astype(np.float32)

    ws = np.zeros(lib.grape_bias_workspace_bytes(pe, B, T) // 8 + 8)
    gws = np.zeros_like(ws)
    tin = token_inputs(lib, pe, {"gate": gate, "probe": probe.reshape(B, T, H * P)})
    f = VP()
    assert lib.grape_bias_factors_forward(C.byref(f), ws.ctypes.data, pe, fptr(q), fptr(k), tin, pos0, B, T) == 0
    got = np.zeros((B, H, T, T), np.float32)
    for b in range(B):
        for h in range(H):
            blk = np.zeros((T, T), np.float32)
            lib.grape_bias_block(fptr(blk), f, b, h, 0, T, 0, T)
            got[b, h] = blk

    def leaf(a):
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    tp = {n: leaf(params[o:o + s].reshape(sh)) for n, (o, s, sh) in names.items()}
    tq, tk, tg, tpr = leaf(q), leaf(k), leaf(gate), leaf(probe)
    ref = ref_bias(kind, form, tp, tq, tk, tg, tpr, float(pos0))
    causal = torch.isfinite(ref)
    check(f"{label}: -inf pattern", float((np.isfinite(got) != causal.numpy()).sum()), 0.0)
    check(f"{label}: bias vs torch float64", float(np.abs(got[causal.numpy()] - ref[causal].detach().numpy()).max()
                                                   / ref[causal].abs().max()), 1e-5)

    loss = (torch.tensor(W, dtype=torch.float64) * torch.where(causal, ref, torch.zeros(()))).sum()
    leaves = [tq, tk, tg, tpr] + list(tp.values())
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else [None] * len(leaves)

    g = VP()
    assert lib.grape_bias_grads_bind(C.byref(g), gws.ctypes.data, f) == 0
    for b in range(B):
        for h in range(H):
            wb = np.ascontiguousarray(W[b, h])
            lib.grape_bias_block_backward(g, fptr(wb), f, b, h, 0, T, 0, T)
    dparams = np.zeros(max(n_params, 1), np.float32)
    dq, dk = np.zeros_like(q), np.zeros_like(k)
    dgate, dprobe = np.zeros_like(gate), np.zeros_like(probe)
    din = token_inputs(lib, pe, {"gate": dgate, "probe": dprobe.reshape(B, T, H * P)})
    assert lib.grape_bias_factors_backward(fptr(dparams), fptr(dq), fptr(dk), din, g, f, pe, fptr(q), fptr(k),
                                           tin) == 0
    c_grads = [dq, dk, dgate, dprobe] + [dparams[o:o + s].reshape(sh) for (o, s, sh) in names.values()]
    for name, ref_g, got_g in zip(["dq", "dk", "dgate_logit", "dprobe"] + ["d" + n for n in names], grads, c_grads):
        if ref_g is None:  # the kind does not read this input: the C gradient must stay exactly zero
            check(f"{label}: {name} unused, stays zero", float(np.abs(got_g).max()), 0.0)
        else:
            num = float(np.abs(got_g - ref_g.numpy()).max())
            den = float(ref_g.abs().max())
            check(f"{label}: {name} vs torch autograd", num / den if den > 0 else num, 1e-4)
    lib.grape_pe_free(pe)


def kv_shift_case(B, T, H, D, seed):
    rng = np.random.default_rng(seed)
    o = rng.normal(0, 1, (B, T, H, D)).astype(np.float32)
    logit = rng.normal(0, 2, (B, T, H)).astype(np.float32)
    dy = rng.normal(0, 1, (B, T, H, D)).astype(np.float32)
    y = np.zeros_like(o)
    assert lib.grape_kv_shift_forward(fptr(y), fptr(o), fptr(logit), B, T, H, D) == 0
    to = torch.tensor(o, dtype=torch.float64, requires_grad=True)
    tl = torch.tensor(logit, dtype=torch.float64, requires_grad=True)
    a = torch.sigmoid(tl)[..., None]
    prev = torch.cat([torch.zeros_like(to[:, :1]), to[:, :-1]], dim=1)
    ref = a * prev + (1 - a) * to
    check(f"kv-shift B{B} T{T} H{H} D{D}: forward vs torch", float(np.abs(y - ref.detach().numpy()).max()), 1e-6)
    go, gl = torch.autograd.grad((ref * torch.tensor(dy, dtype=torch.float64)).sum(), [to, tl])
    do, dl = np.zeros_like(o), np.zeros_like(logit)
    assert lib.grape_kv_shift_backward(fptr(do), fptr(dl), fptr(dy), fptr(o), fptr(logit), B, T, H, D) == 0
    check(f"kv-shift B{B} T{T} H{H} D{D}: do vs torch autograd",
          float(np.abs(do - go.numpy()).max() / go.abs().max()), 1e-4)
    check(f"kv-shift B{B} T{T} H{H} D{D}: dlogit vs torch autograd",
          float(np.abs(dl - gl.numpy()).max() / gl.abs().max()), 1e-4)


for i, (kind, form) in enumerate([("alibi", 0), ("fox", 0), ("grape-a-k", 0), ("grape-a-q", 0),
                                  ("grape-a-qk", 0), ("grape-ap", 0), ("grape-ap", 1), ("grape-ap", 2),
                                  ("grape-a", 0)]):
    run_case(kind, form, 2, 13, 5, 16, 8, 37 + i, 100 + i)
    run_case(kind, form, 1, 9, 3, 8, 4, 0, 200 + i)
kv_shift_case(2, 11, 3, 16, 7)
finish()
