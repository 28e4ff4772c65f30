"""Cost of one training step: USBM vs QCSBM (Hutchinson, K = 1) vs QCSBM (exact Jacobian, D jvps)
as the data dimension D grows, with QCSBM's overhead as a ratio to USBM.

    python benchmarks/step_cost.py                       # quick default (CPU, about a minute idle)
    python benchmarks/step_cost.py --dims 2 16 64 256 1024 --batch 1000 --iters 50

The score network is the paper's 2-D MLP with D inputs/outputs (x -> 64 -> 128 -> 256 -> D).
Exact is skipped above --max-exact-dim (its cost grows linearly in D on top of the forward pass).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from qcsbm.losses import make_loss_fn  # noqa: E402
from qcsbm.models import build_model  # noqa: E402
from qcsbm.sde import VESDE  # noqa: E402
from qcsbm.training import init_state, make_optimizer, make_train_step  # noqa: E402


def time_step(method, d, batch, iters):
    sde = VESDE(0.1, 3.0)
    model = build_model("toy_mlp", sde)
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, d))
    params = model.init(jax.random.PRNGKey(1), x[:2], jnp.zeros(2))
    opt = make_optimizer(1e-4)
    step = make_train_step(make_loss_fn(model, sde, method, 0.1, 1), opt)
    state = init_state(params, opt)
    state, aux = step(state, x, jax.random.PRNGKey(2))  # compile
    jax.block_until_ready(aux)
    t0 = time.perf_counter()
    for _ in range(iters):
        state, aux = step(state, x, jax.random.PRNGKey(2))
    jax.block_until_ready(aux)
    return (time.perf_counter() - t0) / iters * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 16, 64, 256])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--max-exact-dim", type=int, default=64)
    a = ap.parse_args()
    print(f"device: {jax.devices()[0].device_kind}, batch {a.batch}, {a.iters} timed steps after one compile step")
    print("| D | USBM ms/step | QCSBM Hutchinson K=1 ms/step (ratio) | QCSBM exact ms/step (ratio) |")
    print("|---|---|---|---|")
    for d in a.dims:
        u = time_step("usbm", d, a.batch, a.iters)
        h = time_step("qcsbm_hutch", d, a.batch, a.iters)
        if d <= a.max_exact_dim:
            e = time_step("qcsbm_exact", d, a.batch, a.iters)
            ex = f"{e:.2f} ({e / u:.2f}x)"
        else:
            ex = "skipped (D > --max-exact-dim)"
        print(f"| {d} | {u:.2f} | {h:.2f} ({h / u:.2f}x) | {ex} |", flush=True)


if __name__ == "__main__":
    main()
