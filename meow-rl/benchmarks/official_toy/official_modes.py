"""Measure the official toy's runs (run_official_toy.py's .npz files) exactly as benchmarks/multigoal_modes.py
measures this repo's: modes of pi(a|s=0) (demo.count_modes), action fraction per goal direction, TV to the
soft-optimal pi* of the same grid, V(0), goals reached from (0, 0); prints a markdown table and writes the
densities next to pi*'s to --out. For .npz files written with --states, a second table: at each of those states
the modes of pi(a|s), action fraction per goal direction, TV to pi*(.|s) and V(s) against V*(s), pi*'s row first
(the columns of benchmarks/multigoal_states.py).

    python benchmarks/official_toy/official_modes.py runs/official_s1.npz runs/official_s2.npz --out docs/x.png
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from meow_rl.config import MultiGoalDemo  # noqa: E402
from meow_rl.demo import (action_grid, count_modes, format_fractions as fmt, format_modes,  # noqa: E402
                          goal_direction_fractions, normalised_density)
from meow_rl.soft_value_iteration import soft_optimal_log_pi, soft_optimal_value, soft_value_iteration  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("npz", nargs="+")
    p.add_argument("--out", default="runs/official_toy_modes.png")
    args = p.parse_args(argv)
    demo = MultiGoalDemo()
    A1, A2, grid = action_grid()
    opt = soft_value_iteration(demo.meow_alpha, demo.gamma)
    p_opt = np.exp(soft_optimal_log_pi(opt, demo.meow_alpha, demo.gamma, (0.0, 0.0), grid)).reshape(A1.shape)
    print("| policy | seed | modes of pi(a\\|s=0) (positions) | actions per goal dir. (+x/-x/+y/-y) | TV to pi* | V(0) | "
          "goals reached from (0,0) (+x/-x/+y/-y) of 200 |\n|---|---|---|---|---|---|---|")
    panels = [("soft-optimal pi*", p_opt, count_modes(p_opt, (A1, A2)))]
    for f in args.npz:
        z = np.load(f)
        dens = normalised_density(z["logp"])
        modes = count_modes(dens, (A1, A2))
        print(f"| official toy code, {int(z['steps'])} steps | {int(z['seed'])} | {format_modes(modes)} | "
              f"{fmt(goal_direction_fractions(z['samples']))} | {0.5 * np.abs(dens - p_opt).sum():.2f} | "
              f"{float(z['v0']):.1f} | {' / '.join(str(int(c)) for c in z['goals'])} |")
        panels.append((f"official toy code, seed {int(z['seed'])}, {int(z['steps'])} steps", dens, modes))
    runs = [z for z in map(np.load, args.npz) if "states" in z and len(z["states"])]
    states = list(dict.fromkeys(tuple(float(x) for x in s) for z in runs for s in z["states"]))  # in the order given
    if states:
        print("\n| state s | policy | modes of pi(a\\|s) (positions) | actions per goal dir. (+x/-x/+y/-y) | TV to pi*(.\\|s) | "
              "V(s) |\n|---|---|---|---|---|---|")
    for s in states:
        p_s = normalised_density(soft_optimal_log_pi(opt, demo.meow_alpha, demo.gamma, s, grid).reshape(A1.shape))
        rows = [("soft-optimal pi*", p_s, goal_direction_fractions(grid, p_s), soft_optimal_value(opt, s))]
        for z in runs:
            j = next((j for j, x in enumerate(z["states"]) if tuple(float(v) for v in x) == s), None)
            if j is not None:
                rows.append((f"official toy code, {int(z['steps'])} steps, seed {int(z['seed'])}",
                             normalised_density(z["logp_states"][j]), goal_direction_fractions(z["samples_states"][j]),
                             float(z["v_states"][j])))
        for name, dens, dirs, v in rows:
            modes = count_modes(dens, (A1, A2))
            print(f"| ({s[0]:g}, {s[1]:g}) | {name} | {format_modes(modes)} | {fmt(dirs)} | "
                  f"{0.5 * np.abs(dens - p_s).sum():.2f} | {v:.1f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.6), squeeze=False)
    for ax, (title, dens, modes) in zip(axes[0], panels):
        ax.contourf(A1, A2, dens / dens.max(), levels=30, cmap="viridis")
        for m in modes:
            ax.plot(*m, "r+", ms=12, mew=2)
        ax.set_title(f"{title}\npi(a|s=(0,0)): {len(modes)} mode(s) (+)", fontsize=10)
        ax.set_xlabel("a_x"); ax.set_ylabel("a_y"); ax.set_aspect("equal")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
