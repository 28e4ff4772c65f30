"""Aggregates independent jobs of the experiment grid (maps x algorithms x seeds) into the paper-style
table (median / mean +- std of the final greedy test win rate over seeds) and win-rate curves.

Each job is one `python train.py --phases micro --map M --algs A --seeds S` run writing runs/<config>-<time>/;
this script reads every runs/*/metrics.csv (+ config.json) it is given:

    python aggregate.py runs/ [--out runs/aggregate] [--seeds 0,1,2]

`--seeds` keeps only those seeds (e.g. to print a 3-seed subset beside the full table). A job (env, map, alg, seed)
found in two metrics.csv files (say a run cut by a time limit and its re-run) is an error: remove one of them.
"""
import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def load(root: Path, seeds: set[int] | None = None):
    """-> {(env, map, alg): {seed: [(t_env, win, return), ...]}}, only the given seeds when `seeds` is set."""
    curves = defaultdict(dict)
    source: dict[tuple, Path] = {}
    for metrics in sorted(root.rglob("metrics.csv")):
        cfg_path = metrics.parent / "config.json"
        if not cfg_path.exists():
            continue
        cfg = json.loads(cfg_path.read_text())
        with open(metrics) as f:
            for row in csv.DictReader(f):
                if row["phase"] != "micro":
                    continue
                key, seed = (cfg["env"], cfg["map"], row["alg"]), int(row["seed"])
                if seeds is not None and seed not in seeds:
                    continue
                if source.setdefault(key + (seed,), metrics) != metrics:
                    raise SystemExit(f"job {key + (seed,)} appears in both {source[key + (seed,)]} and {metrics}; "
                                     "keep one of them")
                curves[key].setdefault(seed, []).append((int(row["t_env"]), float(row["test_win_rate"]), float(row["test_return"])))
    return curves


def table(curves) -> str:
    """Final (last test) and best (peak over the tests) greedy win rate per job; mean +- std over seeds (std with
    ddof 0, numpy's default), and every seed's final / best."""
    lines = ["| env | map | alg | seeds | final win rate, median | mean +- std | best win rate, mean +- std | "
             "final / best per seed | env steps |", "|---|---|---|---|---|---|---|---|---|"]
    for (env, m, alg), seeds in sorted(curves.items()):
        finals = np.array([sorted(seeds[s])[-1][1] for s in sorted(seeds)])
        bests = np.array([max(w for _, w, _ in seeds[s]) for s in sorted(seeds)])
        steps = min(sorted(c)[-1][0] for c in seeds.values())
        per_seed = ", ".join(f"s{s} {f:.2f} / {b:.2f}" for s, f, b in zip(sorted(seeds), finals, bests))
        lines.append(f"| {env} | {m} | {alg} | {len(finals)} | {np.median(finals):.2f} | {finals.mean():.2f} +- {finals.std():.2f} | "
                     f"{bests.mean():.2f} +- {bests.std():.2f} | {per_seed} | {steps} |")
    return "\n".join(lines)


def plot(curves, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = sorted({(e, m) for e, m, _ in curves})
    fig, axes = plt.subplots(1, len(maps), figsize=(5 * len(maps), 3.6), squeeze=False)
    for ax, (env, m) in zip(axes[0], maps):
        for (e, mm, alg), seeds in sorted(curves.items()):
            if (e, mm) != (env, m):
                continue
            grid = sorted({t for c in seeds.values() for t, _, _ in c})
            ys = np.array([np.interp(grid, *zip(*[(t, w) for t, w, _ in sorted(c)])) for c in seeds.values()])
            med = np.median(ys, 0)
            ax.plot(grid, med, label=f"{alg} ({len(ys)} seeds)")
            if len(ys) > 1:
                ax.fill_between(grid, np.percentile(ys, 25, 0), np.percentile(ys, 75, 0), alpha=0.2)
        ax.set_title(f"{env.upper()} {m}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("test win rate (median, IQR)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", nargs="?", default="runs")
    p.add_argument("--out", default=None, help="folder for table.md and win_rates.png (default <root>/aggregate, "
                   "or <root>/aggregate-s0-1-2 with --seeds 0,1,2)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds to keep (default: every seed found)")
    a = p.parse_args()
    root = Path(a.root)
    curves = load(root, None if a.seeds is None else {int(x) for x in a.seeds.split(",")})
    if not curves:
        raise SystemExit(f"no micro-phase metrics.csv under {root}")
    out = Path(a.out or root / ("aggregate" if a.seeds is None else "aggregate-s" + a.seeds.replace(",", "-")))
    out.mkdir(parents=True, exist_ok=True)
    t = table(curves)
    (out / "table.md").write_text(t + "\n")
    plot(curves, out / "win_rates.png")
    print(t)
    print(f"\nwrote {out}/table.md and {out}/win_rates.png")


if __name__ == "__main__":
    main()
