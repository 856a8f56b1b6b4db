"""grape_torch.py — a grape run directory as a PyTorch module (no build step; needs only torch and numpy).

    import grape_torch
    model = grape_torch.load("runs/tiny-rope")          # DIR/model.safetensors: weights + configuration
    logits = model(tokens)                              # tokens: (B,T) int64 bytes -> (B,T,256) logits
    bpb = grape_torch.bits_per_byte(model, b"In the beginning")
    model.state_dict()                                  # keys are grape's tensor names ("layers.0.attn.wq", ...)

The module computes what libgrape computes for every encoding, option and hybrid (tests/torch/test_grape_torch.py
checks logits against the C model, <= 1e-5 relative in float64), so a grape model can be inspected or fine-tuned
in PyTorch. It is an independent re-implementation from the papers and grape's documented conventions:

* Llama-style byte model: pre-norm RMSNorm (eps 1e-5), SwiGLU, tied embedding, no biases; the fused projection's
  extra rows (w_phase, w_gate, w_probe, w_shift_k, w_shift_v) are separate tensors as in the checkpoint.
* rotations act on the first R = rotary_dim dims of each head: half-split pairs (i, i+R/2) with the official GRAPE
  sign y_a = a cos + b sin, y_b = -a sin + b cos, or interleaved pairs (2i, 2i+1) with torchscale's / GPT-J's
  y_a = a cos - b sin, y_b = a sin + b cos; QK-RMSNorm after the rotation (before it for xpos), its gain per dim or
  tied within rotation pairs (qk_gain = pair: gain p for pair p, then one per tail dim);
* frequencies theta_i = base^(-2i/n) with PI / NTK / YaRN (llama.cpp constants, mscale on cos and sin);
  learned kinds theta = exp(log_freq / log_freq_scale) (grape-m-ctx: exp(log_freq)); grape-m-basis applies
  B R(n theta) B^T with B = Cayley(A) = (I + A)^-1 (I - A) (basis_folded: R(n theta) B^T only); grape-m-nc turns
  the rank-r frame E (first r columns of Cayley(A)): x + E (R(n theta) E^T x - E^T x);
* biases (added to the 1/sqrt(D)-scaled logits): ALiBi -m_h (t-j); FoX c_t - c_j with c the inclusive cumulative
  log sigmoid of the gate; GRAPE-A -softplus(rho_h) m_h (t-j) lambda with softplus gates of QKNorm(q), QKNorm(k)
  (in ROT+grape-a-* hybrids of the un-rotated q, k); GRAPE-AP m_h sum_{l=j+1..t} log sigmoid(<p_t, r_l>/P), r_l the
  RMS-normalised key probe turned by l radians per plane, p_t the raw probe (ap_form official), normalised
  (paper) or normalised and turned by t (relative);
* KV-shift: k_t <- a_t k_{t-1} + (1 - a_t) k_t with a = sigmoid(w_shift_k h), v likewise with its own gate
  w_shift_v, before rotation and norm.

Metadata values may be strings (safetensors convention) or numbers; enum options may be indices or names.
"""
import json
import math
import os
import re
import struct

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5                  # RMSNorm
AP_RMS_EPS = 2.0 ** -7      # GRAPE-AP key-probe normalisation
CTX_OMEGA_SCALE = 16.0      # grape-m-ctx: omega = sigmoid(logit / 16)
ENUMS = {"scaling": ("none", "linear", "ntk", "yarn"), "ap_form": ("official", "paper", "relative"),
         "qk_gain": ("dim", "pair")}
ROTATIONS = ("nope", "rope", "xpos", "grape-m", "grape-m-ctx", "grape-m-basis", "grape-m-nc")
BIASES = ("nope", "alibi", "fox", "grape-a-k", "grape-a-q", "grape-a-qk", "grape-ap", "grape-a")
# grape_pe_config options the module reads (defaults of grape_pe_config_default, for files that lack a key)
PE_DEFAULTS = {"rotary_dim": 0, "interleaved": 0, "rope_base": 10000.0, "scaling": 0, "scaling_factor": 1.0,
               "yarn_orig_ctx": 0, "yarn_ext_factor": -1.0, "yarn_attn_factor": 1.0, "yarn_beta_fast": 32.0,
               "yarn_beta_slow": 1.0, "xpos_gamma": 0.4, "xpos_scale_base": 512.0, "per_head": 0,
               "log_freq_scale": 16.0, "nc_rank": 8, "ap_probe_dim": 8, "ap_form": 0, "kv_shift": 0,
               "basis_folded": 0, "qk_gain": 0}


