"""The paper's toy comparison (Table 1): KL and Fisher divergence of ML / SML / SSM / DSM / FDSSM toy flows.

Each (density, objective) pair trains the 2-D toy flow (10 x [2x2 linear, affine coupling,
actnorm] + linear) from the same initialisation on the same fresh batches, then measures
KL(p_s || q) and the Fisher divergence 1/2 E_p||grad log p_s - grad log q||^2 on 10k fresh samples
of p_s against the exact density (``ebflow/toy_density.py``). Prints a table with standard errors,
writes CSV and a density plot. ``--eval-at 1200,3000`` also scores every run at those steps
(same run, evaluation time not counted), to see whether a gap closes with training length.

    python benchmarks/toy_divergence.py                                  # small CPU budget (README)
    python benchmarks/toy_divergence.py --datasets sine,swirl --steps 50000 --lr 1e-4 --batch 2048 --ema 0.999
        # ~ paper length for sine/swirl (official toy configs: 50k steps, batch 2048; checkerboard
        # 100k steps, batch 10000; ML lr 5e-4 sine / 5e-3 swirl; clip 1 sine, 10 swirl/checkerboard)
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ebflow import data as D  # noqa: E402
from ebflow.flow import toy_flow  # noqa: E402
from ebflow.objectives import ObjectiveConfig  # noqa: E402
from ebflow.toy import make_eval_set, toy_divergences, toy_objective_config, toy_train_batch  # noqa: E402
from ebflow.training import check_finite, init_state, make_optimizer, make_train_step  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(D.TOY_DATASETS))
    ap.add_argument("--objectives", default="ml,sml,ssm,dsm,fdssm")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grad-clip", type=float, default=1.0, help="official toy configs: 1.0")
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--eps", type=float, default=0.1, help="FDSSM radius (official toys: 0.1)")
    ap.add_argument("--smoothing", type=float, default=0.375)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--eval-n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-at", default="", help="comma-separated extra steps at which to score each run (e.g. 1200,3000)")
    ap.add_argument("--out", default="runs/toy_divergence")
    a = ap.parse_args(argv)
    names, objectives = a.datasets.split(","), a.objectives.split(",")
    eval_at = sorted({int(s) for s in a.eval_at.split(",") if s.strip()} | {a.steps})
    if eval_at[0] < 1 or eval_at[-1] > a.steps:
        raise ValueError(f"--eval-at steps must lie in 1..--steps ({a.steps}), got {a.eval_at!r}")
    flow = toy_flow(num_blocks=a.blocks)
    opt = make_optimizer(a.lr, a.grad_clip, optimizer="adam")
    steps = {o: make_train_step(flow, o, toy_objective_config(o, ObjectiveConfig(eps=a.eps), a.smoothing), opt, a.ema)
             for o in objectives}  # one compile per objective, reused for every density
    os.makedirs(a.out, exist_ok=True)
    rows, states = [], {}
    for name in names:
        ev = make_eval_set(name, a.eval_n, smoothing=a.smoothing)
        for o in objectives:
            state = init_state(flow, jax.random.PRNGKey(a.seed), opt)
            secs, t0 = 0.0, time.time()
            for s in range(a.steps):
                rng = np.random.default_rng([a.seed, s])
                x = jnp.asarray(toy_train_batch(name, o, a.batch, rng, a.smoothing), jnp.float32)
                state, loss = steps[o](state, x, jax.random.fold_in(jax.random.PRNGKey(a.seed + 1), s))
                if s + 1 not in eval_at:
                    continue
                check_finite(loss, s + 1, o)  # synchronises, so the time below is the training time
                secs += time.time() - t0
                r = {"dataset": name, "objective": o, "steps": s + 1, "seconds": round(secs, 1),
                     **toy_divergences(flow, state.ema_params, ev)}
                rows.append(r)
                print(f"{name:>12} {o:>6} step {s + 1:>6}: KL {r['kl']:.4f} +- {r['kl_se']:.4f}  "
                      f"Fisher {r['fisher']:.4f} +- {r['fisher_se']:.4f}  ({secs:.1f} s training incl. compile)", flush=True)
                t0 = time.time()
            states[(name, o)] = state.ema_params
    with open(os.path.join(a.out, "toy_divergence.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\n{a.steps} steps, batch {a.batch}, Adam lr {a.lr}, clip {a.grad_clip}, EMA {a.ema}; "
          f"KL(p||q) / Fisher divergence on {a.eval_n} samples of the exact smoothed density (+- 1 s.e.)\n")
    print("| density | " + " | ".join(f"{o} KL | {o} Fisher" for o in objectives) + " |")
    print("| --- |" + " --- | --- |" * len(objectives))
    for name in names:
        cells = []
        for o in objectives:
            (r,) = [r for r in rows if r["dataset"] == name and r["objective"] == o and r["steps"] == a.steps]
            cells += [f"{r['kl']:.3f} ± {r['kl_se']:.3f}", f"{r['fisher']:.3f} ± {r['fisher_se']:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if len(eval_at) > 1:
        print("\nKL / Fisher divergence by training step (same runs)\n")
        print("| density | objective | " + " | ".join(f"step {t}" for t in eval_at) + " |")
        print("| --- | --- |" + " --- |" * len(eval_at))
        for name in names:
            for o in objectives:
                by = {r["steps"]: r for r in rows if r["dataset"] == name and r["objective"] == o}
                print(f"| {name} | {o} | " + " | ".join(f"{by[t]['kl']:.3f} / {by[t]['fisher']:.3f}" for t in eval_at) + " |")
    plot(flow, states, names, objectives, a.smoothing, os.path.join(a.out, "toy_densities.png"))


def plot(flow, states, names, objectives, smoothing, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ebflow import toy_density

    g = np.linspace(-10, 10, 120)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    fig, axes = plt.subplots(len(names), len(objectives) + 1, figsize=(2 * (len(objectives) + 1), 2 * len(names)), squeeze=False)
    logq = jax.jit(flow.log_prob)
    for i, name in enumerate(names):
        dens = [np.exp(toy_density.oracle(name, pts, smoothing)[0])]
        dens += [np.exp(np.asarray(logq(states[(name, o)], jnp.asarray(pts, jnp.float32)))) for o in objectives]
        for j, (d, t) in enumerate(zip(dens, ["true p_s"] + objectives)):
            axes[i, j].imshow(d.reshape(xx.shape), extent=(-10, 10, -10, 10), origin="lower", cmap="viridis")
            axes[i, j].set_axis_off()
            if i == 0:
                axes[i, j].set_title(t, fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
