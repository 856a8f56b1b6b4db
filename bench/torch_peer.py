"""torch_peer.py — grape's byte-level Llama-style model written the fast PyTorch way, the speed peer of
bench/torch_train.py and bench/torch_eval.py (a current PyTorch from bench/torch_venv.sh).

Same model as libgrape's presets (and tests/torch/grape_model_ref.py, the correctness oracle): tied byte embedding,
pre-norm RMSNorm (eps 1e-5), fused q|k|v projection, RoPE on half-split pairs (y_i = a cos + b sin,
y_{i+D/2} = -a sin + b cos) then QK-RMSNorm (gain shared across heads), causal softmax attention at 1/sqrt(D), SwiGLU
w3(silu(w1 h) * w2 h) with hidden 8C/3, final RMSNorm, logits = h wte^T, mean cross-entropy. What differs is only
how it is computed: F.scaled_dot_product_attention (fused causal attention), F.rms_norm, one GEMM for w1|w2.
`check_against_reference` proves the equivalence on every run of the benchmarks.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "torch"))
from grape_model_ref import Config, GrapeLM, alibi_slopes  # noqa: E402,F401  (the oracle; slopes for torch_attn)

PRESETS = {"tiny": dict(n_layer=4, n_embd=256, n_head=4, batch=16, seq=256),
           "small": dict(n_layer=6, n_embd=384, n_head=6, batch=8, seq=512)}
EPS = 1e-5
ROPE_BASE = 10000.0


class Layer(torch.nn.Module):
    def __init__(self, C, H, hidden):
        super().__init__()
        D = C // H
        self.H, self.D, self.hidden = H, D, hidden
        self.ln1, self.ln2 = torch.nn.Parameter(torch.ones(C)), torch.nn.Parameter(torch.ones(C))
        self.q_norm, self.k_norm = torch.nn.Parameter(torch.ones(D)), torch.nn.Parameter(torch.ones(D))
        self.wqkv = torch.nn.Linear(C, 3 * C, bias=False)
        self.wo = torch.nn.Linear(C, C, bias=False)
        self.w12 = torch.nn.Linear(C, 2 * hidden, bias=False)
        self.w3 = torch.nn.Linear(hidden, C, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        h = F.rms_norm(x, (C,), self.ln1, EPS)
        q, k, v = self.wqkv(h).view(B, T, 3, self.H, self.D).transpose(1, 3).unbind(2)  # each (B,H,T,D)
        if cos is not None:
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        q = F.rms_norm(q, (self.D,), self.q_norm, EPS)
        k = F.rms_norm(k, (self.D,), self.k_norm, EPS)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B,H,T,D)
        x = x + self.wo(y.transpose(1, 2).reshape(B, T, C))
        a, b = self.w12(F.rms_norm(x, (C,), self.ln2, EPS)).split(self.hidden, dim=-1)
        return x + self.w3(F.silu(a) * b)


def rotate(x, cos, sin):
    """x: (B,H,T,D); cos, sin: (T,D/2). Half-split pairs (i, i+D/2)."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * cos + b * sin, b * cos - a * sin], dim=-1)


