"""test_model.py — the C model (libgrape.so through ctypes) vs grape_model_ref.GrapeLM in float64 on the same
weights: loss, logits and every parameter gradient (normwise relative error per tensor, worst tensor reported),
for one encoding of each kind and a hybrid."""
import ctypes
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import check, finish, load_lib, rel_err  # noqa: E402
from grape_model_ref import Config, GrapeLM  # noqa: E402

TOL = 1e-4
# ":kv" adds KV-shift (grape_pe_config.kv_shift)
ENCODINGS = ["nope", "rope", "grape-m", "grape-m-ctx", "grape-m-basis", "xpos", "alibi", "fox", "grape-a-qk", "grape-ap",
             "grape-m+grape-ap", "rope+fox", "rope:kv", "grape-ap:kv"]
L, C, H, B, T = 2, 32, 2, 2, 12


class PeConfig(ctypes.Structure):
    """Mirror of grape_pe_config (include/grape.h), field by field, so ctypes computes the C offsets."""
    _fields_ = [("rot", ctypes.c_int), ("bias", ctypes.c_int), ("n_heads", ctypes.c_int), ("head_dim", ctypes.c_int),
                ("rotary_dim", ctypes.c_int), ("interleaved", ctypes.c_int), ("rope_base", ctypes.c_double),
                ("scaling", ctypes.c_int), ("scaling_factor", ctypes.c_double), ("yarn_orig_ctx", ctypes.c_int),
                ("yarn_ext_factor", ctypes.c_double), ("yarn_attn_factor", ctypes.c_double),
                ("yarn_beta_fast", ctypes.c_double), ("yarn_beta_slow", ctypes.c_double),
                ("xpos_gamma", ctypes.c_double), ("xpos_scale_base", ctypes.c_double), ("per_head", ctypes.c_int),
                ("log_freq_scale", ctypes.c_double), ("nc_rank", ctypes.c_int), ("ap_probe_dim", ctypes.c_int),
                ("ap_paper", ctypes.c_int), ("kv_shift", ctypes.c_int), ("basis_folded", ctypes.c_int)]


class ModelConfig(ctypes.Structure):
    _fields_ = [("n_layer", ctypes.c_int), ("n_embd", ctypes.c_int), ("n_head", ctypes.c_int),
                ("vocab_size", ctypes.c_int), ("max_batch", ctypes.c_int), ("max_seq", ctypes.c_int),
                ("pe", PeConfig)]


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("offset", ctypes.c_size_t), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int * 4), ("weight_decay", ctypes.c_int)]


def bind(lib):
    vp, i32, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    sigs = {
        "grape_model_preset": (i32, [vp, ctypes.c_char_p]),
        "grape_pe_parse": (i32, [vp, ctypes.c_char_p]),
        "grape_model_create": (i32, [ctypes.POINTER(vp), vp]),
        "grape_model_free": (None, [vp]),
        "grape_model_init": (i32, [vp, ctypes.c_uint64]),
        "grape_model_params_changed": (i32, [vp]),
        "grape_model_num_params": (sz, [vp]),
        "grape_model_params": (ctypes.POINTER(ctypes.c_float), [vp]),
        "grape_model_grads": (ctypes.POINTER(ctypes.c_float), [vp]),
        "grape_model_num_tensors": (i32, [vp]),
        "grape_model_tensor": (ctypes.POINTER(TensorInfo), [vp, i32]),
        "grape_model_forward": (i32, [vp, vp, vp, i32, i32, ctypes.POINTER(ctypes.c_float)]),
        "grape_model_backward": (i32, [vp]),
        "grape_model_zero_grad": (None, [vp]),
        "grape_model_logits": (ctypes.POINTER(ctypes.c_float), [vp]),
        "grape_last_error": (ctypes.c_char_p, []),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def make_model(lib, name):
    enc, kv = name.split(":")[0], name.endswith(":kv")
    cfg = ModelConfig()
    assert lib.grape_model_preset(ctypes.byref(cfg), b"tiny") == 0
    assert cfg.pe.xpos_gamma == 0.4 and cfg.pe.ap_probe_dim == 8, "PeConfig mirror out of date with grape.h"
    cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.max_batch, cfg.max_seq = L, C, H, B, T
    assert lib.grape_pe_parse(ctypes.byref(cfg.pe), enc.encode()) == 0, lib.grape_last_error()
    cfg.pe.kv_shift = int(kv)
    m = ctypes.c_void_p()
    st = lib.grape_model_create(ctypes.byref(m), ctypes.byref(cfg))
    assert st == 0, lib.grape_last_error()
    return m


def tensors(lib, m, vec):
    out = {}
    for i in range(lib.grape_model_num_tensors(m)):
        t = lib.grape_model_tensor(m, i).contents
        n = int(np.prod([t.shape[d] for d in range(t.ndim)]))
        out[t.name.decode()] = vec[t.offset:t.offset + n].reshape([t.shape[d] for d in range(t.ndim)])
    return out


def run(lib, name, rng):
    m = make_model(lib, name)
    try:
        assert lib.grape_model_init(m, 1234) == 0
        n = lib.grape_model_num_params(m)
        params = np.ctypeslib.as_array(lib.grape_model_params(m), shape=(n,))
        grads = np.ctypeslib.as_array(lib.grape_model_grads(m), shape=(n,))
        # Perturb the init so no gradient is structurally zero (w_phase = 0, unit gains, equal gates).
        params += (0.05 * rng.standard_normal(n)).astype(np.float32)
        assert lib.grape_model_params_changed(m) == 0, lib.grape_last_error()
        tok = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
        tgt = rng.integers(0, 256, size=(B, T), dtype=np.uint8)
        loss = ctypes.c_float()
        lib.grape_model_zero_grad(m)
        st = lib.grape_model_forward(m, tok.ctypes.data, tgt.ctypes.data, B, T, ctypes.byref(loss))
        assert st == 0, lib.grape_last_error()
        assert lib.grape_model_backward(m) == 0, lib.grape_last_error()
        logits = np.ctypeslib.as_array(lib.grape_model_logits(m), shape=(B, T, 256)).copy()

        cfg = Config.from_name(name.split(":")[0], n_layer=L, n_embd=C, n_head=H, kv_shift=name.endswith(":kv"))
        ref = GrapeLM(cfg).load(tensors(lib, m, params))
        rlogits, rloss = ref(torch.as_tensor(tok, dtype=torch.long), torch.as_tensor(tgt, dtype=torch.long))
        rloss.backward()
        check(f"{name}: loss vs torch float64", abs(loss.value - rloss.item()) / abs(rloss.item()), TOL)
        check(f"{name}: logits vs torch float64", rel_err(logits, rlogits), TOL)
        got, want = tensors(lib, m, grads), ref.named_grads()
        errs = {k: rel_err(got[k], want[k]) for k in want}
        worst = max(errs, key=errs.get)
        check(f"{name}: all {len(errs)} gradients vs torch (worst {worst})", errs[worst], TOL)
        check(f"{name}: C and torch name the same tensors", float(set(got) != set(want)), 0.0)
    finally:
        lib.grape_model_free(m)


def main():
    lib = load_lib()
    bind(lib)
    rng = np.random.default_rng(7)
    for name in ENCODINGS:
        run(lib, name, rng)
    finish()


if __name__ == "__main__":
    main()
