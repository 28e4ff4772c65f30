"""Classifier training-step cost: DLSM and DLSM+CE (input-gradient pass + double backprop) vs CE.

    python benchmarks/bench_classifier_step.py [--steps 30] [--image-batch 64] [--full]

Prints the median wall time of one jit-compiled Adam step per loss and the ratio to CE, for the
2-D toy MLP and for the time-conditioned ResNet classifier on 8x8 (digits) inputs; --full adds
ResNet18-cond on 32x32x3 (CIFAR-sized) inputs. The score model's forward pass is included in
DLSM's cost (it is needed by the loss); the score model itself is not trained here.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

from dlsm import models, steps
from dlsm.sde import VESDE


def time_step(step_fn, args, n):
    out = step_fn(*args)
    jax.block_until_ready(out)  # compile
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(step_fn(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def bench(name, score_model, clf, x, y, n):
    sde = VESDE(0.01, 50.0)
    sp = score_model.init(jax.random.PRNGKey(0), x[:2], jnp.ones(2))
    cp = clf.init(jax.random.PRNGKey(1), x[:2], jnp.ones(2))
    opt = steps.make_optimizer(1e-4)
    res = {}
    for lt in ("ce", "dlsm", "total"):
        fn = steps.make_classifier_step(clf, score_model, sde, opt, lt, 1.0, 0.0, 1.0)
        res[lt] = time_step(fn, (cp, opt.init(cp), sp, x, y, jax.random.PRNGKey(2)), n)
    print(f"| {name} | {x.shape[0]} | {res['ce'] * 1e3:.2f} | {res['dlsm'] * 1e3:.2f} | {res['total'] * 1e3:.2f} | "
          f"{res['dlsm'] / res['ce']:.2f} | {res['total'] / res['ce']:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per loss (median reported)")
    ap.add_argument("--toy-batch", type=int, default=1000)
    ap.add_argument("--image-batch", type=int, default=64)
    ap.add_argument("--full", action="store_true", help="also ResNet18-cond on 32x32x3 inputs")
    a = ap.parse_args()
    print(f"devices: {jax.devices()}")
    print("| model | batch | CE ms/step | DLSM ms/step | DLSM+CE ms/step | DLSM/CE | (DLSM+CE)/CE |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    k = jax.random.PRNGKey(0)
    x = jax.random.normal(k, (a.toy_batch, 2)) * 15
    y = (x[:, 0] > 0).astype(jnp.int32)
    bench("toy MLP (2-D)", models.ToyScoreMLP(), models.ToyClassifierMLP(), x, y, a.steps)
    x = jax.random.uniform(k, (a.image_batch, 8, 8, 1))
    y = jnp.arange(a.image_batch) % 10
    bench("ResNet-cond (1,1) nf16, 8x8", models.ScoreUNet(32, (1, 2), 1), models.ResNetCond(10, 16, (1, 1)), x, y, a.steps)
    if a.full:
        x = jax.random.uniform(k, (a.image_batch, 32, 32, 3))
        bench("ResNet18-cond nf32, 32x32x3", models.ScoreUNet(64, (1, 2, 2), 2), models.ResNetCond(10, 32, (2, 2, 2, 2)), x, y, a.steps)


if __name__ == "__main__":
    main()
