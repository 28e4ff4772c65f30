"""Per-seed values and their mean, from the results.json of finished runs (one run per seed).

    python benchmarks/seed_table.py runs/digits-<time-seed0> runs/digits-<time-seed1> [...]

Reads each run's config.json (for its seed) and results.json (written by train.py) and prints, for
every method, one table row per run and one with the mean over the runs (markdown).
Also prints, per metric, the method order (best first) in each run, so a reader can see whether a
ranking survives the seed change, and, from each run's metrics.csv (phase `eval/<method>`), in how
many classes one method beats another on each class-wise metric (`--compare A B`, default DLSM + CE
vs base (CE)). Computes nothing new from models: reads files only, no lock needed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os

import numpy as np

# which direction is better, by metric name prefix (the rest are not ranked)
LOWER_IS_BETTER = ("held-out DLSM loss", "CW-FD", "sigma*D_L", "sigma*D_P", "off-class")
HIGHER_IS_BETTER = ("its reduction", "CW precision", "CW recall", "CW density", "CW coverage", "CAS")


def load(run_dir: str):
    with open(os.path.join(run_dir, "config.json")) as f:
        seed = json.load(f)["seed"]
    with open(os.path.join(run_dir, "results.json")) as f:
        res = json.load(f)
    return seed, {k: v for k, v in res.items() if not k.startswith("_")}


def class_metrics(run_dir: str):
    """{method: {metric: {class: value}}} from the eval/<method> rows of metrics.csv."""
    out: dict = {}
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        for row in csv.DictReader(f):
            if row["phase"].startswith("eval/") and row["name"].startswith("class_"):
                meth = row["phase"][len("eval/"):]
                out.setdefault(meth, {}).setdefault(row["name"], {})[int(row["step"])] = float(row["value"])
    return out


def better(metric: str, a: float, b: float) -> bool:
    lower = metric.endswith("_fd")
    return a < b if lower else a > b


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--compare", nargs=2, default=["DLSM + CE", "base (CE)"], metavar=("A", "B"))
    args = p.parse_args(argv)
    runs = [load(d) for d in args.run_dirs]
    seeds = [s for s, _ in runs]
    methods = list(runs[0][1])
    metrics = [m for m in runs[0][1][methods[0]]]
    for _, r in runs[1:]:
        if list(r) != methods:
            raise SystemExit(f"runs have different method rows: {methods} vs {list(r)}")
    print("| method | seed | " + " | ".join(metrics) + " |")
    print("|" + " --- |" * (len(metrics) + 2))
    for meth in methods:
        for s, r in runs:
            print(f"| {meth} | {s} | " + " | ".join(f"{r[meth][m]:.4g}" for m in metrics) + " |")
        means = [np.mean([r[meth][m] for _, r in runs]) for m in metrics]
        print(f"| {meth} | **mean** | " + " | ".join(f"**{v:.4g}**" for v in means) + " |")
    print()
    for m in metrics:
        if m.startswith(LOWER_IS_BETTER):
            sign = 1.0
        elif m.startswith(HIGHER_IS_BETTER):
            sign = -1.0
        else:
            continue
        orders = []
        for s, r in runs:
            ranked = sorted(methods, key=lambda meth: sign * r[meth][m])
            orders.append(f"seed {s}: " + " > ".join(ranked))
        print(f"{m} (best first): " + "; ".join(orders))
    a, b = args.compare
    print(f"\nclass-wise, {a} against {b} (number of classes, per seed):")
    per_run = [(s, class_metrics(d)) for (s, _), d in zip(runs, args.run_dirs)]
    for m in ("class_precision", "class_recall", "class_density", "class_coverage", "class_fd"):
        counts = []
        for s, cm in per_run:
            if a not in cm or b not in cm:
                raise SystemExit(f"metrics.csv of seed {s} lacks eval/{a} or eval/{b}")
            va, vb = cm[a][m], cm[b][m]
            win = sum(better(m, va[c], vb[c]) for c in va)
            tie = sum(va[c] == vb[c] for c in va)
            counts.append(f"seed {s}: {win} better / {tie} equal / {len(va) - win - tie} worse")
        print(f"  {m}: " + "; ".join(counts))


if __name__ == "__main__":
    main()
