"""MEow's action density on the MultiGoal toy at states other than the origin, against pi*(.|s).

benchmarks/multigoal_modes.py measures pi(a|s) only at the start s = (0, 0). This trains MEow (the MultiGoal
demo settings, seeds vmapped; or loads the agent states saved by an earlier run) and prints, per state s and
seed: the modes of pi(a|s), the TV distance to the soft-optimal pi*(.|s), MEow's exact V(s) against V*(s) and
the fraction of sampled actions per goal direction; pi*'s own row comes first. Writes a figure (one row per
state: pi*, then each seed) to --out.

    python benchmarks/multigoal_states.py --save runs/mg_states_4k.pkl                 # train, measure, keep the agents
    python benchmarks/multigoal_states.py --load runs/mg_states_4k.pkl --states 2 2 -2 2  # measure again, no training
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import tyro  # noqa: E402

from meow_rl.config import Config, MultiGoalDemo  # noqa: E402
from meow_rl.demo import (action_grid, densities_at_states, format_fractions, format_modes,  # noqa: E402
                          train_multigoal)
from meow_rl.envs import MULTIGOAL_GOALS, multigoal  # noqa: E402
from meow_rl.meow import make_meow  # noqa: E402


@dataclass(frozen=True)
class Args:
    demo: MultiGoalDemo = field(default_factory=MultiGoalDemo)
    seeds: tuple[int, ...] = (1, 2, 3)
    states: tuple[float, ...] = (0.0, 0.0, 1.5, 1.5, -1.5, 1.5, -1.5, -1.5, 1.5, -1.5, 2.5, 0.0)
    """x y pairs, flattened: the states at which pi(a|s) is measured"""
    out: str = "runs/multigoal_states.png"
    save: str = ""
    """write the trained agent states (numpy), hyperparameters, seeds and demo settings to this .pkl"""
    load: str = ""
    """skip training: measure the agents of a .pkl written by --save (its demo settings and seeds are used)"""


def main(argv=None):
    args = tyro.cli(Args, args=argv)
    if len(args.states) % 2:
        raise ValueError(f"--states needs x y pairs, got {len(args.states)} numbers")
    states = [tuple(args.states[i:i + 2]) for i in range(0, len(args.states), 2)]
    t0 = time.time()
    if args.load:
        with open(args.load, "rb") as f:
            ck = pickle.load(f)
        demo, seeds, hp = ck["demo"], ck["seeds"], ck["hp"]
        res = {"agent": make_meow(hp, 2, 2), "hp": hp, "env": multigoal(), "states": ck["states"]}
    else:
        demo, seeds = args.demo, args.seeds
        res = train_multigoal(Config(multigoal=demo), seeds, ("meow",))["meow"]
        if args.save:
            os.makedirs(os.path.dirname(args.save) or ".", exist_ok=True)
            with open(args.save, "wb") as f:
                pickle.dump({"demo": demo, "seeds": seeds, "hp": res["hp"],
                             "states": jax.tree_util.tree_map(np.asarray, res["states"])}, f)
    t1 = time.time()
    rows = densities_at_states(res, demo, seeds, states, jax.random.PRNGKey(7))
    print(f"MultiGoal MEow: {demo.steps} steps ({demo.warmup} warm-up), tau {demo.meow_tau}, init {demo.meow_init}; "
          f"seeds {list(seeds)}; {'loaded ' + args.load if args.load else 'training'} {t1 - t0:.0f} s, "
          f"measurement {time.time() - t1:.0f} s\n")
    print("| state s | policy | modes of pi(a\\|s) (positions) | actions per goal dir. (+x/-x/+y/-y) | TV to pi*(.\\|s) | "
          "V(s) |\n|---|---|---|---|---|---|")
    for r in rows:
        name = "soft-optimal pi*" if r["seed"] == "pi*" else f"MEow seed {r['seed']}"
        print(f"| ({r['state'][0]:g}, {r['state'][1]:g}) | {name} | {format_modes(r['modes'])} | "
              f"{format_fractions(r['directions'])} | "
              f"{r['tv_to_optimum']:.2f} | {r['v']:.1f} |")
    plot_states(rows, len(states), args.out, demo.steps)
    print(f"\nfigure: {args.out}")
    return rows


def plot_states(rows, n_states: int, path: str, steps: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A1, A2, _ = action_grid()
    n_cols = len(rows) // n_states
    fig, axes = plt.subplots(n_states, n_cols, figsize=(3.2 * n_cols, 3.3 * n_states), squeeze=False)
    for k, r in enumerate(rows):
        ax = axes[k // n_cols, k % n_cols]
        ax.contourf(A1, A2, r["density"] / r["density"].max(), levels=20, cmap="viridis")
        for m in r["modes"]:
            ax.plot(*m, "r+", ms=10, mew=2)
        s = np.asarray(r["state"])
        for g in MULTIGOAL_GOALS:  # the direction from s to each goal, a white star at the box edge
            d = (g - s) / np.linalg.norm(g - s)
            ax.plot(*(0.97 * d / np.abs(d).max()), "w*", ms=8)
        who = "pi*" if r["seed"] == "pi*" else f"MEow s{r['seed']} ({steps} st.)"
        ax.set_title(f"{who}, s=({s[0]:g},{s[1]:g}): {len(r['modes'])} mode(s)", fontsize=9)
        ax.set_xticks([-1, 0, 1]); ax.set_yticks([-1, 0, 1]); ax.set_aspect("equal")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)


if __name__ == "__main__":
    main()