# ---------------------------------------------------------------------------------------------------------------
# Files

def read_safetensors(path):
    """(metadata dict, {name: float32 numpy array}) of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {e['dtype']}, grape writes F32")
        a, b = e["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(e["shape"]).copy()
    return meta, tensors


class Config:
    """Model shape and encoding from a checkpoint's metadata (string or numeric values)."""

    def __init__(self, meta):
        def num(key, default=None, kind=float):
            v = meta.get(key, default)
            if v is None:
                raise KeyError(f"checkpoint metadata lacks '{key}'")
            return kind(float(v)) if kind is int else kind(v)
        self.n_layer, self.n_embd = num("model.n_layer", kind=int), num("model.n_embd", kind=int)
        self.n_head, self.vocab = num("model.n_head", kind=int), num("model.vocab_size", 256, int)
        self.head_dim, self.hidden = self.n_embd // self.n_head, (8 * self.n_embd) // 3
        self.name = str(meta["pe.name"])
        parts = [p.split(":")[0] for p in re.split(r"\+(?=[a-z])", self.name)]
        self.rot = parts[0] if parts[0] in ROTATIONS else "nope"
        self.bias = parts[-1] if parts[-1] in BIASES and (len(parts) == 2 or parts[0] not in ROTATIONS) else "nope"
        # the pe.* keys, then the options on the canonical name (which carries every non-default one)
        values = {key: meta.get("pe." + key, default) for key, default in PE_DEFAULTS.items()}
        values.update(kv.split("=", 1) for kv in re.findall(r"[a-z_]+=[^,:]+?(?=,|\+[a-z]|$)", self.name))
        for key, default in PE_DEFAULTS.items():
            v = values[key]
            if key in ENUMS and isinstance(v, str) and v in ENUMS[key]:
                v = ENUMS[key].index(v)
            setattr(self, key, type(default)(float(v)) if isinstance(default, int) else float(v))
        self.R = self.rotary_dim or self.head_dim                    # rotated dims of a head
        self.frame = self.nc_rank if self.rot == "grape-m-nc" else self.R
        self.learned = self.rot.startswith("grape-m")
        self.nset = self.n_head if self.learned and self.rot != "grape-m-ctx" and self.per_head else 1

    def token_channels(self):
        """Rows of w_phase, w_gate, w_probe, w_shift_k, w_shift_v."""
        H = self.n_head
        return {"w_phase": (H if self.per_head else 1) if self.rot == "grape-m-ctx" else 0,
                "w_gate": H if self.bias == "fox" else 0,
                "w_probe": H * self.ap_probe_dim if self.bias == "grape-ap" else 0,
                "w_shift_k": H if self.kv_shift else 0, "w_shift_v": H if self.kv_shift else 0}

    def gain_index(self):
        """Head dim -> QK-RMSNorm gain index: identity, or (qk_gain = pair) pair p -> p, tail dim i -> R/2 + i - R."""
        D, R = self.head_dim, self.R
        if not self.qk_gain or self.rot == "nope":
            return torch.arange(D)
        idx = torch.empty(D, dtype=torch.long)
        for p in range(R // 2):
            idx[[2 * p, 2 * p + 1] if self.interleaved else [p, p + R // 2]] = p
        idx[R:] = torch.arange(R // 2, R // 2 + D - R)
        return idx


# ---------------------------------------------------------------------------------------------------------------
# Encodings

def rope_frequencies(cfg, n_dims):
    """(theta (n_dims/2) float64, mscale): RoPE with PI / NTK / YaRN (llama.cpp's rope_yarn)."""
    s, base = cfg.scaling_factor, cfg.rope_base
    if cfg.scaling == 2 and n_dims > 2:
        base = base * s ** (n_dims / (n_dims - 2.0))
    theta = base ** (-2.0 * torch.arange(n_dims // 2, dtype=torch.float64) / n_dims)
    if cfg.scaling == 1:
        theta = theta / s
    if cfg.scaling != 3:
        return theta, 1.0
    ext = 1.0 if cfg.yarn_ext_factor < 0 else cfg.yarn_ext_factor
    def corr(beta):
        return n_dims * math.log(cfg.yarn_orig_ctx / (beta * 2.0 * math.pi)) / (2.0 * math.log(cfg.rope_base))
    low, high = max(0.0, math.floor(corr(cfg.yarn_beta_fast))), min(n_dims - 1.0, math.ceil(corr(cfg.yarn_beta_slow)))
    ramp = (torch.arange(n_dims // 2, dtype=torch.float64) - low) / max(0.001, high - low)
    mix = (1.0 - ramp.clamp(0.0, 1.0)) * ext
    theta = theta / s * (1.0 - mix) + theta * mix
    return theta, cfg.yarn_attn_factor * (1.0 + 0.1 * math.log(s) if ext != 0.0 else 1.0)


def turn(x, cos, sin, interleaved):
    """Rotate pairs of the last dim: half-split (i, i+n/2) with y_a = a cos + b sin, y_b = -a sin + b cos; interleaved
    (2i, 2i+1) with y_a = a cos - b sin, y_b = a sin + b cos."""
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat((a * cos + b * sin, -a * sin + b * cos), dim=-1)


def cayley(skew_matrix):
    """(I + A)^-1 (I - A) for skew A (..., n, n): orthogonal."""
    eye = torch.eye(skew_matrix.shape[-1], dtype=skew_matrix.dtype)
    return torch.linalg.solve(eye + skew_matrix, eye - skew_matrix)


def alibi_slopes(H):
    """ALiBi slopes for any head count: 2^(-8h/H) for powers of two, else the nearest power's plus every other
    slope of twice that power."""
    def geometric(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]
    p = 2 ** int(math.floor(math.log2(H)))
    return geometric(p) + (geometric(2 * p)[0::2][: H - p] if p < H else [])


def rmsnorm(x, g):
    return g * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)


class Holder(torch.nn.Module):
    """A node of the parameter tree, so that state_dict() keys are grape's tensor names."""


class Layer(torch.nn.Module):
    """One pre-norm block; parameters under the names of the checkpoint (ln1.weight, attn.wq, pe.log_freq, ...)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.ln1, self.ln2, self.attn, self.mlp, self.pe = Holder(), Holder(), Holder(), Holder(), Holder()
        self.attn.q_norm, self.attn.k_norm = Holder(), Holder()

    # --- the multiplicative action on q, k: (B,T,H,D)

    def _frequencies(self, dtype):
        """theta (nset, frame/2) and the mscale."""
        cfg = self.cfg
        theta, mscale = rope_frequencies(cfg, cfg.frame)
        if cfg.learned:
            scale = 1.0 if cfg.rot == "grape-m-ctx" else cfg.log_freq_scale
            theta = torch.exp(self.pe.log_freq.reshape(-1, cfg.frame // 2) / scale)
        return theta.to(dtype).reshape(-1, cfg.frame // 2), mscale

    def _frame(self, dtype):
        """grape-m-basis: B (nset, R, R); grape-m-nc: E (nset, R, r)."""
        cfg = self.cfg
        R, r = cfg.R, cfg.frame
        skew = getattr(self.pe, "basis_skew" if cfg.rot == "grape-m-basis" else "frame_skew").reshape(cfg.nset, -1)
        rows, cols = [], []
        for j in range(R if cfg.rot == "grape-m-basis" else r):  # the free entries A_ij, i > j, in grape's order
            for i in range(j + 1, R):
                partner = (j + 1 if j % 2 == 0 else j) if cfg.interleaved else (j + r // 2 if j < r // 2 else j)
                if cfg.rot == "grape-m-nc" and i == partner:
                    continue
                rows.append(i), cols.append(j)
        if cfg.rot == "grape-m-basis":  # packed row-major over the strictly lower triangle
            order = sorted(range(len(rows)), key=lambda k: (rows[k], cols[k]))
            rows, cols = [rows[k] for k in order], [cols[k] for k in order]
        A = torch.zeros(cfg.nset, R, R, dtype=dtype)
        A[:, rows, cols] = skew
        B = cayley(A - A.transpose(-1, -2))
        return B if cfg.rot == "grape-m-basis" else B[..., :r]

    def _angles(self, T, theta, phase):
        """(B|1, T, H|1, frame/2) angles: positions (or the contextual phase) times the frequencies."""
        n = phase if phase is not None else torch.arange(T, dtype=theta.dtype)[None, :, None]
        return n[..., None] * theta[None, None]            # theta (nset, np) broadcasts over heads when nset = H

    def rotate(self, x, side, phase):
        """x: (B,T,H,D) -> G(n) x on the first R dims of each head (xpos: and its decay for side q or k)."""
        cfg = self.cfg
        if cfg.rot == "nope":
            return x
        B, T, H, D = x.shape
        theta, g = self._frequencies(x.dtype)
        ang = self._angles(T, theta, phase)
        cos, sin = g * torch.cos(ang), g * torch.sin(ang)
        if cfg.rot == "xpos":
            n = cfg.R
            zeta = (2.0 * torch.arange(n // 2, dtype=x.dtype) + cfg.xpos_gamma * n) / ((1.0 + cfg.xpos_gamma) * n)
            e = torch.arange(T, dtype=x.dtype)[None, :, None, None] / cfg.xpos_scale_base
            sc = zeta ** (e if side == "q" else -e)
            cos, sin = cos * sc, sin * sc
        xr, rest = x[..., :cfg.R], x[..., cfg.R:]
        if cfg.rot == "grape-m-basis":  # B R(n theta) B^T x (basis_folded: R(n theta) B^T x). Bm: (H, R, R)
            Bm = self._frame(x.dtype)
            Bm = Bm.expand(H, -1, -1) if cfg.nset == 1 else Bm
            xr = turn(torch.einsum("bthi,hij->bthj", xr, Bm), cos, sin, cfg.interleaved)
            if not cfg.basis_folded:
                xr = torch.einsum("bthj,hij->bthi", xr, Bm)
        elif cfg.rot == "grape-m-nc":                      # x + E (R y - y), y = E^T x
            E = self._frame(x.dtype)                         # (nset, R, r)
            E = E.expand(H, -1, -1) if cfg.nset == 1 else E
            y = torch.einsum("bthi,hic->bthc", xr, E)
            xr = xr + torch.einsum("bthc,hic->bthi", turn(y, cos, sin, cfg.interleaved) - y, E)
        else:
            xr = turn(xr, cos, sin, cfg.interleaved)
        return torch.cat((xr, rest), dim=-1)

    # --- the additive action: (B,H,T,T) bias without the causal mask, or None

    def bias(self, q, k, gate_logit, probe):
        cfg = self.cfg
        if cfg.bias == "nope":
            return None
        B, T, H, D = q.shape
        pos = torch.arange(T, dtype=q.dtype)
        dist = (pos[:, None] - pos[None, :]).clamp(min=0)
        m = torch.tensor(alibi_slopes(H), dtype=q.dtype)
        if cfg.bias == "alibi":
            return (-m[:, None, None] * dist)[None]
        if cfg.bias == "fox":
            c = torch.cumsum(F.logsigmoid(gate_logit), dim=1).permute(0, 2, 1)  # (B,H,T)
            return c[..., :, None] - c[..., None, :]
        if cfg.bias == "grape-a" or cfg.bias.startswith("grape-a-"):  # grape-a: no gate, lambda = 1
            def gate(x, w):
                w_hat = w / w.norm(dim=-1, keepdim=True).clamp(min=1e-6)
                return F.softplus(torch.einsum("bthd,hd->bht", x, w_hat) / math.sqrt(D))
            lam = (torch.ones if cfg.bias == "grape-a" else torch.zeros)(B, H, T, T, dtype=q.dtype)
            if cfg.bias in ("grape-a-k", "grape-a-qk"):
                lam = lam + gate(k, self.pe.u)[:, :, None, :]
            if cfg.bias in ("grape-a-q", "grape-a-qk"):
                lam = lam + gate(q, self.pe.v)[:, :, :, None]
            return -(F.softplus(self.pe.rho) * m)[None, :, None, None] * dist * lam
        P = cfg.ap_probe_dim                                     # grape-ap
        p = probe.reshape(B, T, H, P)
        ang = pos[None, :, None, None].expand(1, T, 1, P // 2)   # every plane turns 1 rad per token
        p_hat = p * torch.rsqrt(p.pow(2).mean(-1, keepdim=True) + AP_RMS_EPS)
        r = turn(p_hat, torch.cos(ang), torch.sin(ang), 0)
        pq = (p, p_hat, r)[cfg.ap_form]
        a = m[None, :, None, None] * F.logsigmoid(torch.einsum("bthp,blhp->bhtl", pq, r) / P)
        a = a.masked_fill(pos[None, :] > pos[:, None], 0.0)     # a(t, l) for l <= t
        pref = torch.cumsum(a, dim=-1)
        return pref.diagonal(dim1=-2, dim2=-1)[..., :, None] - pref  # sum over l = j+1..t

    def forward(self, x):
        cfg = self.cfg
        B, T, C = x.shape
        H, D = cfg.n_head, cfg.head_dim
        h = rmsnorm(x, self.ln1.weight)
        q, k, v = [(h @ getattr(self.attn, w).T).view(B, T, H, D) for w in ("wq", "wk", "wv")]
        ch = cfg.token_channels()
        if ch["w_shift_k"]:
            def shift(o, w):
                a = torch.sigmoid(h @ w.T)[..., None]
                return (1 - a) * o + a * F.pad(o, (0, 0, 0, 0, 1, 0))[:, :-1]
            k, v = shift(k, self.attn.w_shift_k), shift(v, self.attn.w_shift_v)
        phase = gate = probe = None
        if ch["w_phase"]:
            omega = torch.sigmoid((h @ self.attn.w_phase.T + self.attn.b_phase) / CTX_OMEGA_SCALE)  # (B,T,1|H)
            phase = torch.cumsum(omega, dim=1) - omega          # exclusive: Phi_0 = 0
        if ch["w_gate"]:
            gate = h @ self.attn.w_gate.T + self.attn.b_gate
        if ch["w_probe"]:
            probe = h @ self.attn.w_probe.T
        idx = cfg.gain_index()
        gq, gk = self.attn.q_norm.weight[idx], self.attn.k_norm.weight[idx]
        gates = (rmsnorm(q, gq), rmsnorm(k, gk))                # grape-a in a hybrid: gates of the un-rotated q, k
        if cfg.rot == "xpos":
            q, k = self.rotate(gates[0], "q", phase), self.rotate(gates[1], "k", phase)
        else:
            q, k = rmsnorm(self.rotate(q, "q", phase), gq), rmsnorm(self.rotate(k, "k", phase), gk)
        s = torch.einsum("bthd,bjhd->bhtj", q, k) / math.sqrt(D)
        b = self.bias(*(gates if cfg.rot != "nope" else (q, k)), gate, probe)
        if b is not None:
            s = s + b
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        y = torch.einsum("bhtj,bjhd->bthd", torch.softmax(s, dim=-1), v).reshape(B, T, C)
        x = x + y @ self.attn.wo.T
        h = rmsnorm(x, self.ln2.weight)
        return x + (F.silu(h @ self.mlp.w1.T) * (h @ self.mlp.w2.T)) @ self.mlp.w3.T


class GrapeModel(torch.nn.Module):
    """grape's byte-level model; forward(tokens (B,T) int64) -> logits (B,T,vocab)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.layers = torch.nn.ModuleList([Layer(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = Holder()

    def forward(self, tokens):
        x = self.wte[tokens]
        for layer in self.layers:
            x = layer(x)
        return rmsnorm(x, self.ln_f.weight) @ self.wte.T


def _place(model, name, value):
    """Register value as the parameter called name ("layers.0.attn.wq") in model's tree."""
    *path, leaf = name.split(".")
    node = model
    for part in path:
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    setattr(node, leaf, torch.nn.Parameter(value))


def load(run_dir, dtype=torch.float64):
    """GrapeModel of DIR/model.safetensors (or a .safetensors path) in dtype; AdamW moments are skipped."""
    path = run_dir if run_dir.endswith(".safetensors") else os.path.join(run_dir, "model.safetensors")
    meta, tensors = read_safetensors(path)
    model = GrapeModel(Config(meta))
    for name, array in tensors.items():
        if not name.startswith("opt."):
            _place(model, name, torch.as_tensor(array).to(dtype))
    return model


def bits_per_byte(model, data, window=None):
    """Mean cross-entropy of each next byte in bits: data (bytes) scored in non-overlapping windows of `window`
    tokens (default: the whole text in one window)."""
    x = torch.tensor(list(data), dtype=torch.long)
    W = window or len(x) - 1
    nats, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(x) - 1, W):
            tok, tgt = x[s:s + W], x[s + 1:s + W + 1]
            tok = tok[:len(tgt)]
            logits = model(tok[None])[0]
            nats += F.cross_entropy(logits, tgt, reduction="sum").item()
            n += len(tgt)
    return nats / n / math.log(2.0)
