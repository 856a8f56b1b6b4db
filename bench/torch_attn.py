"""torch_attn.py — the PyTorch peer of `grape bench attn --backward`: forward + backward of causal attention with
F.scaled_dot_product_attention (a current PyTorch from bench/torch_venv.sh), float32, q, k, v: (B,H,T,D).

    $(bench/torch_venv.sh) bench/torch_attn.py --T 4096 --bias nope --threads 2    # is_causal=True
    $(bench/torch_venv.sh) bench/torch_attn.py --T 4096 --bias alibi               # ALiBi as a float mask

nope: is_causal=True (PyTorch's fused flash kernel for CPU). alibi: the ALiBi bias -m_h (t - j) (slopes
2^(-8h/H), as grape's alibi) with -inf above the diagonal, as a (1,H,T,T) float attn_mask — SDPA takes either
is_causal or a mask, and an additive bias has to be materialised: O(H·T²) memory (4 GiB at H=4, T=16384).
Times are the median over reps after one warm-up, like `grape bench attn` (9 reps below T=4096, 3 up to 8192, 1
above); GFLOP/s counts the same flops: forward 4·B·H·D·T(T+1)/2, backward 2.5× that.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

from torch_peer import alibi_slopes


def alibi_mask(H, T):
    """(1,H,T,T): -m_h (t - j) for j <= t, -inf above the diagonal."""
    pos = torch.arange(T, dtype=torch.float32)
    dist = pos[:, None] - pos[None, :]
    m = torch.tensor(alibi_slopes(H), dtype=torch.float32)
    bias = -m[:, None, None] * dist
    return bias.masked_fill_(dist[None] < 0, float("-inf"))[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=1024)
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--H", type=int, default=4)
    ap.add_argument("--D", type=int, default=64)
    ap.add_argument("--bias", default="nope", choices=("nope", "alibi"))
    ap.add_argument("--reps", type=int)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    B, H, T, D = a.B, a.H, a.T, a.D
    reps = a.reps or (1 if T >= 16384 else 3 if T >= 4096 else 9)
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(B, H, T, D, generator=g).requires_grad_() for _ in range(3))
    dout = torch.randn(B, H, T, D, generator=g)
    mask = alibi_mask(H, T) if a.bias == "alibi" else None
    tf, tb = [], []
    for _ in range(reps + 1):
        q.grad = k.grad = v.grad = None
        t0 = time.perf_counter()
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        t1 = time.perf_counter()
        out.backward(dout)
        t2 = time.perf_counter()
        tf.append(t1 - t0), tb.append(t2 - t1)
    f, b = statistics.median(tf[1:]), statistics.median(tb[1:])
    fwd_flops = 4.0 * B * H * D * T * (T + 1) / 2
    r = {"impl": "pytorch", "torch": torch.__version__.split("+")[0], "pe": a.bias, "B": B, "T": T, "H": H, "D": D,
         "threads": a.threads, "backward": 1, "fwd_ms": round(1e3 * f, 3), "bwd_ms": round(1e3 * b, 3),
         "gflops": round(1e-9 * 3.5 * fwd_flops / (f + b), 1)}
    if a.json:
        print(json.dumps(r))
    else:
        print(f"pytorch {r['torch']} sdpa {a.bias} B={B} T={T} H={H} D={D}: forward {r['fwd_ms']:.3f} ms, "
              f"backward {r['bwd_ms']:.3f} ms, {r['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
