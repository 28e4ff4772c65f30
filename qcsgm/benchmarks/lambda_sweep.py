"""How much does the QCSBM regulariser lower Asym, as a function of lambda and of the training budget?

One toy, one seed: USBM (lambda = 0) and QCSBM with each lambda, trained from the same initialisation on
the same data stream; at each checkpoint step prints Asym, NAsym (exact 2x2 Jacobian) and the score error
against the oracle, averaged over noise levels on held-out points, and Asym relative to USBM's; after the last
step also the few-step sampler quality: precision / recall (k = 3) of PC-10 and Euler-ODE-10 samples and of
the adaptive RK45 ODE, with its NFE.

    python benchmarks/lambda_sweep.py                                  # checkerboard, lambda 0.1 1 10
    python benchmarks/lambda_sweep.py --toy gaussian_8 --lams 0.1 --steps 4000 --batch 5000   # paper budget
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from qcsbm import data as D  # noqa: E402
from qcsbm import metrics as M  # noqa: E402
from qcsbm import sampling as S  # noqa: E402
from qcsbm.losses import make_loss_fn  # noqa: E402
from qcsbm.models import build_model  # noqa: E402
from qcsbm.sde import VESDE  # noqa: E402
from qcsbm.training import init_state, make_optimizer, make_train_step  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toy", default="checkerboard", choices=D.TOYS)
    ap.add_argument("--method", default="qcsbm_exact", choices=("qcsbm_exact", "qcsbm_hutch"))
    ap.add_argument("--lams", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--evals", type=int, nargs="+", default=[400, 800, 1600], help="steps at which to evaluate")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=7.5e-4)
    ap.add_argument("--n-levels", type=int, default=10)
    ap.add_argument("--eval-samples", type=int, default=2000)
    ap.add_argument("--few-steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if any(lam <= 0 for lam in a.lams) or a.steps < 1 or a.batch < 1:
        ap.error("lambdas, --steps and --batch must be positive")
    evals = sorted({e for e in a.evals if 0 < e <= a.steps} | {a.steps})

    sde = VESDE(0.1, 3.0)
    model = build_model("toy_mlp", sde)
    params0 = model.init(jax.random.PRNGKey(a.seed), jnp.zeros((8, 2)), jnp.zeros(8))
    opt = make_optimizer(a.lr, 1.0)
    x_test = jnp.asarray(D.sample_toy(a.toy, a.eval_samples, np.random.default_rng([a.seed, 10**9])))
    oracle = D.oracle_score_fn(a.toy)
    key = jax.random.PRNGKey(a.seed + 2)
    shape = (a.eval_samples, 2)
    pc = jax.jit(S.pc_sample, static_argnames=("sde", "shape", "n_steps"))
    ode = jax.jit(S.ode_sample, static_argnames=("sde", "shape", "method"))

    rows, sampling = {}, {}
    for label, method, lam in [("usbm", "usbm", 0.0)] + [(f"{a.method} lam={lam:g}", a.method, lam) for lam in a.lams]:
        step_fn = make_train_step(make_loss_fn(model, sde, method, lam), opt)
        state = init_state(params0, opt)
        t0 = time.time()
        for step in range(a.steps):
            x = jnp.asarray(D.sample_toy(a.toy, a.batch, np.random.default_rng([a.seed, step])))
            state, _ = step_fn(state, x, jax.random.PRNGKey(a.seed + 1))
            if step + 1 in evals:
                sc = Partial(model.score, state.params)
                asym, nasym = M.asymmetry_over_levels(sc, sde, x_test, key, a.n_levels, exact=True)
                err = M.score_error_over_levels(sc, oracle, sde, x_test, key, a.n_levels)
                rows[(label, step + 1)] = (float(asym.mean()), float(nasym.mean()), float(err.mean()))
        pr = lambda x: M.precision_recall(x_test, x, 3)  # noqa: E731
        x_rk, nfe = ode(sc, sde, key, shape, method="rk45")
        sampling[label] = (pr(pc(sc, sde, key, shape, n_steps=a.few_steps)),
                           pr(ode(sc, sde, key, shape, method="euler", n_steps=a.few_steps)[0]), pr(x_rk), int(nfe))
        print(f"  {label}: {a.steps} steps in {time.time() - t0:.0f}s", flush=True)

    print(f"\n{a.toy}, batch {a.batch}, seed {a.seed}; Asym / NAsym / score err averaged over {a.n_levels} levels "
          f"on {a.eval_samples} held-out points\n")
    print("| model | step | Asym | Asym / USBM's | NAsym | score err |")
    print("|---|---|---|---|---|---|")
    for (label, step), (asym, nasym, err) in rows.items():
        ratio = asym / rows[("usbm", step)][0]
        print(f"| {label} | {step} | {asym:.4g} | {ratio:.3f} | {nasym:.4g} | {err:.4f} |")
    print(f"\nsamplers after {a.steps} steps, precision / recall (k = 3) against {a.eval_samples} held-out points\n")
    print(f"| model | PC-{a.few_steps} | Euler-{a.few_steps} | RK45 | RK45 NFE |")
    print("|---|---|---|---|---|")
    for label, ((p1, r1), (p2, r2), (p3, r3), nfe) in sampling.items():
        print(f"| {label} | {p1:.3f} / {r1:.3f} | {p2:.3f} / {r2:.3f} | {p3:.3f} / {r3:.3f} | {nfe} |")


if __name__ == "__main__":
    main()
