"""test_grape_torch.py — python/grape_torch.py (the PyTorch loader users get) against libgrape on checkpoints written
by `grape train`: for every encoding, hybrid and option family, a short run (3 steps of a 2-layer model) is loaded by
both; the logits of one batch must agree to 1e-5 relative (grape_torch in float64 vs the C model in float32), and
so must the bits per byte. `grape eval --json` on a corpus of known documents gives the BPB that grape_torch computes
on the same validation windows (full attention, and BCA at a length <= the window, where it is full attention).
Also: metadata values given as strings or numbers load the same."""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import grape_torch  # noqa: E402
from common import bind_model, check, finish, load_lib, rel_err  # noqa: E402

TOL = 1e-5
B, T = 2, 24
# one per family and option group; every encoding kind appears, and every hybrid kind pair through the rotations
ENCODINGS = [
    "nope", "rope", "rope:rope_base=500000,rotary_dim=8", "rope:interleaved=1", "rope:scaling=linear,scaling_factor=2",
    "rope:scaling=ntk,scaling_factor=4", "rope:scaling=yarn,scaling_factor=4,yarn_orig_ctx=16",
    "xpos", "xpos:xpos_gamma=0.6,xpos_scale_base=64,rotary_dim=8",
    "grape-m", "grape-m:per_head=1,log_freq_scale=8", "grape-m-ctx", "grape-m-ctx:per_head=1",
    "grape-m-basis", "grape-m-basis:rotary_dim=8,per_head=1", "grape-m-nc", "grape-m-nc:nc_rank=4,interleaved=1",
    "grape-m-nc:per_head=1",
    "alibi", "fox", "grape-a", "grape-a-k", "grape-a-q", "grape-a-qk", "grape-ap", "grape-ap:ap_probe_dim=4,ap_form=paper",
    "grape-ap:ap_form=relative",
    "grape-m-basis:basis_folded=1", "rope:qk_gain=pair,rotary_dim=8", "grape-m:qk_gain=pair,interleaved=1",
    "nope:kv_shift=1", "grape-m+grape-ap", "xpos+fox", "rope+alibi:kv_shift=1", "grape-m-ctx+grape-a-qk",
    "grape-m-basis+fox", "grape-m-nc:nc_rank=4+grape-ap",
]


def corpus(path):
    rng = np.random.default_rng(7)
    words = [bytes(rng.integers(97, 123, size=rng.integers(2, 8)).astype(np.uint8)) for _ in range(300)]
    with open(path, "wb") as f:
        f.write(b" ".join(words[i] for i in rng.integers(0, 300, size=4000)))