class PeerLM(torch.nn.Module):
    def __init__(self, n_layer, n_embd, n_head, rope=True, vocab=256):
        super().__init__()
        self.C, self.D, self.rope = n_embd, n_embd // n_head, rope
        self.wte = torch.nn.Parameter(torch.randn(vocab, n_embd) * 0.02)
        self.layers = torch.nn.ModuleList(Layer(n_embd, n_head, (8 * n_embd) // 3) for _ in range(n_layer))
        self.ln_f = torch.nn.Parameter(torch.ones(n_embd))

    def tables(self, T, dtype):
        theta = ROPE_BASE ** (-2.0 * torch.arange(self.D // 2, dtype=torch.float64) / self.D)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * theta
        return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)

    def forward(self, tokens, targets):
        """tokens, targets: (B,T) int64 -> mean cross-entropy."""
        x = F.embedding(tokens, self.wte)
        cos, sin = self.tables(tokens.shape[1], x.dtype) if self.rope else (None, None)
        for layer in self.layers:
            x = layer(x, cos, sin)
        logits = F.rms_norm(x, (self.C,), self.ln_f, EPS) @ self.wte.T
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def decay_groups(self, weight_decay):
        """AdamW groups as grape's trainer: decay on matrices (and the embedding), none on RMSNorm gains."""
        mats = [p for p in self.parameters() if p.dim() == 2]
        gains = [p for p in self.parameters() if p.dim() == 1]
        return [{"params": mats, "weight_decay": weight_decay}, {"params": gains, "weight_decay": 0.0}]


def make(preset, pe, seed=42):
    if pe not in ("rope", "nope"):
        raise SystemExit(f"torch peer: encoding '{pe}' not implemented (rope, nope)")
    p = PRESETS[preset]
    torch.manual_seed(seed)
    return PeerLM(p["n_layer"], p["n_embd"], p["n_head"], rope=pe == "rope")


def check_against_reference(pe="rope", tol=1e-9):
    """Load the oracle's weights (tests/torch/grape_model_ref.py) into the peer, both in float64 on a small model,
    and require the same loss and parameter gradients (max abs difference <= tol)."""
    L, C, H, T = 2, 64, 4, 24
    ref = GrapeLM(Config.from_name(pe, n_layer=L, n_embd=C, n_head=H))
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            ref.init_official(seed=3)
            peer = PeerLM(L, C, H, rope=pe == "rope").double()
        finally:
            torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        g = torch.Generator().manual_seed(4)
        for n in ref.names:  # gains away from 1, so a swapped gain would show
            if n.endswith("weight"):
                ref.p(n).mul_(1 + 0.1 * torch.rand(ref.p(n).shape, generator=g, dtype=torch.float64))
        peer.wte.copy_(ref.p("wte"))
        peer.ln_f.copy_(ref.p("ln_f.weight"))
        for l, layer in enumerate(peer.layers):
            r = lambda n: ref.p(f"layers.{l}.{n}")  # noqa: E731
            layer.ln1.copy_(r("ln1.weight")), layer.ln2.copy_(r("ln2.weight"))
            layer.q_norm.copy_(r("attn.q_norm.weight")), layer.k_norm.copy_(r("attn.k_norm.weight"))
            layer.wqkv.weight.copy_(torch.cat([r("attn.wq"), r("attn.wk"), r("attn.wv")]))
            layer.wo.weight.copy_(r("attn.wo"))
            layer.w12.weight.copy_(torch.cat([r("mlp.w1"), r("mlp.w2")]))
            layer.w3.weight.copy_(r("mlp.w3"))
    g = torch.Generator().manual_seed(5)
    tok = torch.randint(0, 256, (2, T + 1), generator=g)
    _, loss_ref = ref(tok[:, :-1], tok[:, 1:])
    loss = peer(tok[:, :-1], tok[:, 1:])
    loss_ref.backward()
    loss.backward()
    errs = {"loss": abs(loss.item() - loss_ref.item()),
            "d wte": float((peer.wte.grad - ref.p("wte").grad).abs().max()),
            "d wqkv[0]": float((peer.layers[0].wqkv.weight.grad -
                                torch.cat([ref.p(f"layers.0.attn.{n}").grad for n in ("wq", "wk", "wv")])).abs().max()),
            "d q_norm[1]": float((peer.layers[1].q_norm.grad - ref.p("layers.1.attn.q_norm.weight").grad).abs().max()),
            "d w12[1]": float((peer.layers[1].w12.weight.grad -
                               torch.cat([ref.p(f"layers.1.mlp.{n}").grad for n in ("w1", "w2")])).abs().max())}
    bad = {k: v for k, v in errs.items() if not v <= tol}
    if bad:
        raise SystemExit(f"torch peer differs from tests/torch/grape_model_ref.py ({pe}): {bad}")
    return max(errs.values())


def flops_per_token(model, n_layer, C, T):
    """6N + 12·L·C·T (llm.c / PaLM convention, as `grape bench train`; N = all parameters)."""
    return 6 * sum(p.numel() for p in model.parameters()) + 12 * n_layer * C * T
