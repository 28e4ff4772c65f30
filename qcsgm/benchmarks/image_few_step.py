"""Few-step sampling of the image USBM vs QCSBM: the paper's sampler settings at a reduced budget.

The official image evaluation (chen-hao-chao/qcsbm, real_world/) samples in two ways:
  - the probability-flow ODE with scipy's adaptive RK45 at rtol 1e-4 / atol 1e-6 (`eval_*_config_ode.py`)
    followed by one noise-removal step; its NFE (scipy's nfev) is the cost;
  - the PC sampler (reverse diffusion + Langevin, snr 0.16) whose step count N is the `--num_scales` flag
    of `run_lib_sampling.py` ("NFE used in a PC sampler", 2N score evaluations), 1000 by default.
This script trains (or resumes) the image USBM and QCSBM of one config with the same seed, initialisation
and batches (`train.image_train`), then, from the *same* start x(1) for both models, measures:
  - RK45 at the official image tolerances (the reference solution x_ref) and at looser ones: NFE and k-NN
    precision / recall (k = 3) against the test images, and each loose solution's RMS distance to x_ref;
  - the Euler ODE at a few fixed step counts (the few-step ODE budget): P / R and RMS distance to x_ref,
    i.e. the discretisation error of the model's own flow, with the paired USBM - QCSBM difference and its
    standard error over samples;
  - the PC sampler at a few step counts N (the official few-step knob): P / R.
All ODE samples end with the official noise-removal step (`sampling.denoise_step`).

    python benchmarks/image_few_step.py runs/fewstep --image-steps 2000     # train both, then evaluate
    python benchmarks/image_few_step.py runs/fewstep --image-steps 2000     # again: checkpoints are reused
Other config fields: --nf, --image-batch, --image-lr, --image-ema, --image-lam, --image-dataset, --seed.
Writes <run_dir>/few_step.json and <run_dir>/few_step_samples.png.
"""
from __future__ import annotations

import argparse
import dataclasses
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
from qcsbm import metrics as M  # noqa: E402
from qcsbm.config import Config, replace  # noqa: E402

OFFICIAL_TOL = (1e-4, 1e-6)  # rtol, atol of the official image ODE sampler


def rms(a, b):
    """Per-sample RMS distance over pixels."""
    return np.sqrt(np.mean((np.asarray(a) - np.asarray(b)).reshape(len(a), -1) ** 2, axis=1))


def evaluate(model, sde, params, x_init, x_real, key, tols, euler_steps, pc_steps, k):
    """Samples of one model from the start x_init with every sampler; returns (results, samples)."""
    score = Partial(model.score, params)
    shape = x_init.shape
    res, samples = {}, {}
    ode, pc = train.image_sampler("ode", model), train.image_sampler("pc", model)  # host loops for CSBM

    def pr(x):
        return M.precision_recall(x_real, np.clip(np.asarray(x), 0, 1), k)

    x_ref, nfe = ode(score, sde, key, shape, method="rk45", rtol=OFFICIAL_TOL[0], atol=OFFICIAL_TOL[1], denoise=True,
                     x_init=x_init)
    res["rk45_official"] = dict(nfe=int(nfe), pr=pr(x_ref))
    samples["rk45_official"] = np.asarray(x_ref)
    for rtol, atol in tols:
        x, nfe = ode(score, sde, key, shape, method="rk45", rtol=rtol, atol=atol, denoise=True, x_init=x_init)
        res[f"rk45_rtol{rtol:g}"] = dict(nfe=int(nfe), pr=pr(x), err=rms(x, x_ref).tolist())
    for n in euler_steps:
        x, _ = ode(score, sde, key, shape, method="euler", n_steps=n, denoise=True, x_init=x_init)
        res[f"euler{n}"] = dict(nfe=n, pr=pr(x), err=rms(x, x_ref).tolist())
        samples[f"euler{n}"] = np.asarray(x)
    for n in pc_steps:
        x = pc(score, sde, key, shape, n_steps=n)
        res[f"pc{n}"] = dict(nfe=2 * n, pr=pr(x))
        samples[f"pc{n}"] = np.asarray(x)
    return res, samples


def table(results, methods):
    a, b = methods
    lines = [f"| sampler | NFE {a} / {b} | P / R {a} | P / R {b} | RMS to RK45-1e-4 {a} | {b} | "
             f"paired diff +- s.e. |", "|---|---|---|---|---|---|---|"]
    for name in results[a]:
        ra, rb = results[a][name], results[b][name]
        row = (f"| {name} | {ra['nfe']} / {rb['nfe']} | {ra['pr'][0]:.3f} / {ra['pr'][1]:.3f} | "
               f"{rb['pr'][0]:.3f} / {rb['pr'][1]:.3f} |")
        if "err" in ra:
            ea, eb = np.array(ra["err"]), np.array(rb["err"])
            d = ea - eb
            row += (f" {ea.mean():.4g} | {eb.mean():.4g} | {d.mean():.3g} +- {d.std(ddof=1) / np.sqrt(len(d)):.2g} |")
        else:
            row += " - | - | - |"
        lines.append(row)
    return "\n".join(lines)


