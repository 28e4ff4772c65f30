"""Multi-modality of MEow vs SAC on the 2-D MultiGoal toy, measured against the soft-optimal policy.

Trains MEow and SAC (seeds vmapped, the MultiGoal demo settings of the config, overridable) and
prints, per seed, at the start state s = (0, 0): the modes of pi(a|s) (local maxima >= 5 % of the
peak), the fraction of sampled actions per goal direction, the total-variation distance to the
soft-optimal pi* (soft value iteration on a grid), MEow's exact V(0) against V*(0), and the goals
reached by stochastic rollouts. Writes the density / rollout figure to --out.

    python benchmarks/multigoal_modes.py                                 # the paper's toy settings, seeds 1 2 3
    python benchmarks/multigoal_modes.py --demo.steps 12000 --algos meow # any MultiGoalDemo field
    python benchmarks/multigoal_modes.py --fit-steps 3000                # + the flow fitted to pi*(.|0) (no RL)
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import tyro  # noqa: E402

from meow_rl.config import Config, MultiGoalDemo  # noqa: E402
from meow_rl.demo import mode_report, plot_multigoal, report_table, train_multigoal  # noqa: E402


@dataclass(frozen=True)
class Args:
    demo: MultiGoalDemo = field(default_factory=MultiGoalDemo)
    seeds: tuple[int, ...] = (1, 2, 3)
    algos: tuple[str, ...] = ("meow", "sac")
    out: str = "runs/multigoal_modes.png"
    fit_steps: int = 0
    """> 0: also fit MEow's flow to pi*(.|0) by maximum likelihood for this many Adam steps (capacity check, no RL)"""


def main(argv=None):
    args = tyro.cli(Args, args=argv)
    cfg = Config(multigoal=args.demo)
    t0 = time.time()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    res = train_multigoal(cfg, args.seeds, args.algos)
    t1 = time.time()
    rows, ref = mode_report(res, args.demo, args.seeds, jax.random.PRNGKey(7), fit_steps=args.fit_steps)
    plot_multigoal(rows, ref, args.out)
    d = args.demo
    print(f"\nMultiGoal: {d.steps} steps ({d.warmup} warm-up), gamma {d.gamma}, MEow alpha {d.meow_alpha} tau {d.meow_tau} "
          f"init {d.meow_init} "
          f"log sigma in [{d.meow_sigma_min}, {d.meow_sigma_max}], SAC alpha {d.sac_alpha}; seeds {list(args.seeds)}; "
          f"rollouts {d.rollouts} x <= {d.rollout_steps} steps; training {t1 - t0:.0f} s, report {time.time() - t1:.0f} s\n")
    print(report_table(rows, ref))
    print(f"\nfigure: {args.out}")
    return rows, ref


if __name__ == "__main__":
    main()