def train(grape, name, data, out):
    cmd = [grape, "train", "--pe", name, "--n-layer", "2", "--n-embd", "32", "--n-head", "2", "--batch", "2",
           "--seq", str(T), "--steps", "3", "--lr", "3e-2", "--eval-interval", "0", "--eval-batches", "1",
           "--data", data, "--out", out, "--quiet", "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"


def validation_docs(docs, share=0.1):
    """The validation documents of train/data.c's documented rule: document i is held out exactly when that brings
    the held-out share of the bytes seen so far closer to `share` than leaving it out (the last one if none)."""
    val, seen, out = 0.0, 0.0, []
    for d in docs:
        seen += len(d)
        if abs(val + len(d) - share * seen) < abs(val - share * seen):
            out.append(d)
            val += len(d)
    return out or docs[-1:]


def eval_vs_torch(grape, run, tmp, rng, lengths=(24, 48)):
    """grape eval's BPB at each length vs grape_torch over the same non-overlapping windows of the validation
    documents (a directory corpus: one document per file, in name order)."""
    d = os.path.join(tmp, "eval-docs")
    os.makedirs(d, exist_ok=True)
    docs = [bytes(rng.integers(97, 123, size=int(rng.integers(150, 400))).astype(np.uint8)) for _ in range(12)]
    for i, doc in enumerate(docs):
        with open(os.path.join(d, f"{i:02d}.txt"), "wb") as f:
            f.write(doc)
    model = grape_torch.load(run)
    worst = 0.0
    for flag, lens in (([], lengths), (["--bca"], [L for L in lengths if L <= T])):  # BCA = full up to its window
        cmd = [grape, "eval", "--ckpt", run, "--data", d, "--lengths", ",".join(map(str, lens)), "--json",
               "--threads", "1"] + flag
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
        rows = json.loads(r.stdout)
        for row, L in zip(rows, lens):
            nats = nbytes = 0.0
            for doc in validation_docs(docs):
                k = (len(doc) - 1) // L  # whole windows only, as grape eval scores them
                if k:
                    nats += grape_torch.bits_per_byte(model, doc[:k * L + 1], window=L) * k * L
                    nbytes += k * L
            assert row["length"] == L and row["bytes"] == nbytes, (row, nbytes)
            worst = max(worst, abs(row["bpb"] - nats / nbytes) / (nats / nbytes))
    return worst


def c_logits(lib, run, tok, tgt):
    """Logits (B,T,256) and mean cross-entropy (nats) of the C model loaded from run."""
    m = ctypes.c_void_p()
    assert lib.grape_model_load(ctypes.byref(m), run.encode(), B, T) == 0, lib.grape_last_error()
    loss = ctypes.c_float()
    assert lib.grape_model_forward(m, tok.ctypes.data, tgt.ctypes.data, B, T, ctypes.byref(loss)) == 0
    out = np.ctypeslib.as_array(lib.grape_model_logits(m), shape=(B, T, 256)).copy()
    lib.grape_model_free(m)
    return out, loss.value


def main():
    lib = load_lib()
    bind_model(lib)
    grape = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/x")), "grape")
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "corpus.txt")
        corpus(data)
        for name in ENCODINGS:
            run = os.path.join(tmp, f"run{ENCODINGS.index(name)}")
            train(grape, name, data, run)
            tok = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
            tgt = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
            want, c_loss = c_logits(lib, run, tok, tgt)
            model = grape_torch.load(run)
            with torch.no_grad():
                got = model(torch.as_tensor(tok, dtype=torch.long))
                loss = torch.nn.functional.cross_entropy(got.reshape(-1, 256), torch.as_tensor(tgt).long().reshape(-1))
            check(f"{name}: grape_torch float64 logits vs libgrape", rel_err(want, got), TOL)
            check(f"{name}: mean cross-entropy", abs(loss.item() - c_loss) / c_loss, TOL)
        # the loader reads metadata values as strings (safetensors convention) or numbers, enums by index or name,
        # and the options from the canonical name alone when the pe.* keys are missing
        meta, tensors = grape_torch.read_safetensors(os.path.join(tmp, "run6", "model.safetensors"))
        assert meta["pe.name"] == "rope:scaling=yarn,scaling_factor=4,yarn_orig_ctx=16", meta["pe.name"]
        numeric = {k: (float(v) if k.startswith(("pe.", "model.")) and k not in ("pe.name", "model.preset") else v)
                   for k, v in meta.items()}
        named = dict(meta, **{"pe.scaling": "yarn", "pe.name": "rope"})
        name_only = {k: v for k, v in meta.items() if not k.startswith("pe.") or k == "pe.name"}
        configs = [vars(grape_torch.Config(m)) for m in (meta, numeric, named, name_only)]
        for c in configs:
            c.pop("name")
        check("metadata as strings, as numbers, enums by name, options from the name only: the same configuration",
              float(any(c != configs[0] for c in configs)), 0.0)
        model = grape_torch.load(os.path.join(tmp, "run1"))
        text = open(data, "rb").read()[:T + 1]
        tok = np.frombuffer(text[:T], dtype=np.uint8)[None].repeat(B, 0).copy()
        tgt = np.frombuffer(text[1:], dtype=np.uint8)[None].repeat(B, 0).copy()
        _, c_loss = c_logits(lib, os.path.join(tmp, "run1"), tok, tgt)
        bpb = c_loss / np.log(2)
        for i in (1, ENCODINGS.index("grape-m+grape-ap"), ENCODINGS.index("xpos+fox")):
            check(f"{ENCODINGS[i]}: grape eval --json BPB (full, --bca) vs grape_torch on the validation windows",
                  eval_vs_torch(grape, os.path.join(tmp, f"run{i}"), tmp, rng), TOL)
        check("bits_per_byte of a text = libgrape's cross-entropy / ln 2", abs(grape_torch.bits_per_byte(model, text) -
                                                                           bpb) / bpb, TOL)
    finish()


if __name__ == "__main__":
    main()
