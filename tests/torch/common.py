"""Shared harness of the PyTorch reference tests: load libgrape.so through ctypes, pass numpy/torch
arrays to it, and report checks in the same "PASS|FAIL name: err=.. tol=.." format as the C tests."""
import ctypes
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
_counts = {"pass": 0, "fail": 0}

# ---- ctypes mirrors of the structs in include/grape.h (field order is the contract; keep them in sync)
FP, DP, VP = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double), ctypes.c_void_p
C = ctypes


class Config(C.Structure):  # grape_pe_config
    _fields_ = [("rot", C.c_int), ("bias", C.c_int), ("n_heads", C.c_int), ("head_dim", C.c_int),
                ("rotary_dim", C.c_int), ("interleaved", C.c_int), ("rope_base", C.c_double),
                ("scaling", C.c_int), ("scaling_factor", C.c_double), ("yarn_orig_ctx", C.c_int),
                ("yarn_ext_factor", C.c_double), ("yarn_attn_factor", C.c_double),
                ("yarn_beta_fast", C.c_double), ("yarn_beta_slow", C.c_double), ("xpos_gamma", C.c_double),
                ("xpos_scale_base", C.c_double), ("per_head", C.c_int), ("log_freq_scale", C.c_double),
                ("nc_rank", C.c_int), ("ap_probe_dim", C.c_int), ("ap_paper", C.c_int), ("kv_shift", C.c_int),
                ("basis_folded", C.c_int),
                ("_room", C.c_int64 * 16)]  # fields grape.h may append later land here, not past the buffer


class Positions(C.Structure):  # grape_positions
    _fields_ = [("pos0", C.c_int64), ("xpos_anchor", C.c_double), ("phase", DP)]


class Factors(C.Structure):  # grape_bias_factors
    _fields_ = [("kind", C.c_int), ("B", C.c_int), ("T", C.c_int), ("H", C.c_int), ("P", C.c_int),
                ("pos0", C.c_int64), ("slope", FP), ("gate_q", FP), ("gate_k", FP), ("cum", DP),
                ("probe_q", FP), ("probe_k", FP)]


class Grads(C.Structure):  # grape_bias_grads
    _fields_ = [("slope", FP), ("gate_q", FP), ("gate_k", FP), ("cum", DP), ("probe_q", FP), ("probe_k", FP)]


class TokenIn(C.Structure):  # grape_pe_token_inputs / grape_pe_token_grads
    _fields_ = [("phase_logit", FP), ("gate_logit", FP), ("probe", FP), ("shift_logit", FP)]


class ParamInfo(C.Structure):  # grape_param_info
    _fields_ = [("name", C.c_char_p), ("offset", C.c_size_t), ("ndim", C.c_int), ("shape", C.c_int * 4),
                ("weight_decay", C.c_int)]


class Opts(C.Structure):  # grape_attn_opts
    _fields_ = [("scale", C.c_float), ("bca_window", C.c_int)]


def load_lib():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "libgrape.so")
    return ctypes.CDLL(os.path.abspath(path))


def fptr(a):
    """Pointer to a C-contiguous float32 numpy array (or None -> NULL)."""
    if a is None:
        return None
    assert a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def dptr(a):
    if a is None:
        return None
    assert a.dtype == np.float64 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def rel_err(got, ref):
    """Normwise relative error max|got-ref| / max|ref| (ref is the PyTorch float64 result)."""
    got = np.asarray(got, dtype=np.float64)
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref, dtype=np.float64)
    den = np.max(np.abs(ref)) if ref.size else 0.0
    num = np.max(np.abs(got - ref)) if ref.size else 0.0
    return float(num / den) if den > 0 else float(num)


def check(name, err, tol):
    ok = err <= tol  # NaN fails
    print(f"{'PASS' if ok else 'FAIL'} {name}: err={err:.3e} tol={tol:.1e}")
    _counts["pass" if ok else "fail"] += 1
    return ok


def finish():
    print(f"# {_counts['pass']} passed, {_counts['fail']} failed")
    sys.exit(1 if _counts["fail"] else 0)
