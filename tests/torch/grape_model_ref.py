"""grape_model_ref.py — a PyTorch re-implementation of libgrape's byte-level Llama-style model (the backbone of the
official GRAPE code, github.com/model-architectures/GRAPE model/llama-mha-*.py), written from the papers and that
code, not from the C code, so it can serve as the oracle of tests/torch/test_model.py and as the PyTorch peer of
`grape bench train`.

    cfg = Config.from_name("grape-m+grape-ap", n_layer=4, n_embd=256, n_head=4)
    model = GrapeLM(cfg)                      # parameters named exactly as the C model's tensors
    model.load({"wte": array, ...})           # e.g. from grape_model_tensor()/grape_model_params() or a checkpoint
    logits, loss = model(tokens, targets)     # tokens, targets: (B,T) int64

Conventions (official code): half-split rotary pairs (i, i+R/2) with y_i = a cos + b sin, y_{i+R/2} = -a sin + b cos;
rotate-then-QK-RMSNorm for rotations, QK-RMSNorm-then-xPos for xpos; biases added after the 1/sqrt(D) scale.
grape-m-basis is the spec's order q -> B R(n theta) B^T q, then QK-RMSNorm (basis_folded=True: the outer B dropped).
ROT+grape-a-* gates read QK-RMSNorm of the un-rotated q, k (GRAPE App. E). qk_gain="pair": q_norm/k_norm hold one
gain per rotation pair (then the tail dims), shared by both coordinates of the pair.
The fused projection's extra rows are separate tensors here: attn.w_phase (+b_phase), attn.w_gate (+b_gate),
attn.w_probe. Works in whatever dtype the loaded tensors have (float64 for tests).
"""
import math
import re

import torch
import torch.nn.functional as F

ROTATIONS = ("nope", "rope", "xpos", "grape-m", "grape-m-ctx", "grape-m-basis")
BIASES = ("alibi", "fox", "grape-a-k", "grape-a-q", "grape-a-qk", "grape-ap", "grape-a")
EPS = 1e-5
AP_RMS_EPS = 2.0 ** -7  # torch F.rms_norm default eps in bf16 (official GRAPE-AP v1)
CTX_OMEGA_SCALE = 16.0


class Config:
    def __init__(self, n_layer, n_embd, n_head, vocab_size=256, rot="nope", bias="none", rope_base=10000.0,
                 xpos_gamma=0.4, xpos_scale_base=512.0, log_freq_scale=16.0, ap_probe_dim=8, kv_shift=False,
                 basis_folded=False, qk_gain="dim", pos0=0):
        assert n_embd % n_head == 0, "n_embd must be divisible by n_head"
        self.n_layer, self.n_embd, self.n_head, self.vocab_size = n_layer, n_embd, n_head, vocab_size
        self.head_dim = n_embd // n_head
        self.hidden = (8 * n_embd) // 3
        self.rot, self.bias = rot, bias
        self.rope_base, self.xpos_gamma, self.xpos_scale_base = rope_base, xpos_gamma, xpos_scale_base
        self.log_freq_scale, self.ap_probe_dim, self.kv_shift = log_freq_scale, ap_probe_dim, kv_shift
        self.basis_folded, self.qk_gain, self.pos0 = basis_folded, qk_gain, pos0

    def gain_size(self):
        return self.head_dim // 2 if self.qk_gain == "pair" else self.head_dim

    @staticmethod
    def from_name(name, **kw):
        """Parse "rot", "bias" or "rot+bias" (e.g. "grape-m+grape-ap") like grape_pe_parse. Options after a
        part (":key=value,...") are dropped: the caller passes the values it supports as keywords."""
        rot, bias = "nope", "none"
        for part in re.split(r"\+(?=[a-z])", name):
            part = part.split(":")[0]
            if part in BIASES:
                bias = part
            elif part in ROTATIONS:
                rot = part
            else:
                raise ValueError(f"unknown or unsupported encoding '{part}'")
        return Config(rot=rot, bias=bias, **kw)

    def token_channels(self):
        """Rows of the fused projection after q|k|v: (phase, gate, probe, shift)."""
        H = self.n_head
        return (1 if self.rot == "grape-m-ctx" else 0, H if self.bias == "fox" else 0,
                H * self.ap_probe_dim if self.bias == "grape-ap" else 0, H if self.kv_shift else 0)


def alibi_slopes(H):
    """ALiBi's standard recipe: 2^(-8h/H) for H a power of two, else the closest power's slopes plus the
    even-indexed slopes of twice that power."""
    def pow2(n):
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(H).is_integer():
        return pow2(H)
    c = 2 ** math.floor(math.log2(H))
    return pow2(c) + pow2(2 * c)[0::2][: H - c]


def rmsnorm(x, g):
    return g * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)


