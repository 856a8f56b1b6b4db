#!/usr/bin/python3
"""Effect sizes against the seed spread, from a `grape compare` directory's results.csv (docs/RESULTS.md).

usage: scripts/effects.py [--partial] DIR [A:B ...]   (A and B may contain colons: grape-m:qk_gain=pair:grape-m)
       scripts/effects.py --into DOC TAG DIR
       scripts/effects.py --claim DOC TAG DIR METRIC[,METRIC...] ROW...

--partial: a pair naming an encoding that has no runs yet is listed as such instead of stopping with an error.
--into: write the per-encoding tables (no pairs) into the markdown file DOC between the lines
        <!-- results:TAG --> and <!-- /results:TAG -->, replacing what was there (atomically; both lines must exist).
--claim: write one verdict table into DOC between <!-- claim:TAG --> and <!-- /claim:TAG -->: for every ROW and
        METRIC a line with the mean, the value of every seed, the larger seed std and the verdict. ROW is A:B (the
        paired difference A - B) or a single encoding A (its own value: meant for the changes "bpb Nx MODE vs 1x" =
        bpb at N x minus bpb at 1x, same mode and run, where the rule asks whether every seed moves the same way by
        more than 2 x the seed std). A ROW without runs yet gets a line saying so.

Prints markdown: one table per metric with mean ± std over seeds for every encoding, then for each pair A:B the
paired differences A - B seed by seed (seed s of every encoding saw the same batches), their mean, and the verdict
of the rule docs/RESULTS.md states:
  effect  when every seed's difference has the same sign and |mean difference| > 2 x the larger seed std of A, B;
  within spread otherwise.
Metrics: bpb at each length and mode, eff_ctx_text, passkey accuracy at 1x, eff_ctx_passkey, r_1x, r_2x, and the
training tokens/s relative to nope. Standard library only.
"""
import contextlib
import csv
import io
import math
import os
import re
import sys
from collections import OrderedDict, defaultdict


# Every metric name run_metrics makes (a claim may name one no run has yet: its rows then wait for the runs).
METRIC = re.compile(r"bpb \d+x (full|bca)( vs 1x)?|eff ctx (text|passkey)|passkey acc \d+x|R [12]x|tok/s vs nope")


def load(path):
    rows = list(csv.DictReader(open(path, newline="")))
    if not rows:
        sys.exit(f"effects: {path} has no rows")
    return rows


def num(x):
    return float(x) if x not in ("", None) else math.nan


def run_metrics(rows):
    """{pe: {seed: {metric: value}}} with one value per run and metric."""
    runs = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        m = runs[r["pe"]][int(r["seed"])]
        mult = float(r["mult"])
        m[f"bpb {mult:g}x {r['mode']}"] = num(r["bpb"])
        m["train tok/s"] = num(r["train_tokens_per_s"])
        m["R 1x"], m["R 2x"] = num(r["r_1x"]), num(r["r_2x"])
        if r["mode"] == "full":
            m["eff ctx text"] = num(r["eff_ctx_text"])
            if r["passkey_acc"] != "":
                m[f"passkey acc {mult:g}x"] = num(r["passkey_acc"])
                m["eff ctx passkey"] = num(r["eff_ctx_passkey"])
    for seeds in runs.values():
        for m in seeds.values():
            for k in [k for k in m if k.startswith("bpb ") and not k.startswith("bpb 1x ")]:
                base = m.get("bpb 1x " + k.split(" ", 2)[2], math.nan)
                m[f"{k} vs 1x"] = m[k] - base
    nope = runs.get("nope")
    for pe, seeds in runs.items():
        for s, m in seeds.items():
            base = nope.get(s, {}).get("train tok/s") if nope else None
            m["tok/s vs nope"] = m["train tok/s"] / base if base else math.nan
    return runs


