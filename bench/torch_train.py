"""torch_train.py — the PyTorch peer of `grape bench train`: the same model (bench/torch_peer.py, float32, checked
against tests/torch/grape_model_ref.py first), the same step (forward, mean cross-entropy, backward, global-norm clip
1.0, AdamW 0.9/0.95/1e-8 with decay 0.1 except RMSNorm gains), the same batch of random corpus windows and the same
thread count; median step time over timed steps after warm-up steps. Flops per token 6N + 12·L·C·T, as grape's.
--mode eager runs the model as written (fused attention F.scaled_dot_product_attention); --mode compile wraps it in
torch.compile (forward and backward through inductor's C++ code; the first warm-up step compiles).

    $(bench/torch_venv.sh) bench/torch_train.py --preset tiny --pe rope --mode compile --threads 2 [--json]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

import torch_peer


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(torch_peer.PRESETS))
    ap.add_argument("--pe", default="rope", choices=("rope", "nope"))
    ap.add_argument("--mode", default="eager", choices=("eager", "compile"))
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data", default="data/kjv.txt")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def main():
    a = parse()
    p = torch_peer.PRESETS[a.preset]
    B, T = a.batch or p["batch"], a.seq or p["seq"]
    torch.set_num_threads(a.threads)
    torch_peer.check_against_reference(a.pe)
    model = torch_peer.make(a.preset, a.pe)
    opt = torch.optim.AdamW(model.decay_groups(0.1), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = torch.compile(model) if a.mode == "compile" else model
    corpus = np.memmap(a.data, dtype=np.uint8, mode="r")
    rng = np.random.default_rng(42)
    times = []
    for _ in range(a.warmup_steps + a.steps):
        starts = rng.integers(0, len(corpus) - T - 1, size=B)
        w = torch.from_numpy(np.stack([corpus[s:s + T + 1] for s in starts]).astype(np.int64))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = fwd(w[:, :-1], w[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[a.warmup_steps:])
    n_params = sum(t.numel() for t in model.parameters())
    tps = B * T / step
    gflops = torch_peer.flops_per_token(model, p["n_layer"], p["n_embd"], T) * tps * 1e-9
    out = {"impl": "pytorch", "torch": torch.__version__.split("+")[0], "mode": a.mode, "preset": a.preset,
           "pe": a.pe, "batch": B, "seq": T, "threads": a.threads, "params": n_params,
           "step_ms": round(1e3 * step, 2), "tokens_per_s": round(tps, 1), "gflops": round(gflops, 2),
           "first_step_s": round(times[0], 2), "loss": round(loss.item(), 4)}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"pytorch {out['torch']} {a.mode} train {a.preset} {a.pe} (B={B} T={T}, {n_params} params, "
              f"{a.threads} threads): step {1e3 * step:.1f} ms, {tps:.0f} tokens/s, {gflops:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
