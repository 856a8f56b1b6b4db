"""test_model.py — the C model (libgrape.so through ctypes) vs grape_model_ref.GrapeLM in float64 on the same
weights: loss, logits and every parameter gradient (normwise relative error per tensor, worst tensor reported),
for one encoding of each kind and a hybrid."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bind_model, compare_model, create_model, finish, load_lib, model_tensors  # noqa: E402
from grape_model_ref import Config, GrapeLM  # noqa: E402

TOL = 1e-4
# ":kv" adds KV-shift (grape_pe_config.kv_shift)
ENCODINGS = ["nope", "rope", "grape-m", "grape-m-ctx", "grape-m-basis", "xpos", "alibi", "fox", "grape-a-qk", "grape-ap",
             "grape-m+grape-ap", "rope+fox", "rope:kv", "grape-ap:kv"]
L, C, H, B, T = 2, 32, 2, 2, 12


def run(lib, name, rng):
    m = create_model(lib, name, L, C, H, B, T, rng)
    try:
        n = lib.grape_model_num_params(m)
        params = np.ctypeslib.as_array(lib.grape_model_params(m), shape=(n,))
        tok = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
        tgt = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
        cfg = Config.from_name(name.split(":")[0], n_layer=L, n_embd=C, n_head=H, kv_shift=name.endswith(":kv"))
        ref = GrapeLM(cfg).load(model_tensors(lib, m, params))
        compare_model(lib, m, ref, name, tok, tgt, TOL)
    finally:
        lib.grape_model_free(m)


def main():
    lib = load_lib()
    bind_model(lib)
    rng = np.random.default_rng(7)
    for name in ENCODINGS:
        run(lib, name, rng)
    finish()


if __name__ == "__main__":
    main()