def rotate_half_split(x, cos, sin):
    """Official sign on half-split pairs: y_i = a cos + b sin, y_{i+R/2} = -a sin + b cos."""
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat([a * cos + b * sin, -a * sin + b * cos], dim=-1)


class GrapeLM(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.names = self._tensor_shapes()
        self.params = torch.nn.ParameterDict(
            {self._key(n): torch.nn.Parameter(torch.zeros(s)) for n, s in self.names.items()})

    @staticmethod
    def _key(name):
        return name.replace(".", "__")  # ParameterDict keys cannot contain '.'

    def _tensor_shapes(self):
        c = self.cfg
        C, H, D, Fh, V = c.n_embd, c.n_head, c.head_dim, c.hidden, c.vocab_size
        ph, gt, pr, sh = c.token_channels()
        shapes = {"wte": (V, C)}
        for l in range(c.n_layer):
            p = f"layers.{l}"
            shapes[f"{p}.ln1.weight"] = (C,)
            for nm, rows in (("wq", C), ("wk", C), ("wv", C), ("w_phase", ph), ("w_gate", gt), ("w_probe", pr),
                             ("w_shift_k", sh), ("w_shift_v", sh)):
                if rows:
                    shapes[f"{p}.attn.{nm}"] = (rows, C)
            if ph:
                shapes[f"{p}.attn.b_phase"] = (ph,)
            if gt:
                shapes[f"{p}.attn.b_gate"] = (gt,)
            shapes[f"{p}.attn.q_norm.weight"] = (c.gain_size(),)
            shapes[f"{p}.attn.k_norm.weight"] = (c.gain_size(),)
            shapes[f"{p}.attn.wo"] = (C, C)
            if c.rot in ("grape-m", "grape-m-ctx", "grape-m-basis"):
                shapes[f"{p}.pe.log_freq"] = (D // 2,)
            if c.rot == "grape-m-basis":
                shapes[f"{p}.pe.basis_skew"] = (D * (D - 1) // 2,)
            if c.bias == "grape-a" or c.bias.startswith("grape-a-"):
                shapes[f"{p}.pe.rho"] = (H,)
                if c.bias in ("grape-a-k", "grape-a-qk"):
                    shapes[f"{p}.pe.u"] = (H, D)
                if c.bias in ("grape-a-q", "grape-a-qk"):
                    shapes[f"{p}.pe.v"] = (H, D)
            shapes[f"{p}.ln2.weight"] = (C,)
            shapes[f"{p}.mlp.w1"] = (Fh, C)
            shapes[f"{p}.mlp.w2"] = (Fh, C)
            shapes[f"{p}.mlp.w3"] = (C, Fh)
        shapes["ln_f.weight"] = (C,)
        return shapes

    def load(self, arrays, dtype=torch.float64):
        """Set every parameter from a name -> array dict (numpy or torch); missing or extra names are errors."""
        missing = set(self.names) - set(arrays)
        if missing:
            raise KeyError(f"missing tensors: {sorted(missing)[:5]}")
        for n, s in self.names.items():
            t = torch.as_tensor(arrays[n]).to(dtype).reshape(s)
            self.params[self._key(n)] = torch.nn.Parameter(t.clone())
        return self

    def init_official(self, seed=0):
        """Official init (§0) with torch's RNG (not bit-identical to the C init)."""
        c = self.cfg
        g = torch.Generator().manual_seed(seed)
        std, std_out = 0.5 / math.sqrt(c.n_embd), 0.5 / math.sqrt(c.n_embd) / math.sqrt(c.n_layer)
        arrays = {}
        for n, s in self.names.items():
            if n == "wte":
                arrays[n] = torch.randn(s, generator=g) * 0.02
            elif n.endswith("weight"):
                arrays[n] = torch.ones(s)
            elif n.endswith("attn.w_phase") or n.endswith("b_gate") or n.endswith("pe.basis_skew"):
                arrays[n] = torch.zeros(s)
            elif n.endswith("b_phase"):
                arrays[n] = torch.full(s, math.log(math.expm1(1e-3)))
            elif n.endswith("pe.log_freq"):
                i = torch.arange(s[0], dtype=torch.float64)
                lf = -(2.0 * i / c.head_dim) * math.log(c.rope_base)
                arrays[n] = lf * (1.0 if c.rot == "grape-m-ctx" else c.log_freq_scale)
            elif n.endswith("pe.rho"):
                arrays[n] = torch.full(s, math.log(math.e - 1.0))
            elif n.endswith("pe.u") or n.endswith("pe.v"):
                arrays[n] = torch.randn(s, generator=g) / math.sqrt(c.head_dim)
            else:
                sd = std_out if (n.endswith("attn.wo") or n.endswith("mlp.w3")) else std
                arrays[n] = torch.randn(s, generator=g) * sd
        return self.load(arrays, dtype=torch.get_default_dtype())

    def p(self, name):
        return self.params[self._key(name)]

    def named_grads(self):
        return {n: self.p(n).grad for n in self.names}

    # --- encodings

    def _theta(self, l):
        c = self.cfg
        i = torch.arange(c.head_dim // 2, dtype=self.p("wte").dtype)
        if c.rot in ("grape-m", "grape-m-basis"):
            return torch.exp(self.p(f"layers.{l}.pe.log_freq") / c.log_freq_scale)
        if c.rot == "grape-m-ctx":
            return torch.exp(self.p(f"layers.{l}.pe.log_freq"))
        return c.rope_base ** (-2.0 * i / c.head_dim)

    def gains(self, l):
        """(D) QK-RMSNorm gains of layer l; pair-tied gains are expanded to both coordinates of each pair."""
        pre = f"layers.{l}.attn"
        gq, gk = self.p(f"{pre}.q_norm.weight"), self.p(f"{pre}.k_norm.weight")
        if self.cfg.qk_gain == "pair":
            gq, gk = torch.cat([gq, gq]), torch.cat([gk, gk])  # half-split pairs (i, i+D/2)
        return gq, gk

    def _qk(self, q, k, l, phase_logit):
        """q, k: (B,T,H,D) projections -> final q~, k~ in the encoding's order."""
        c = self.cfg
        gq, gk = self.gains(l)
        T = q.shape[1]
        pos = c.pos0 + torch.arange(T, dtype=q.dtype)
        if c.rot == "nope":
            return rmsnorm(q, gq), rmsnorm(k, gk)
        theta = self._theta(l)
        if c.rot == "grape-m-ctx":
            omega = torch.sigmoid(phase_logit / CTX_OMEGA_SCALE)  # (B,T,1)
            phase = c.pos0 + torch.cumsum(omega, dim=1) - omega    # exclusive: Phi_0 = pos0
            ang = phase[..., None] * theta                          # (B,T,1,D/2)
        else:
            ang = (pos[:, None] * theta)[None, :, None, :]          # (1,T,1,D/2)
        cos, sin = torch.cos(ang), torch.sin(ang)
        if c.rot == "xpos":
            D = c.head_dim
            zeta = (2.0 * torch.arange(D // 2, dtype=q.dtype) + c.xpos_gamma * D) / ((1.0 + c.xpos_gamma) * D)
            e = (pos / c.xpos_scale_base)[None, :, None, None]
            sq, sk = zeta ** e, zeta ** (-e)
            q, k = rmsnorm(q, gq), rmsnorm(k, gk)
            return rotate_half_split(q, cos * sq, sin * sq), rotate_half_split(k, cos * sk, sin * sk)
        def rot(x):
            if c.rot != "grape-m-basis":
                return rotate_half_split(x, cos, sin)
            basis = self._basis(l)  # rows: x -> B^T x is x @ B; the spec keeps the outer B, the folded form drops it
            y = rotate_half_split(x @ basis, cos, sin)
            return y if c.basis_folded else y @ basis.T
        return rmsnorm(rot(q), gq), rmsnorm(rot(k), gk)

    def _basis(self, l):
        """B = Cayley(A) = (I + A)^-1 (I - A), A skew from the packed strictly-lower triangle (row-major)."""
        skew = self.p(f"layers.{l}.pe.basis_skew")
        D = self.cfg.head_dim
        rows, cols = torch.tril_indices(D, D, offset=-1)
        S = torch.zeros(D, D, dtype=skew.dtype).index_put((rows, cols), skew)
        A, eye = S - S.T, torch.eye(D, dtype=skew.dtype)
        return torch.linalg.solve(eye + A, eye - A)

    def _bias(self, l, q, k, gate_logit, probe):
        """(B,H,T,T) additive bias (without the causal mask) or None. q, k: final q~, k~ (B,T,H,D)."""
        c = self.cfg
        if c.bias == "none":
            return None
        B, T, H, D = q.shape
        pos = c.pos0 + torch.arange(T, dtype=q.dtype)
        dist = (pos[:, None] - pos[None, :]).clamp(min=0)            # (t, j): t - j, 0 above the diagonal
        m = torch.tensor(alibi_slopes(H), dtype=q.dtype)
        if c.bias == "alibi":
            return (-m[:, None, None] * dist)[None]
        if c.bias == "fox":
            cum = torch.cumsum(F.logsigmoid(gate_logit), dim=1)       # (B,T,H) inclusive
            cum = cum.permute(0, 2, 1)                                 # (B,H,T)
            return cum[..., :, None] - cum[..., None, :]
        if c.bias == "grape-a" or c.bias.startswith("grape-a-"):    # grape-a: no gate, lambda = 1
            pre = f"layers.{l}.pe"
            omega = F.softplus(self.p(f"{pre}.rho")) * m                # (H)
            lam = (torch.ones if c.bias == "grape-a" else torch.zeros)(B, H, T, T, dtype=q.dtype)
            def gate(x, w):
                w_hat = w / w.norm(dim=-1, keepdim=True).clamp(min=1e-6)
                return F.softplus((x * w_hat).sum(-1) / math.sqrt(D)).permute(0, 2, 1)  # (B,H,T)
            if c.bias in ("grape-a-k", "grape-a-qk"):
                lam = lam + gate(k, self.p(f"{pre}.u"))[..., None, :]
            if c.bias in ("grape-a-q", "grape-a-qk"):
                lam = lam + gate(q, self.p(f"{pre}.v"))[..., :, None]
            return -omega[None, :, None, None] * dist * lam
        # grape-ap (official v1): raw query probe vs rotated, RMS-normalised key probe, base-1 rotation.
        P = c.ap_probe_dim
        p = probe.reshape(B, T, H, P)
        p_hat = p * torch.rsqrt(p.pow(2).mean(-1, keepdim=True) + AP_RMS_EPS)
        ang = pos[None, :, None, None].expand(1, T, 1, P // 2)
        r = rotate_half_split(p_hat, torch.cos(ang), torch.sin(ang))  # (B,T,H,P)
        S = torch.einsum("bthp,blhp->bhtl", p, r) / P
        a = m[None, :, None, None] * F.logsigmoid(S)
        a = torch.where(pos[None, :] <= pos[:, None], a, torch.zeros_like(a))  # a(t,l), l <= t
        pref = torch.cumsum(a, dim=-1)                                  # sum_{l<=j} a(t,l)
        return pref.diagonal(dim1=-2, dim2=-1)[..., :, None] - pref     # sum_{l=j+1..t} a(t,l)

    # --- the model

    def _layer(self, x, l):
        c = self.cfg
        B, T, C = x.shape
        H, D = c.n_head, c.head_dim
        pre = f"layers.{l}"
        h = rmsnorm(x, self.p(f"{pre}.ln1.weight"))
        q = (h @ self.p(f"{pre}.attn.wq").T).view(B, T, H, D)
        k = (h @ self.p(f"{pre}.attn.wk").T).view(B, T, H, D)
        v = (h @ self.p(f"{pre}.attn.wv").T).view(B, T, H, D)
        ph, gt, pr, sh = c.token_channels()
        if sh:  # KV-shift: k'_t = a_t k_{t-1} + (1 - a_t) k_t, a = sigmoid(w_sk h); v with its own w_sv
            def shift(o, w):
                alpha = torch.sigmoid(h @ self.p(f"{pre}.attn.{w}").T)[..., None]  # (B,T,H,1)
                return (1 - alpha) * o + alpha * F.pad(o, (0, 0, 0, 0, 1, 0))[:, :-1]
            k, v = shift(k, "w_shift_k"), shift(v, "w_shift_v")
        phase_logit = h @ self.p(f"{pre}.attn.w_phase").T + self.p(f"{pre}.attn.b_phase") if ph else None
        gate_logit = h @ self.p(f"{pre}.attn.w_gate").T + self.p(f"{pre}.attn.b_gate") if gt else None
        probe = h @ self.p(f"{pre}.attn.w_probe").T if pr else None
        gq, gk = self.gains(l)
        qn, kn = rmsnorm(q, gq), rmsnorm(k, gk)  # what ROT+grape-a-* gates read: normalised, un-rotated
        q, k = self._qk(q, k, l, phase_logit)
        s = torch.einsum("bthd,bjhd->bhtj", q, k) / math.sqrt(D)
        gated = c.rot != "nope" and c.bias.startswith("grape-a-")
        bias = self._bias(l, qn if gated else q, kn if gated else k, gate_logit, probe)
        if bias is not None:
            s = s + bias
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        s = s.masked_fill(~causal, float("-inf"))
        y = torch.einsum("bhtj,bjhd->bthd", torch.softmax(s, dim=-1), v).reshape(B, T, C)
        x = x + y @ self.p(f"{pre}.attn.wo").T
        h = rmsnorm(x, self.p(f"{pre}.ln2.weight"))
        a = F.silu(h @ self.p(f"{pre}.mlp.w1").T) * (h @ self.p(f"{pre}.mlp.w2").T)
        return x + a @ self.p(f"{pre}.mlp.w3").T

    def forward(self, tokens, targets=None):
        x = self.p("wte")[tokens]
        for l in range(self.cfg.n_layer):
            x = self._layer(x, l)
        logits = rmsnorm(x, self.p("ln_f.weight")) @ self.p("wte").T
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss
