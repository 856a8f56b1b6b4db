"""torch_train.py — the PyTorch peer of `grape bench train`: the same model (tests/torch/grape_model_ref.py, float32),
the same step (forward, mean cross-entropy, backward, global-norm clip 1.0, AdamW 0.9/0.95/1e-8 with decay 0.1
except RMSNorm gains), the same batch of random corpus windows and the same thread count; median step time over
timed steps after warm-up steps. Flops per token 6N + 12·L·C·T (N = all parameters), as grape's.

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/torch_train.py --preset tiny --pe rope --threads 2 [--json]

OPENBLAS_CORETYPE defaults to SkylakeX (Debian's OpenBLAS misdetects Zen4 otherwise).
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")  # read when torch loads OpenBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "torch"))
from grape_model_ref import Config, GrapeLM  # noqa: E402

PRESETS = {"tiny": dict(n_layer=4, n_embd=256, n_head=4, batch=16, seq=256),
           "small": dict(n_layer=6, n_embd=384, n_head=6, batch=8, seq=512)}


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--pe", default="rope")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup-steps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data", default="data/kjv.txt")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def main():
    a = parse()
    p = PRESETS[a.preset]
    B, T = a.batch or p["batch"], a.seq or p["seq"]
    torch.set_num_threads(a.threads)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(42)
    model = GrapeLM(Config.from_name(a.pe, n_layer=p["n_layer"], n_embd=p["n_embd"], n_head=p["n_head"]))
    model.init_official(seed=42)
    gains = [model.p(n) for n in model.names if n.endswith("weight")]
    rest = [model.p(n) for n in model.names if not n.endswith("weight")]
    opt = torch.optim.AdamW([{"params": rest, "weight_decay": 0.1}, {"params": gains, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    corpus = np.memmap(a.data, dtype=np.uint8, mode="r")
    rng = np.random.default_rng(42)
    times = []
    for _ in range(a.warmup_steps + a.steps):
        starts = rng.integers(0, len(corpus) - T - 1, size=B)
        w = torch.from_numpy(np.stack([corpus[s:s + T + 1] for s in starts]).astype(np.int64))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(w[:, :-1], w[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[a.warmup_steps:])
    n_params = sum(t.numel() for t in model.parameters())
    tps = B * T / step
    gflops = (6 * n_params + 12 * p["n_layer"] * p["n_embd"] * T) * tps * 1e-9
    out = {"impl": "pytorch", "torch": torch.__version__, "preset": a.preset, "pe": a.pe, "batch": B, "seq": T,
           "threads": a.threads, "params": n_params, "step_ms": round(1e3 * step, 2), "tokens_per_s": round(tps, 1),
           "gflops": round(gflops, 2), "loss": round(float(loss), 4)}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"pytorch {torch.__version__} train {a.preset} {a.pe} (B={B} T={T}, {n_params} params, {a.threads} "
              f"threads): step {1e3 * step:.1f} ms, {tps:.0f} tokens/s, {gflops:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
