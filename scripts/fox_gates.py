#!/usr/bin/env python3
"""fox_gates.py RUN_DIR... [--text PATH] [--windows N]: how fast the FoX forget gates of trained runs forget.

FoX (Lin et al. 2025; docs/ENCODINGS.md) adds the bias D_tj = sum_{l=j+1..t} log f_l to the logit of query t and key
j, with f_l = sigmoid(w_h . h_l + b_h) per head h, so a key d bytes back is down-weighted by about e^(d * mean log f).
For each run whose encoding has a FoX gate (fox, ROT+fox), this prints per layer and head the gate bias b, log
sigmoid(b), and the mean, min and max of log f over the bytes of N windows of the training length spread evenly
over PATH (default: the run's corpus, the training and validation bytes alike, since this measures the gate and not
the loss), and how many bytes back the bias alone divides a key's weight by 100: ln(100) / -mean log f.

The model is python/grape_torch.py's, which tests/torch/test_grape_torch.py checks against libgrape; needs torch
and numpy (Debian's python3-torch is enough)."""
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import grape_torch  # noqa: E402


def corpus_bytes(path):
    """A file's bytes, or a directory's regular non-hidden files in name order, joined (grape's document rule)."""
    if not os.path.isdir(path):
        with open(path, "rb") as f:
            return f.read()
    names = sorted(n for n in os.listdir(path) if not n.startswith(".") and os.path.isfile(os.path.join(path, n)))
    parts = []
    for n in names:
        with open(os.path.join(path, n), "rb") as f:
            parts.append(f.read())
    return b"".join(parts)


def gate_log_f(model, windows):
    """log f of every layer: a list of (N,T,H) tensors for the (N,T) byte windows, from the gate logits the model's
    layers pass to their bias (captured by wrapping Layer.bias for one forward, then unwrapped)."""
    captured = []
    for layer in model.layers:
        def capture(q, k, gate_logit, probe, forward_bias=layer.bias):
            captured.append(F.logsigmoid(gate_logit))
            return forward_bias(q, k, gate_logit, probe)
        layer.bias = capture
    try:
        with torch.no_grad():
            model(windows)
    finally:
        for layer in model.layers:
            del layer.bias
    return captured


def windows_of(data, T, n_windows):
    """n_windows byte windows of length T spread evenly over data, as an (N,T) tensor."""
    if len(data) < T:
        raise SystemExit(f"fox_gates: the text holds {len(data)} bytes, fewer than one window of {T}")
    starts = [round(i * (len(data) - T) / max(n_windows - 1, 1)) for i in range(n_windows)]
    return torch.tensor([list(data[s:s + T]) for s in starts], dtype=torch.long)


def head_stats(model, windows):
    """Per layer and head: (layer, head, b, log sigmoid(b), mean, min and max log f, bytes to 1/100)."""
    stats = []
    for l, log_f in enumerate(gate_log_f(model, windows)):
        b = model.layers[l].attn.b_gate.detach()
        for h in range(log_f.shape[-1]):
            x = log_f[..., h]
            mean = x.mean().item()
            reach = math.log(100.0) / -mean if mean < 0 else math.inf
            stats.append((l, h, b[h].item(), F.logsigmoid(b[h]).item(), mean, x.min().item(), x.max().item(), reach))
    return stats


def gate_table(model, windows):
    """The per layer and head table of a FoX model's gates on the windows, and the range of the mean log f."""
    stats = head_stats(model, windows)
    lines = ["| layer | head | bias b | log σ(b) | mean log f | min log f | max log f | bytes to 1/100 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {l} | {h} | {b:+.3f} | {ls:.3f} | {mean:.3f} | {lo:.3f} | {hi:.3f} | {reach:.1f} |"
              for l, h, b, ls, mean, lo, hi, reach in stats]
    means = [s[4] for s in stats]
    lines.append(f"mean log f per head: {min(means):.3f} to {max(means):.3f} nats per byte")
    return "\n".join(lines)


def report(run, text_path, n_windows):
    meta, _ = grape_torch.read_safetensors(os.path.join(run, "model.safetensors"))
    model = grape_torch.load(run, torch.float32)
    if model.cfg.bias != "fox":
        return f"{run}: encoding {model.cfg.name} has no FoX gate"
    path = text_path or meta["data.path"]
    T = int(float(meta["train.seq"]))
    windows = windows_of(corpus_bytes(path), T, n_windows)
    return f"{run} ({model.cfg.name}): log f over {n_windows} windows of {T} bytes of {path}\n" + \
        gate_table(model, windows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories of grape train (DIR/model.safetensors)")
    ap.add_argument("--text", help="file or directory of text to run [the run's corpus]")
    ap.add_argument("--windows", type=int, default=16, help="windows of the training length [16]")
    a = ap.parse_args()
    if a.windows < 1:
        ap.error("--windows must be at least 1")
    print("\n\n".join(report(run, a.text, a.windows) for run in a.runs))


if __name__ == "__main__":
    main()
