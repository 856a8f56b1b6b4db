"""Shared harness of the PyTorch reference tests: load libgrape.so through ctypes, pass numpy/torch
arrays to it, and report checks in the same "PASS|FAIL name: err=.. tol=.." format as the C tests."""
import ctypes
import json
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
_counts = {"pass": 0, "fail": 0}

# ---- ctypes structures of the public structs, laid out as the library describes them (grape_struct_describe):
# names, order, offsets and sizes come from libgrape, not from a copy of include/grape.h
FP, DP, VP = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double), ctypes.c_void_p
C = ctypes


def load_lib(testing=False):
    """libgrape.so (argv[1]), or with testing its sibling libgrape_testing.so: the library plus the test oracles of
    tests/ref/grape_testing.h (grape_plane_*, grape_bias_block*), which the installed library does not export."""
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "libgrape.so")
    if testing:
        path = os.path.join(os.path.dirname(path), "libgrape_testing.so")
    return ctypes.CDLL(os.path.abspath(path))


class _FieldInfo(C.Structure):  # grape_field_info, the one struct a binding must know to read the others
    _fields_ = [("name", C.c_char_p), ("offset", C.c_size_t), ("size", C.c_size_t), ("type", C.c_char_p)]


_TYPES = {"int": C.c_int, "int64": C.c_int64, "size_t": C.c_size_t, "float": C.c_float, "double": C.c_double,
          "float*": FP, "double*": DP, "void*": VP, "char*": C.c_char_p, "int[4]": C.c_int * 4}


def described(lib, name):
    """A ctypes Structure for the public struct `name`, built from grape_struct_describe; raises if ctypes' layout
    (offsets, sizeof) differs from the library's, e.g. when a field is missing from the description."""
    f = lib.grape_struct_describe
    f.restype, f.argtypes = C.c_int, [C.c_char_p, C.POINTER(C.POINTER(_FieldInfo)), C.POINTER(C.c_int),
                                      C.POINTER(C.c_size_t)]
    fields, n, size = C.POINTER(_FieldInfo)(), C.c_int(), C.c_size_t()
    if f(name.encode(), C.byref(fields), C.byref(n), C.byref(size)) != 0:
        raise RuntimeError(f"libgrape does not describe {name}")
    infos = [fields[i] for i in range(n.value)]
    spec = [(i.name.decode(), _TYPES.get(i.type.decode()) or described(lib, i.type.decode())) for i in infos]
    cls = type(name, (C.Structure,), {"_fields_": spec})
    for i, (field, _) in zip(infos, spec):
        got = getattr(cls, field)
        if (got.offset, got.size) != (i.offset, i.size):
            raise RuntimeError(f"{name}.{field}: ctypes offset/size {got.offset}/{got.size}, C {i.offset}/{i.size}")
    if C.sizeof(cls) != size.value:
        raise RuntimeError(f"{name}: ctypes sizeof {C.sizeof(cls)}, C {size.value} (a field is not described)")
    return cls


_lib = load_lib()
Config = described(_lib, "grape_pe_config")
ModelConfig = described(_lib, "grape_model_config")
TensorInfo = described(_lib, "grape_tensor_info")
Positions = described(_lib, "grape_positions")
TokenInputInfo = described(_lib, "grape_token_input_info")
Channel = described(_lib, "grape_channel")
ParamInfo = described(_lib, "grape_param_info")
Opts = described(_lib, "grape_attn_opts")


def parse_pe(lib, name):
    """The grape_pe_config of an encoding name, parsed by the library (its kind numbers are the library's)."""
    cfg = Config()
    f = lib.grape_pe_parse
    f.restype, f.argtypes = C.c_int, [C.POINTER(Config), C.c_char_p]
    if f(C.byref(cfg), name.encode()) != 0:
        raise RuntimeError(f"libgrape does not know the encoding {name}")
    return cfg


def bias_kind(lib, name):
    """The grape_bias_kind of an additive encoding name ("none" for none)."""
    return 0 if name == "none" else parse_pe(lib, name).bias


