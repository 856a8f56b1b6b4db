"""test_fox_gates.py — scripts/fox_gates.py, the FoX forget-gate report of docs/RESULTS.md, on a short `grape train
--pe fox` run: the log f it captures from inside the model equals log sigmoid(w . RMSNorm(x) + b) computed from the
layer-0 weights directly (1e-6), with w = 0 every head's mean, min and max log f equal log sigmoid(b) and the reach
equals ln 100 / -log sigmoid(b) (1e-6), capturing leaves the model's logits unchanged (exactly) and no wrapper
behind, and the script prints one row per layer and head for a fox run and "has no FoX gate" for a rope run."""
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import fox_gates  # noqa: E402
import grape_torch  # noqa: E402
from common import check, finish  # noqa: E402
from test_grape_torch import T, corpus, train  # noqa: E402

SCRIPT = os.path.join(HERE, "..", "..", "scripts", "fox_gates.py")


def table_rows(text):
    """The numeric rows of gate_table's markdown table as lists of floats."""
    return [[float(c) for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and line[2].isdigit()]


def main():
    grape = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/x")), "grape")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "corpus.txt")
        corpus(data)
        fox, rope = os.path.join(tmp, "fox"), os.path.join(tmp, "rope")
        train(grape, "fox", data, fox)
        train(grape, "rope", data, rope)
        model = grape_torch.load(fox, torch.float64)
        windows = fox_gates.windows_of(open(data, "rb").read(), T, 3)
        with torch.no_grad():
            before = model(windows)
            log_f = fox_gates.gate_log_f(model, windows)
            after = model(windows)
            a = model.layers[0].attn
            direct = F.logsigmoid(grape_torch.rmsnorm(model.wte[windows], model.layers[0].ln1.weight) @ a.w_gate.T +
                                  a.b_gate)
        check("captured log f of layer 0 vs log sigmoid(w . RMSNorm(x) + b) from the weights",
              (log_f[0] - direct).abs().max().item(), 1e-6)
        check("one (N,T,H) log f per layer", float([tuple(x.shape) for x in log_f] != [(3, T, 2)] * 2), 0.0)
        check("logits after capturing equal the logits before", (after - before).abs().max().item(), 0.0)
        check("the capturing wrapper is removed from every layer",
              float(any("bias" in vars(layer) for layer in model.layers)), 0.0)
        b = torch.tensor([-0.5, 1.5], dtype=torch.float64)
        for layer in model.layers:
            layer.attn.w_gate.data.zero_()
            layer.attn.b_gate.data.copy_(b)
        err = 0.0
        for layer, head, bias, ls_b, mean, lo, hi, reach in fox_gates.head_stats(model, windows):
            want = F.logsigmoid(b[head]).item()
            err = max(err, abs(bias - b[head].item()), abs(ls_b - want), abs(mean - want), abs(lo - want),
                      abs(hi - want), abs(reach - math.log(100.0) / -want) / reach)
        check("w = 0: bias, log σ(b), mean/min/max log f and reach of every head in closed form", err, 1e-6)
        check("w = 0: the table holds layers x heads rows", abs(len(table_rows(fox_gates.gate_table(model, windows))) -
                                                             4), 0)
        out = subprocess.run([sys.executable, SCRIPT, fox, rope, "--windows", "2"], capture_output=True, text=True)
        check("fox_gates.py on a fox and a rope run exits 0", out.returncode, 0)
        check("fox_gates.py: 4 rows for the fox run", abs(len(table_rows(out.stdout)) - 4), 0)
        check("fox_gates.py: the rope run has no FoX gate", float("encoding rope has no FoX gate" not in out.stdout),
              0.0)
    finish()


if __name__ == "__main__":
    main()
