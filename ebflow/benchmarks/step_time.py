"""Per-iteration time of ML vs SSM vs DSM vs FDSSM as the data dimension D grows (FC flow, 2 layers).

The paper's claim: score matching costs O(D^2 L) per step, maximum likelihood O(D^3 L) (the
linear layers' log|det W|). Prints ms/step, the fitted log-log slopes, the share of the ML step
spent on the log-determinants (forward + gradient), and ML/SSM at the largest D; writes a plot.

    python benchmarks/step_time.py                       # D = 64, 256, 784, 1024 (quick)
    python benchmarks/step_time.py --dims 64,256,784,1024,2048,3072 --reps 2 --methods ml,ssm,dsm,fdssm
    python benchmarks/step_time.py --dims 64,784 --reps 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ebflow.flow import fc_flow  # noqa: E402
from ebflow.objectives import ObjectiveConfig, total_loss  # noqa: E402

METHODS = ("ml", "ml-autodiff-slogdet", "ssm", "dsm", "fdssm")


def _loss(method, flow, ocfg):
    if method == "ml-autodiff-slogdet":  # the same ML objective with jnp.linalg.slogdet under autodiff
        def f(p, x, k):
            lin = sum(jnp.linalg.slogdet(q["w"])[1] for q, l in zip(p, flow.layers) if l.linear)
            return jnp.mean(flow.energy(p, x) - lin) / flow.dim
        return f
    return lambda p, x, k: total_loss(method, flow, p, x, k, ocfg)


def time_fn(fn, args, reps):
    jax.block_until_ready(fn(*args))  # compile
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default="64,256,784,1024", help="comma-separated D; the README adds 2048,3072")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default="runs/bench", help="folder for the plot and CSV")
    a = ap.parse_args(argv)
    dims = [int(d) for d in a.dims.split(",")]
    methods = a.methods.split(",")
    ocfg = ObjectiveConfig()
    res = {m: [] for m in methods}
    share = []
    print(f"device: {jax.devices()[0].platform} x{len(jax.devices())}, batch {a.batch}, median of {a.reps}, FC flow with 2 layers")
    for d in dims:
        flow = fc_flow((d,), num_layers=2)
        p = flow.init(jax.random.PRNGKey(0))
        p = jax.tree_util.tree_map(lambda w: w + 0.01 * jax.random.normal(jax.random.PRNGKey(1), w.shape), p)
        x = jax.random.normal(jax.random.PRNGKey(2), (a.batch, d))
        k = jax.random.PRNGKey(3)
        for m in methods:
            step = jax.jit(jax.value_and_grad(_loss(m, flow, ocfg)))
            res[m].append(time_fn(step, (p, x, k), a.reps))
        ld = jax.jit(jax.value_and_grad(lambda q: flow.linear_logdet(q)))
        t_ld = time_fn(ld, (p,), a.reps)
        share.append(t_ld / res["ml"][-1] if "ml" in res else float("nan"))
        print(f"D={d:5d}  " + "  ".join(f"{m} {res[m][-1]:8.1f}" for m in methods) + f"  | log-dets {t_ld:7.1f} ms ({100 * share[-1]:.0f}% of ml)", flush=True)

    print("\nms per training step (forward + backward), batch", a.batch)
    print("| method | " + " | ".join(f"D={d}" for d in dims) + " | slope (all D) | slope (D>=784) |")
    print("| --- |" + " --- |" * (len(dims) + 2))
    big = [i for i, d in enumerate(dims) if d >= 784]
    slopes = {}
    for m in methods:
        s_all = np.polyfit(np.log(dims), np.log(res[m]), 1)[0]
        s_big = np.polyfit(np.log([dims[i] for i in big]), np.log([res[m][i] for i in big]), 1)[0] if len(big) >= 2 else float("nan")
        slopes[m] = (s_all, s_big)
        print(f"| {m} | " + " | ".join(f"{t:.1f}" for t in res[m]) + f" | {s_all:.2f} | {s_big:.2f} |")
    print("| log-det share of ml | " + " | ".join(f"{100 * s:.0f}%" for s in share) + " | | |")
    if "ml" in res and "ssm" in res:
        print(f"\nML/SSM at D={dims[-1]}: {res['ml'][-1] / res['ssm'][-1]:.2f}x;  ML/DSM: {res['ml'][-1] / res['dsm'][-1]:.2f}x" if "dsm" in res else "")

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "step_time.csv"), "w") as f:
        f.write("D," + ",".join(methods) + ",logdet_share\n")
        for i, d in enumerate(dims):
            f.write(f"{d}," + ",".join(f"{res[m][i]:.3f}" for m in methods) + f",{share[i]:.4f}\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for m in methods:
        ax.loglog(dims, res[m], "o-", label=f"{m} (slope {slopes[m][1] if np.isfinite(slopes[m][1]) else slopes[m][0]:.2f})")
    ax.set_xlabel("data dimension D")
    ax.set_ylabel("ms per training step")
    ax.set_title(f"EBFlow FC flow, batch {a.batch}, {jax.devices()[0].platform}", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(os.path.join(a.out, "step_time.png"), dpi=120, bbox_inches="tight")
    print(f"plot: {os.path.join(a.out, 'step_time.png')}")


if __name__ == "__main__":
    main()