def stat(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return math.nan, math.nan, 0
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, std, len(xs)


def fmt(mean, std, n, digits):
    if n == 0:
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def digits_of(metric):
    return 4 if metric.startswith("bpb") else 3 if metric.startswith(("R ", "tok/s", "passkey")) else 0


def verdict(d, spread):
    """The effect rule of docs/RESULTS.md over per-seed values d (differences, or one encoding's changes)."""
    if len(d) < 2:
        return "no verdict (one seed)"
    same_sign = all(x > 0 for x in d) or all(x < 0 for x in d)
    return "effect" if same_sign and abs(sum(d) / len(d)) > 2 * spread else "within spread"


def pair(runs, a, b, metric):
    """(mean, per-seed values, larger seed std, verdict) of A - B paired by seed, or of A alone when b is None."""
    if a not in runs or (b is not None and b not in runs):
        return None
    seeds = sorted(set(runs[a]) & set(runs[b])) if b is not None else sorted(runs[a])
    value = lambda pe, s: runs[pe][s].get(metric, math.nan)
    d = [value(a, s) - (value(b, s) if b is not None else 0.0) for s in seeds]
    d = [x for x in d if not math.isnan(x)]
    if not d:
        return None
    spread = max(stat([value(pe, s) for s in seeds])[1] for pe in ([a, b] if b is not None else [a]))
    return sum(d) / len(d), d, spread, verdict(d, spread)


def split_pair(spec, runs):
    """A:B where A and B may hold colons themselves (rope:qk_gain=pair): split where both sides are encodings.
    None when no such split exists."""
    cuts = [i for i, c in enumerate(spec) if c == ":" and spec[:i] in runs and spec[i + 1:] in runs]
    return (spec[:cuts[0]], spec[cuts[0] + 1:]) if len(cuts) == 1 else None


def row_name(spec):
    """How a claim row reads when it has no runs: A:B as "A − B", where a colon followed by key=value is an
    option of the encoding before it (rope:qk_gain=pair), any other colon the pair's separator."""
    pieces = []
    for part in spec.split(":"):
        if "=" in part and pieces:
            pieces[-1] += ":" + part
        else:
            pieces.append(part)
    return " − ".join(pieces) if len(pieces) == 2 else spec


def tables(runs, name):
    """Print one markdown table per metric group (mean ± std per encoding); return the metrics in order."""
    metrics = list(OrderedDict.fromkeys(k for pe in runs.values() for m in pe.values() for k in m
                                        if not k.endswith(" vs 1x")))
    order = ["bpb", "eff ctx", "passkey", "R ", "tok/s vs"]
    metrics = sorted((m for m in metrics if m != "train tok/s"),
                     key=lambda m: next(i for i, p in enumerate(order + [""]) if m.startswith(p)))
    seeds = sorted({s for pe in runs.values() for s in pe})
    print(f"{name}: {len(runs)} encodings, seeds {seeds}\n")
    groups = [[m for m in metrics if m.startswith("bpb") and m.endswith("full")],
              [m for m in metrics if m.startswith("bpb") and m.endswith("bca")],
              [m for m in metrics if not m.startswith("bpb")]]
    for group in groups:
        print("| encoding | seeds | " + " | ".join(group) + " |")
        print("|---|---:|" + "---:|" * len(group))
        for pe, by_seed in runs.items():
            vals = [stat([m.get(k, math.nan) for m in by_seed.values()]) for k in group]
            if all(v[2] == 0 for v in vals):
                continue
            print(f"| {pe} | {len(by_seed)} | " + " | ".join(fmt(*v, digits_of(k)) for v, k in zip(vals, group)) + " |")
        print()
    return metrics


def splice(doc, kind, tag, text):
    """Replace the lines between <!-- KIND:TAG --> and <!-- /KIND:TAG --> of doc by text (temp + rename)."""
    begin, end = f"<!-- {kind}:{tag} -->", f"<!-- /{kind}:{tag} -->"
    lines = open(doc).read().split("\n")
    if lines.count(begin) != 1 or lines.count(end) != 1 or lines.index(begin) > lines.index(end):
        sys.exit(f"effects: {doc} needs one line {begin} followed by one line {end}")
    i, j = lines.index(begin), lines.index(end)
    out = "\n".join(lines[:i + 1] + text.rstrip("\n").split("\n") + lines[j:])
    tmp = f"{doc}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(out)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, doc)


def diff_cells(metric, p):
    """'mean | per seed | larger seed std | verdict |' of a pair() result."""
    dg = digits_of(metric)
    return f"{p[0]:+.{dg}f} | " + ", ".join(f"{x:+.{dg}f}" for x in p[1]) + f" | {p[2]:.{dg}f} | {p[3]} |"


def claim_table(runs, metrics, rows):
    """The verdict table of one claim: a line per ROW (A:B or A) and metric."""
    out = ["| comparison | metric | mean | per seed | larger seed std | verdict |",
           "|---|---|---:|---|---:|---|"]
    for spec in rows:
        ab = (spec, None) if spec in runs else split_pair(spec, runs)
        name = row_name(spec) if ab is None else ab[0] if ab[1] is None else f"{ab[0]} − {ab[1]}"
        ps = [(k, pair(runs, *ab, k)) for k in metrics] if ab else []
        if not any(p for _, p in ps):
            out.append(f"| {name} | | | not in the results yet | | |")
        out += [f"| {name} | {k} | " + diff_cells(k, p) for k, p in ps if p]
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    if args[:1] == ["--into"]:
        if len(args) != 4:
            sys.exit(__doc__)
        doc, tag, d = args[1:]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            tables(run_metrics(load(f"{d}/results.csv")), d)
        splice(doc, "results", tag, buf.getvalue())
        return
    if args[:1] == ["--claim"]:
        if len(args) < 6:
            sys.exit(__doc__)
        doc, tag, d = args[1:4]
        metrics = args[4].split(",")
        unknown = [k for k in metrics if not METRIC.fullmatch(k)]
        if unknown:
            sys.exit(f"effects: {unknown[0]!r} is not a metric")
        splice(doc, "claim", tag, claim_table(run_metrics(load(f"{d}/results.csv")), metrics, args[5:]))
        return
    partial = bool(args) and args[0] == "--partial"
    args = args[1:] if partial else args
    if not args:
        sys.exit(__doc__)
    runs = run_metrics(load(f"{args[0]}/results.csv"))
    metrics = tables(runs, args[0])
    for spec in args[1:]:
        ab = split_pair(spec, runs)
        if ab is None and partial:
            print(f"\n{spec}: not in the results yet\n")
            continue
        if ab is None:
            sys.exit(f"effects: cannot read {spec!r} as A:B of two encodings in the results")
        a, b = ab
        print(f"\n{a} − {b} (paired by seed; effect: same sign on every seed and |mean| > 2 × the larger seed std)\n")
        print("| metric | mean difference | per seed | larger seed std | verdict |")
        print("|---|---:|---|---:|---|")
        for k in metrics:
            p = pair(runs, a, b, k)
            if p:
                print(f"| {k} | " + diff_cells(k, p))


if __name__ == "__main__":
    main()
