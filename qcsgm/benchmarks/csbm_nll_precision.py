"""CSBM's image ODE NLL in float32 and float64, on the host loop and inside jit (`train.image_nll`).

In float32 the Hutchinson NLL of the energy U-Net (CSBM) moves with rounding, so its host loop and its jitted loop
give different NLLs (README, "Where each sampler runs"). This script trains (or resumes) the CSBM image model of a
config through `train.image_train` (the function `image_few_step.py` calls), then computes the Hutchinson ODE NLL of
the first --n-images test images (`image_few_step.py`'s dequantised test images and key) on both loops, in float32
and in float64 (`--image-nll-dtype`), at each RK45 (rtol, atol). Each call runs twice: the first compiles and runs,
the second only runs (compile = first - second). Prints, per case, the NLL of each image, the NFE, host - jit, and
each value's offset from the float64 host NLL at the same tolerance; writes <run_dir>/csbm_nll_precision.json (--json).

    python benchmarks/csbm_nll_precision.py runs/fewstep-digits-5000-seed2 --image-steps 5000 --seed 2 --train-only
    python benchmarks/csbm_nll_precision.py runs/fewstep-digits-5000-seed2 --image-steps 5000 --seed 2

Reproducibility (README, "A reproducible CSBM NLL?"): --perturb REL makes each call's second run on the images times
(1 + REL) instead of the same images, and prints the largest change of an image's NLL; --delta-tols adds RK45 cases
with a tolerance of their own on the log-density change (`sampling.ode_nll`'s delta_tol; --no-plain drops the cases
without it), --rk4-steps fixed-step RK4 cases (same Hutchinson noise); --paths picks the loops:

    python benchmarks/csbm_nll_precision.py runs/fewstep-digits-5000-seed2 --image-steps 5000 --seed 2 \
        --dtypes float64 --paths host --tols 1e-3 1e-5 --no-plain --delta-tols 0 1e-2 0 1e-3 --rk4-steps 50 100 200 \
        --perturb 1e-15 --json nll_repro.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import numpy as np
from jax.tree_util import Partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
from configs import CONFIGS  # noqa: E402
from qcsbm import data as D  # noqa: E402
from qcsbm.config import Config, replace  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", default=os.path.join("runs", "csbm-nll"),
                    help="folder with (or for) ckpt/<dataset>-csbm.msgpack")
    ap.add_argument("--config", default="quick", choices=sorted(CONFIGS))
    ap.add_argument("--image-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--n-images", type=int, default=4, help="test images in the NLL batch (0 = all)")
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-2, 1e-2, 1e-3, 1e-5],
                    help="RK45 (rtol, atol) pairs, flattened (train.py's image NLL: 1e-3 1e-5)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--paths", nargs="+", default=["host", "jit"], choices=["host", "jit"])
    ap.add_argument("--delta-tols", type=float, nargs="+", default=[],
                    help="(rtol, atol) pairs of the log-density change alone, flattened; each adds an RK45 case per --tols")
    ap.add_argument("--no-plain", action="store_true", help="skip the RK45 cases without --delta-tols")
    ap.add_argument("--rk4-steps", type=int, nargs="+", default=[], help="fixed-step RK4 cases with these step counts")
    ap.add_argument("--perturb", type=float, default=0.0,
                    help="run each call's second time on the images times (1 + this) (0: the same images)")
    ap.add_argument("--json", default="csbm_nll_precision.json", help="results file in run_dir")
    ap.add_argument("--train-only", action="store_true", help="train / resume the model, then stop")
    a = ap.parse_args(argv)
    over = {k: v for k, v in (("image_steps", a.image_steps), ("seed", a.seed)) if v is not None}
    cfg = replace(replace(Config(), **CONFIGS[a.config], config=a.config), **over)
    os.makedirs(os.path.join(a.run_dir, "ckpt"), exist_ok=True)
    x_train = D.load_images(cfg.image_dataset, "train", cfg.image_root or None, cfg.image_size)
    logger = train.Logger(a.run_dir)
    model, sde, state, train_s = train.image_train(cfg, "csbm", a.run_dir, logger, None, x_train)
    logger.close()
    print(f"csbm: step {int(state.step)}, train {train_s:.1f} s", flush=True)
    if a.train_only:
        return
    x = train.eval_images(cfg, a.n_images)
    key = jax.random.PRNGKey(cfg.seed + 2)  # image_few_step.py's key
    score = Partial(model.score, jax.device_get(state.ema_params))
    tols = list(zip(a.tols[::2], a.tols[1::2]))
    cases = [dict(rtol=r, atol=t) for r, t in tols] * (not a.no_plain)
    cases += [dict(method="rk4", n_steps=n) for n in a.rk4_steps]
    cases += [dict(rtol=r, atol=t, delta_tol=d) for r, t in tols for d in zip(a.delta_tols[::2], a.delta_tols[1::2])]
    rows = []
    for dtype in a.dtypes:
        for path in a.paths:
            nll_fn = train.image_nll(replace(cfg, image_nll_dtype=dtype), model, path == "host")
            for case in cases:
                rows.append(dict(dtype=dtype, path=path, rtol=case.get("rtol"), atol=case.get("atol"),
                                 **run_twice(nll_fn, score, sde, x, key, case, a.perturb)))
                r = rows[-1]
                print(f"{dtype} {path:4s} {r['case']}: NLL {' / '.join(f'{v:.4f}' for v in r['nll'])} nats, NFE "
                      f"{r['nfe']}, run {r['run_s']:.2f} s, first call {r['first_s']:.1f} s"
                      + (f"; x (1 + {a.perturb:g}): NLL {' / '.join(f'{v:.4f}' for v in r['nll2'])}, NFE {r['nfe2']},"
                         f" max |change| {r['spread']:.3g} nats" if a.perturb else ""), flush=True)
    with open(os.path.join(a.run_dir, a.json), "w") as f:
        json.dump(dict(rows=rows, n_images=a.n_images, step=int(state.step), perturb=a.perturb), f, indent=1)
    if a.perturb or a.delta_tols or a.rk4_steps or a.no_plain:
        return
    print(f"\nCSBM, {cfg.image_dataset}, step {int(state.step)}, seed {cfg.seed}, {a.n_images} test images, Hutchinson "
          f"NLL (nats); offsets from the float64 host NLL at the same tolerance\n")
    print("| dtype | rtol / atol | NFE host / jit | max |host - jit| | max |host - ref| | max |jit - ref| | "
          "run host / jit (s) | compile host / jit (s) |")
    print("|---|---|---|---|---|---|---|---|")
    find = {(r["dtype"], r["path"], r["rtol"], r["atol"]): r for r in rows}
    for dtype in a.dtypes:
        for rtol, atol in tols:
            h, j = find[(dtype, "host", rtol, atol)], find[(dtype, "jit", rtol, atol)]
            ref = find.get(("float64", "host", rtol, atol))
            dev = lambda r: f"{np.max(np.abs(np.subtract(r['nll'], ref['nll']))):.3g}" if ref else "-"  # noqa: E731
            print(f"| {dtype} | {rtol:g} / {atol:g} | {h['nfe']} / {j['nfe']} | "
                  f"{np.max(np.abs(np.subtract(h['nll'], j['nll']))):.3g} | {dev(h)} | {dev(j)} | "
                  f"{h['run_s']:.2f} / {j['run_s']:.2f} | {h['compile_s']:.1f} / {j['compile_s']:.1f} |")


def run_twice(nll_fn, score, sde, x, key, case, perturb=0.0):
    """nll_fn(score, sde, x, key, exact=False, **case) twice: on x, then on x (1 + perturb). Returns a dict: case (a
    label), nll, nfe (first run), first_s (its seconds, compile included on a program's first call), nll2, nfe2 (second
    run), run_s (its seconds), spread (max over images of |nll - nll2|). The product is taken in float64 (a float32
    call rounds it back to x for |perturb| < 6e-8)."""
    out = []
    for xi in (x, np.asarray(x, np.float64) * (1 + perturb)):
        t0 = time.perf_counter()
        nll, nfe = nll_fn(score, sde, xi, key, exact=False, **case)
        out.append((np.asarray(nll, np.float64), int(nfe), time.perf_counter() - t0))
    (n1, f1, s1), (n2, f2, s2) = out
    label = " ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in case.items())
    return dict(case=label, nll=n1.tolist(), nfe=f1, first_s=s1, nll2=n2.tolist(), nfe2=f2, run_s=s2,
                compile_s=s1 - s2, spread=float(np.max(np.abs(n1 - n2))))


if __name__ == "__main__":
    main()