def plot(path, samples, methods, real=None, n=12):
    """One row per sampler and model, on the fixed [0, 1] grey scale; the first row is `real` (test images), so
    the samples can be judged against what the data look like at this size."""
    names = list(samples[methods[0]])
    rows = ({"test images": real} if real is not None else {}) | {f"{m} {nm}": samples[m][nm] for nm in names for m in methods}
    train.plot_image_rows(path, rows, n=n, cell=0.8)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", default=os.path.join("runs", "few-step"),
                    help="folder for checkpoints and results (created; reused when it exists)")
    ap.add_argument("--config", default="quick", choices=sorted(CONFIGS))
    ap.add_argument("--methods", nargs=2, default=["usbm", "qcsbm_hutch"])
    ap.add_argument("--n-samples", type=int, default=0, help="samples per sampler (0 = as many as test images)")
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-3, 1e-5, 1e-2, 1e-4],
                    help="looser RK45 (rtol, atol) pairs, flattened")
    ap.add_argument("--euler-steps", type=int, nargs="+", default=[5, 10, 20, 50])
    ap.add_argument("--pc-steps", type=int, nargs="+", default=[10, 30, 100])
    cfg_fields = ("image_steps", "image_batch", "image_lr", "image_ema", "image_lam", "image_warmup", "nf",
                  "image_dataset", "image_size", "image_sigma_max", "seed")
    for name in cfg_fields:
        ap.add_argument("--" + name.replace("_", "-"), type=type(getattr(Config(), name)), default=None)
    a = ap.parse_args(argv)
    over = {n: getattr(a, n) for n in cfg_fields if getattr(a, n) is not None}
    cfg = replace(replace(Config(), **CONFIGS[a.config], config=a.config), **over)
    os.makedirs(os.path.join(a.run_dir, "ckpt"), exist_ok=True)
    with open(os.path.join(a.run_dir, "config.json"), "w") as f:  # benchmarks/image_asym_gap.py reads it
        json.dump(dataclasses.asdict(cfg), f, indent=2)
    x_train = D.load_images(cfg.image_dataset, "train", cfg.image_root or None, cfg.image_size)
    x_real = train.eval_images(cfg, a.n_samples)
    n = len(x_real)
    key = jax.random.PRNGKey(cfg.seed + 2)
    _, sde, _, _ = train.image_model(cfg, a.methods[0], x_train)
    x_init = sde.sigma_max * jax.random.normal(jax.random.PRNGKey(cfg.seed + 3), (n,) + x_train.shape[1:])
    tols = list(zip(a.tols[::2], a.tols[1::2]))
    logger = train.Logger(a.run_dir)
    results, samples, info = {}, {}, {}
    for m in a.methods:
        model, sde, state, train_s = train.image_train(cfg, m, a.run_dir, logger, None, x_train)
        t0 = time.time()
        results[m], samples[m] = evaluate(model, sde, jax.device_get(state.ema_params), x_init, x_real, key, tols,
                                          a.euler_steps, a.pc_steps, cfg.nearest_k)
        info[m] = dict(step=int(state.step), train_s=train_s, eval_s=time.time() - t0)
        print(f"{m}: step {int(state.step)}, train {train_s:.1f} s, evaluation {info[m]['eval_s']:.1f} s", flush=True)
    logger.close()
    with open(os.path.join(a.run_dir, "few_step.json"), "w") as f:
        json.dump(dict(results=results, info=info, n_samples=n, official_tol=OFFICIAL_TOL), f, indent=1)
    plot(os.path.join(a.run_dir, "few_step_samples.png"), samples, a.methods, real=x_real)
    print(f"\n{cfg.image_dataset}, {cfg.image_steps} steps, batch {cfg.image_batch}, nf {cfg.nf}, lambda "
          f"{cfg.image_lam}, EMA {cfg.image_ema}; {n} samples from the same x(1) for both models; P / R (k = "
          f"{cfg.nearest_k}) against {n} test images; RMS per pixel to the model's own RK45 "
          f"(rtol {OFFICIAL_TOL[0]:g}, atol {OFFICIAL_TOL[1]:g}) solution\n")
    print(table(results, a.methods))


if __name__ == "__main__":
    main()
