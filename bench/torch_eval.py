"""torch_eval.py — the PyTorch peer of `grape bench eval`: forward-only tokens/s of the same model
(bench/torch_peer.py, float32, checked against tests/torch/grape_model_ref.py first) on corpus windows of length T,
batch 1, under torch.inference_mode: embedding, layers, final norm, logits and the mean cross-entropy an evaluation
needs. --mode eager runs it as written (F.scaled_dot_product_attention); --mode compile through torch.compile.
Median over reps after warm-ups (the first compiles).

    $(bench/torch_venv.sh) bench/torch_eval.py --preset tiny --pe rope --T 4096 --mode compile --threads 2 [--json]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

import torch_peer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(torch_peer.PRESETS))
    ap.add_argument("--pe", default="rope", choices=("rope", "nope"))
    ap.add_argument("--mode", default="eager", choices=("eager", "compile"))
    ap.add_argument("--T", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data", default="data/kjv.txt")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch_peer.check_against_reference(a.pe)
    model = torch_peer.make(a.preset, a.pe).eval()
    fwd = torch.compile(model) if a.mode == "compile" else model
    corpus = np.memmap(a.data, dtype=np.uint8, mode="r")
    rng = np.random.default_rng(42)
    B, T = a.batch, a.T
    times = []
    with torch.inference_mode():
        for _ in range(a.warmup + a.reps):
            starts = rng.integers(0, len(corpus) - T - 1, size=B)
            w = torch.from_numpy(np.stack([corpus[s:s + T + 1] for s in starts]).astype(np.int64))
            t0 = time.perf_counter()
            loss = fwd(w[:, :-1], w[:, 1:])
            times.append(time.perf_counter() - t0)
    t = statistics.median(times[a.warmup:])
    out = {"impl": "pytorch", "torch": torch.__version__.split("+")[0], "mode": a.mode, "preset": a.preset,
           "pe": a.pe, "batch": B, "T": T, "threads": a.threads, "ms": round(1e3 * t, 3),
           "tokens_per_s": round(B * T / t, 1), "loss": round(loss.item(), 4)}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"pytorch {out['torch']} {a.mode} eval {a.preset} {a.pe} (B={B} T={T}, {a.threads} threads): "
              f"{1e3 * t:.2f} ms per forward, {B * T / t:.0f} tokens/s")


if __name__ == "__main__":
    main()
