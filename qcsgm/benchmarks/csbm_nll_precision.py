"""CSBM's image ODE NLL in float32 and float64, on the host loop and inside jit (`train.image_nll`).

In float32 the Hutchinson NLL of the energy U-Net (CSBM) moves with rounding, so its host loop and its jitted loop
give different NLLs (README, "Where each sampler runs"). This script trains (or resumes) the CSBM image model of a
config through `train.image_train` (the function `image_few_step.py` calls), then computes the Hutchinson ODE NLL of
the first --n-images test images (`image_few_step.py`'s dequantised test images and key) on both loops, in float32
and in float64 (`--image-nll-dtype`), at each RK45 (rtol, atol). Each call runs twice: the first compiles and runs,
the second only runs (compile = first - second). Prints, per case, the NLL of each image, the NFE, host - jit, and
each value's offset from the float64 host NLL at the same tolerance; writes <run_dir>/csbm_nll_precision.json.

    python benchmarks/csbm_nll_precision.py runs/fewstep-digits-5000-seed2 --image-steps 5000 --seed 2 --train-only
    python benchmarks/csbm_nll_precision.py runs/fewstep-digits-5000-seed2 --image-steps 5000 --seed 2
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
    rows = []
    for dtype in a.dtypes:
        for host in (True, False):
            nll_fn = train.image_nll(replace(cfg, image_nll_dtype=dtype), model, host)
            for rtol, atol in tols:
                secs = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    nll, nfe = nll_fn(score, sde, x, key, exact=False, rtol=rtol, atol=atol)
                    nll = np.asarray(nll, np.float64)
                    secs.append(time.perf_counter() - t0)
                rows.append(dict(dtype=dtype, path="host" if host else "jit", rtol=rtol, atol=atol, nll=nll.tolist(),
                                 nfe=int(nfe), run_s=secs[1], compile_s=secs[0] - secs[1]))
                print(f"{dtype} {rows[-1]['path']:4s} rtol {rtol:g} atol {atol:g}: NLL "
                      f"{' / '.join(f'{v:.4f}' for v in nll)} nats, NFE {int(nfe)}, run {secs[1]:.2f} s, "
                      f"first call {secs[0]:.1f} s", flush=True)
    with open(os.path.join(a.run_dir, "csbm_nll_precision.json"), "w") as f:
        json.dump(dict(rows=rows, n_images=a.n_images, step=int(state.step)), f, indent=1)
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


if __name__ == "__main__":
    main()
