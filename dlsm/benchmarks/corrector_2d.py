"""Langevin corrector on the 2-D moons: reverse-diffusion predictor alone vs predictor + corrector.

    python benchmarks/corrector_2d.py --run-dir runs/quick-<time> [--snr 0.16] [--sample-steps 500]

Loads the score model and the classifiers of a finished `python train.py` run (config `quick`; run
it first) and samples every class with each guidance twice: predictor only (`--n-corrector 0`, the
`quick` default) and one Langevin corrector step per predictor step (score_sde's PC sampler, step
size from the batch-mean norms as in the official code) at each `--snr`. The noise keys are those of
train.py, so the predictor-only rows repeat the run's own samples. Prints per guidance and sampler:
the share of samples within distance 1 of the nearest data point (any class) and of their own
class's data, the off-class rate, and the class-wise precision / recall (k = 5) of train.py's table.
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
from scipy.spatial import cKDTree

import train
from dlsm import data as data_lib
from dlsm import metrics, sampling, steps
from dlsm.sde import VESDE


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a finished train.py run of the 2-D moons")
    ap.add_argument("--snr", type=float, nargs="+", default=[0.16], help="corrector signal-to-noise ratios (official 0.16)")
    ap.add_argument("--sample-steps", type=int, default=None, help="predictor steps (default: the run's)")
    ap.add_argument("--samples-per-class", type=int, default=None, help="default: the run's")
    args = ap.parse_args()
    t0 = time.time()
    cfg = train.load_run_config(args.run_dir)
    if cfg.dataset != "moons":
        raise SystemExit(f"{args.run_dir} is a {cfg.dataset} run; this benchmark needs the 2-D moons")
    n_steps = args.sample_steps or cfg.sample_steps
    per_class = args.samples_per_class or cfg.samples_per_class
    x, y, _, _ = data_lib.load(cfg.dataset, cfg.data_dir, cfg.limit_train)
    num_classes = int(y.max()) + 1
    sde = VESDE(cfg.sigma_min, cfg.sigma_max)
    score_model, clf = train.build(cfg, num_classes)
    x0 = jnp.asarray(x[:2])
    sp = steps.load_trained_params(args.run_dir, "score", score_model, x0, cfg.score_lr, cfg.grad_clip)
    score_fn = lambda xx, s: score_model.apply(sp, xx, s)
    shape = (per_class, 2)
    guidances = []  # (name, sampler factory (n_corrector, snr) -> draw(key, class)), jitted as train.py does
    for lt, name in (("ce", "base (CE)"), ("total", "DLSM + CE")):
        if lt in cfg.losses:
            cp = steps.load_trained_params(args.run_dir, f"clf_{lt}", clf, x0, cfg.clf_lr, cfg.grad_clip)
            logits = (lambda p: (lambda xx, s: clf.apply(p, xx, s)))(cp)
            guidances.append((name, lambda nc, snr, lg=logits: jax.jit(lambda k, c: sampling.sample(
                k, sampling.guided_score(score_fn, lg, c, 1.0), shape, sde, "pc", n_steps, snr, nc))))
    osub = train.oracle_subset(x, y, cfg.oracle_sample_points, cfg.seed)

    def oracle_sampler(nc, snr):
        run = [jax.jit(lambda k, f=(lambda xx, s, c=c: osub.score(xx, s[0], c)): sampling.sample(
            k, f, shape, sde, "pc", n_steps, snr, nc)) for c in range(num_classes)]
        return lambda k, c: run[c](k)
    guidances.append(("oracle scores", oracle_sampler))

    k_sample = train.run_keys(cfg.seed).sample
    tree, trees_c = cKDTree(x), [cKDTree(x[y == c]) for c in range(num_classes)]
    settings = [("predictor only", 0, cfg.snr)] + [(f"P + 1 Langevin (snr {s:g})", 1, s) for s in args.snr]
    print(f"run {args.run_dir}: {per_class} samples/class, {n_steps} predictor steps\n")
    print("| guidance | sampler | within 1 of data | within 1 of own class | off-class % | CW precision | CW recall |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, make_draw in guidances:
        for label, n_corr, snr in settings:
            draw = make_draw(n_corr, snr)
            near, near_own, off, prec, rec = [], [], [], [], []
            for c in range(num_classes):
                s = np.asarray(draw(jax.random.fold_in(k_sample, c), c))
                near.append(tree.query(s)[0] < 1.0)
                near_own.append(trees_c[c].query(s)[0] < 1.0)
                off.append(metrics.off_class_fraction(s, c, x, y))
                m = metrics.prdc(x[y == c], s, cfg.prdc_k)
                prec.append(m["precision"]), rec.append(m["recall"])
            print(f"| {name} | {label} | {np.mean(np.concatenate(near)):.3f} | {np.mean(np.concatenate(near_own)):.3f} | "
                  f"{100 * np.mean(off):.2f} | {np.mean(prec):.4g} | {np.mean(rec):.4g} |", flush=True)
    print(f"\n{time.time() - t0:.0f} s wall")


if __name__ == "__main__":
    main()
