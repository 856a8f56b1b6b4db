"""Shared harness of the PyTorch reference tests: load libgrape.so through ctypes, pass numpy/torch
arrays to it, and report checks in the same "PASS|FAIL name: err=.. tol=.." format as the C tests."""
import ctypes
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
_counts = {"pass": 0, "fail": 0}


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