def bind_pe(lib):
    """Signatures of the grape_pe_* functions shared by the encoding tests."""
    sigs = {
        "grape_pe_config_default": (None, [C.POINTER(Config), C.c_int, C.c_int]),
        "grape_pe_create": (C.c_int, [C.POINTER(VP), C.POINTER(Config)]),
        "grape_pe_free": (None, [VP]),
        "grape_pe_num_params": (C.c_size_t, [VP]),
        "grape_pe_num_param_tensors": (C.c_int, [VP]),
        "grape_pe_param_tensor": (C.POINTER(ParamInfo), [VP, C.c_int]),
        "grape_pe_init_params": (C.c_int, [VP, FP, C.c_uint64]),
        "grape_pe_prepare": (C.c_int, [VP, FP]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def bind_bias(lib):
    """Signatures of the additive action's calls: factors and their gradients are opaque handles (void*) inside a
    workspace, read as lists of named channels (grape_bias_factor, grape_bias_grad); token inputs are arrays of
    pointers in the encoding's channel order (grape_pe_token_input_info)."""
    i32, sz, PVP = C.c_int, C.c_size_t, C.POINTER(VP)
    sigs = {
        "grape_pe_num_token_inputs": (i32, [VP]),
        "grape_pe_token_input_info": (C.POINTER(TokenInputInfo), [VP, i32]),
        "grape_bias_workspace_bytes": (sz, [VP, i32, i32]),
        "grape_bias_factors_bind": (i32, [PVP, VP, VP, C.c_int64, i32, i32]),
        "grape_bias_factors_forward": (i32, [PVP, VP, VP, FP, FP, C.POINTER(FP), C.c_int64, i32, i32]),
        "grape_bias_num_factors": (i32, [VP]),
        "grape_bias_factor": (i32, [VP, i32, C.POINTER(Channel)]),
        "grape_bias_grads_bind": (i32, [PVP, VP, VP]),
        "grape_bias_grad": (i32, [VP, i32, C.POINTER(Channel)]),
        "grape_bias_factors_backward": (i32, [FP, FP, FP, C.POINTER(FP), VP, VP, VP, FP, FP, C.POINTER(FP)]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def channels(lib, handle, grads=False):
    """{name: numpy view} of the channels of bias factors (or, grads=True, of their gradients) handle, in the
    library's order, with the dtype and shape the library reports; writes through a view reach the library."""
    out, ch = {}, Channel()
    get = lib.grape_bias_grad if grads else lib.grape_bias_factor
    for i in range(lib.grape_bias_num_factors(handle) if not grads else 64):
        if get(handle, i, C.byref(ch)) != 0:
            break
        shape = tuple(ch.shape[:ch.ndim])
        ctype = C.c_double if ch.dtype == 1 else C.c_float
        buf = (ctype * int(np.prod(shape))).from_address(ch.data)
        out[ch.name.decode()] = np.ctypeslib.as_array(buf).reshape(shape)
    return out


def token_inputs(lib, pe, arrays):
    """The encoding's token inputs as a C array of float pointers in its channel order: arrays[name] (float32,
    C-contiguous, (B,T,width)) for each channel, NULL for a channel not in arrays."""
    n = lib.grape_pe_num_token_inputs(pe)
    names = [lib.grape_pe_token_input_info(pe, i).contents.name.decode() for i in range(n)]
    return (FP * max(n, 1))(*[fptr(arrays.get(name)) for name in names])


def bind_model(lib):
    """Signatures of the grape_model_* functions the model tests call."""
    i32, sz, ccp = C.c_int, C.c_size_t, C.c_char_p
    sigs = {
        "grape_model_preset": (i32, [VP, ccp]),
        "grape_pe_parse": (i32, [VP, ccp]),
        "grape_model_create": (i32, [C.POINTER(VP), VP]),
        "grape_model_load": (i32, [C.POINTER(VP), ccp, i32, i32]),
        "grape_model_save": (i32, [VP, ccp]),
        "grape_model_free": (None, [VP]),
        "grape_model_init": (i32, [VP, C.c_uint64]),
        "grape_model_params_changed": (i32, [VP]),
        "grape_model_num_params": (sz, [VP]),
        "grape_model_params": (FP, [VP]),
        "grape_model_grads": (FP, [VP]),
        "grape_model_num_tensors": (i32, [VP]),
        "grape_model_tensor": (C.POINTER(TensorInfo), [VP, i32]),
        "grape_model_forward": (i32, [VP, VP, VP, i32, i32, FP]),
        "grape_model_backward": (i32, [VP]),
        "grape_model_zero_grad": (None, [VP]),
        "grape_model_logits": (FP, [VP]),
        "grape_last_error": (ccp, []),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def name_options(name):
    """"enc[:opt...]" -> (enc, options): kv (KV-shift), fold (grape-m-basis folded), pair (qk_gain=pair)."""
    parts = name.split(":")
    return parts[0], set(parts[1:])


def create_model(lib, name, n_layer, n_embd, n_head, batch, seq, rng):
    """C model of encoding name (options as name_options) with the official init plus 0.05 N(0,1) noise from rng,
    so no gradient is structurally zero (w_phase = 0, unit gains, equal gates). Free with grape_model_free."""
    enc, opts = name_options(name)
    cfg = ModelConfig()
    assert lib.grape_model_preset(C.byref(cfg), b"tiny") == 0
    assert cfg.pe.xpos_gamma == 0.4 and cfg.pe.ap_probe_dim == 8, "Config out of date with grape.h"
    cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.max_batch, cfg.max_seq = n_layer, n_embd, n_head, batch, seq
    assert lib.grape_pe_parse(C.byref(cfg.pe), enc.encode()) == 0, lib.grape_last_error()
    cfg.pe.kv_shift, cfg.pe.basis_folded, cfg.pe.qk_gain = int("kv" in opts), int("fold" in opts), int("pair" in opts)
    m = VP()
    assert lib.grape_model_create(C.byref(m), C.byref(cfg)) == 0, lib.grape_last_error()
    assert lib.grape_model_init(m, 1234) == 0, lib.grape_last_error()
    n = lib.grape_model_num_params(m)
    params = np.ctypeslib.as_array(lib.grape_model_params(m), shape=(n,))
    params += (0.05 * rng.standard_normal(n)).astype(np.float32)
    assert lib.grape_model_params_changed(m) == 0, lib.grape_last_error()
    return m


def model_tensors(lib, m, vec):
    """The model's tensors as named views into vec (its parameter or gradient vector)."""
    out = {}
    for i in range(lib.grape_model_num_tensors(m)):
        t = lib.grape_model_tensor(m, i).contents
        shape = [t.shape[d] for d in range(t.ndim)]
        out[t.name.decode()] = vec[t.offset:t.offset + int(np.prod(shape))].reshape(shape)
    return out


def compare_model(lib, m, ref, label, tok, tgt, tol):
    """Loss, logits and every parameter gradient of the C model m vs the PyTorch model ref on one batch
    (tok, tgt: (B,T) uint8); ref holds the same weights and names its tensors as the C model."""
    B, T = tok.shape
    n = lib.grape_model_num_params(m)
    loss = C.c_float()
    lib.grape_model_zero_grad(m)
    assert lib.grape_model_forward(m, tok.ctypes.data, tgt.ctypes.data, B, T, C.byref(loss)) == 0, \
        lib.grape_last_error()
    assert lib.grape_model_backward(m) == 0, lib.grape_last_error()
    logits = np.ctypeslib.as_array(lib.grape_model_logits(m), shape=(B, T, 256))
    rlogits, rloss = ref(torch.as_tensor(tok, dtype=torch.long), torch.as_tensor(tgt, dtype=torch.long))
    rloss.backward()
    check(f"{label}: loss vs torch float64", abs(loss.value - rloss.item()) / abs(rloss.item()), tol)
    check(f"{label}: logits vs torch float64", rel_err(logits, rlogits), tol)
    got = model_tensors(lib, m, np.ctypeslib.as_array(lib.grape_model_grads(m), shape=(n,)))
    want = ref.named_grads()
    errs = {k: rel_err(got[k], want[k]) for k in want}
    worst = max(errs, key=errs.get)
    check(f"{label}: all {len(errs)} gradients vs torch (worst {worst})", errs[worst], tol)
    check(f"{label}: C and torch name the same tensors", float(set(got) != set(want)), 0.0)


def read_safetensors(path):
    """(metadata, {name: float32 array}) of a safetensors file: u64 little-endian header length N, N bytes of JSON
    {"__metadata__": {..}, name: {"dtype", "shape", "data_offsets": [begin, end]}}, then the tensor bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, h in header.items():
        assert h["dtype"] == "F32", f"{name}: dtype {h['dtype']}"
        begin, end = h["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(h["shape"]).astype(np.float32)
    return meta, tensors


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
