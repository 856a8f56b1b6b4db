"""test_ckpt.py — the same safetensors checkpoint read by both sides: libgrape's grape_model_load and a pure-Python
reader (common.read_safetensors) feeding grape_model_ref.GrapeLM (float64, configured from the file's metadata).
Loss, logits and every parameter gradient must agree (normwise relative error per tensor), for checkpoints written
by grape_model_save (one encoding of each kind, hybrids, KV-shift) and by the `grape train` CLI (2 steps on a
synthetic corpus; its AdamW moments are in the file and ignored by both readers)."""
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bind_model, check, compare_model, create_model, finish, load_lib, read_safetensors  # noqa: E402
from grape_model_ref import Config, GrapeLM  # noqa: E402

TOL = 1e-4
# ":kv" adds KV-shift (grape_pe_config.kv_shift)
ENCODINGS = ["rope", "grape-m-ctx", "xpos", "fox", "grape-a-qk", "grape-ap", "grape-m+grape-ap", "grape-ap:kv"]
L, C, H, B, T = 2, 32, 2, 2, 12
# grape_pe_config fields the reference does not implement must hold these values (rotary_dim 0 means D).
UNSUPPORTED = {"pe.interleaved": "0", "pe.scaling": "0", "pe.per_head": "0", "pe.ap_form": "0"}


def ref_model(path, label):
    """GrapeLM built from the checkpoint's metadata and loaded with its model tensors (the opt.* moments dropped)."""
    meta, tensors = read_safetensors(path)
    assert meta["format"] == "grape-checkpoint", meta.get("format")
    n_embd, n_head = int(meta["model.n_embd"]), int(meta["model.n_head"])
    for key, want in UNSUPPORTED.items():
        assert meta[key] == want, f"{key} = {meta[key]}: not in grape_model_ref"
    assert int(meta["pe.rotary_dim"]) in (0, n_embd // n_head), "partial rotary is not in grape_model_ref"
    cfg = Config.from_name(meta["pe.name"], n_layer=int(meta["model.n_layer"]), n_embd=n_embd, n_head=n_head,
                           vocab_size=int(meta["model.vocab_size"]), rope_base=float(meta["pe.rope_base"]),
                           xpos_gamma=float(meta["pe.xpos_gamma"]), xpos_scale_base=float(meta["pe.xpos_scale_base"]),
                           log_freq_scale=float(meta["pe.log_freq_scale"]),
                           ap_probe_dim=int(meta["pe.ap_probe_dim"]), kv_shift=bool(int(meta["pe.kv_shift"])))
    weights = {k: v for k, v in tensors.items() if not k.startswith("opt.")}
    ref = GrapeLM(cfg)
    check(f"{label}: the file holds exactly the reference's tensors", float(set(weights) != set(ref.names)), 0.0)
    return ref.load(weights)


def compare_file(lib, label, ckpt_dir, rng):
    """grape_model_load(ckpt_dir) vs ref_model(ckpt_dir/model.safetensors) on one random batch."""
    m = ctypes.c_void_p()
    assert lib.grape_model_load(ctypes.byref(m), ckpt_dir.encode(), B, T) == 0, lib.grape_last_error()
    try:
        ref = ref_model(os.path.join(ckpt_dir, "model.safetensors"), label)
        tok = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
        tgt = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
        compare_model(lib, m, ref, label, tok, tgt, TOL)
    finally:
        lib.grape_model_free(m)


def saved_by_library(lib, name, tmp, rng):
    m = create_model(lib, name, L, C, H, B, T, rng)
    ckpt_dir = os.path.join(tmp, name.replace(":", "-"))
    try:
        assert lib.grape_model_save(m, ckpt_dir.encode()) == 0, lib.grape_last_error()
    finally:
        lib.grape_model_free(m)
    compare_file(lib, f"grape_model_save {name}", ckpt_dir, rng)


def saved_by_cli(lib, tmp, rng):
    """`grape train` for 2 steps (tiny preset, the only size the CLI offers, at batch 2 x seq 16)."""
    grape = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/x")), "grape")
    corpus, out = os.path.join(tmp, "corpus.txt"), os.path.join(tmp, "cli-run")
    with open(corpus, "wb") as f:  # split into 10 equal documents by the reader
        f.write(bytes(rng.integers(32, 127, size=20000, dtype=np.uint8)))
    cmd = [grape, "train", "--pe", "grape-m+grape-ap", "--steps", "2", "--batch", "2", "--seq", "16", "--data",
           corpus, "--out", out, "--eval-batches", "1", "--threads", "1", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stdout}{r.stderr}"
    compare_file(lib, "grape train checkpoint (tiny grape-m+grape-ap, 2 steps)", out, rng)


def main():
    lib = load_lib()
    bind_model(lib)
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory(prefix="grape-ckpt-") as tmp:
        for name in ENCODINGS:
            saved_by_library(lib, name, tmp, rng)
        saved_by_cli(lib, tmp, rng)
    finish()


if __name__ == "__main__":
    main()
