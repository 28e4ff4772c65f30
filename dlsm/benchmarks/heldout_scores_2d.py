"""2-D likelihood- and posterior-score errors at held-out points, from a finished moons run.

    python benchmarks/heldout_scores_2d.py --run-dir runs/quick-<time> [--heldout-seed 1000] [--points N]

train.py measures the toy study's score errors at *training* points perturbed with fresh noise
(x~ = x_i + sigma z, x_i a fixed subset of the 10000 training points). This script loads the run's
checkpoints (score model and every classifier it trained) and measures the same errors, against
the same oracle (the empirical mixture of the training set, the target the networks were trained
on), on the same sigma grid, at three point sets:

  train (train.py)   train.py's own points and noise: repeats the run's results.json (a check that
                     the checkpoints and the evaluation are the ones the table was made with)
  held-out           --points fresh points of the continuous moons (angles t ~ U(0, pi), seed
                     --heldout-seed; data.moons_curve_draw), perturbed with noise of seed
                     --heldout-seed + 1
  train, same noise  --points training points (a subset drawn with seed --heldout-seed + 2)
                     perturbed with the held-out set's noise: held-out minus this is the effect of
                     the point set alone, without the Monte-Carlo noise of a new z

Prints sigma * mean L2 error of the likelihood score (scale * g) and of the posterior score
(s + scale * g), averaged over all sigma and over sigma <= 0.1 (where the point set can matter: for
larger sigma the perturbation hides the 0.0126 spacing of the training points), and writes the
per-sigma curves to <run-dir>/heldout_score_errors.csv (or --out).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax.numpy as jnp
import numpy as np

import train
from dlsm import data as data_lib
from dlsm import metrics, steps
from dlsm.oracle import GaussianMixture

SMALL_SIGMA = 0.1


def point_sets(cfg, x, y, n: int, heldout_seed: int):
    """[(label, points, labels, noises)] on train.py's sigma grid (see the module docstring)."""
    sig_grid = train.toy_sigma_grid(cfg)
    idx, zs_train = train.toy_eval_draw(cfg, len(x), len(sig_grid))  # train.py's own draw (step 3)
    xh, yh = data_lib.moons_curve_draw(n, heldout_seed)
    rng_h = np.random.default_rng(heldout_seed + 1)
    zs_h = [rng_h.standard_normal((n, 2)).astype(np.float32) for _ in sig_grid]
    idx2 = np.random.default_rng(heldout_seed + 2).choice(len(x), n, replace=False)
    return sig_grid, [("train (train.py)", x[idx], y[idx], zs_train), ("held-out", xh, yh, zs_h),
                      ("train, same noise", x[idx2], y[idx2], zs_h)]


def evaluate(run_dir: str, n: int, heldout_seed: int, progress: bool = True):
    """{point set: {method: {"likelihood": [...], "posterior": [...]}}}, the sigma grid, the run's config."""
    cfg = train.load_run_config(run_dir)
    if cfg.dataset != "moons":
        raise SystemExit(f"{run_dir} is a {cfg.dataset} run; this benchmark needs the 2-D moons (an exact oracle)")
    x, y, _, _ = data_lib.load(cfg.dataset, cfg.data_dir, cfg.limit_train)
    score_model, clf = train.build(cfg, int(y.max()) + 1)
    x0 = jnp.asarray(x[:2])
    sp = steps.load_trained_params(run_dir, "score", score_model, x0, cfg.score_lr, cfg.grad_clip)
    score_fn = lambda xx, s: score_model.apply(sp, xx, s)
    cps = {lt: steps.load_trained_params(run_dir, f"clf_{lt}", clf, x0, cfg.clf_lr, cfg.grad_clip) for lt in cfg.losses}
    guidances = [(name, (lambda p: (lambda xx, s: clf.apply(p, xx, s)))(cps[lt]), scale)
                 for name, lt, scale in train.guidance_rows(cfg)]
    oracle = GaussianMixture.from_data(x, y)
    sig_grid, sets = point_sets(cfg, x, y, n, heldout_seed)
    out = {label: metrics.oracle_score_errors(pts, lab, zs, sig_grid, oracle, score_fn, guidances, progress)
           for label, pts, lab, zs in sets}
    return out, sig_grid, cfg


def summary(curves, sig_grid):
    """{method: (D_L all, D_P all, D_L small sigma, D_P small sigma)} (sigma * mean L2 error, averaged over sigma)."""
    small = np.asarray(sig_grid) <= SMALL_SIGMA
    return {name: (float(np.mean(d["likelihood"])), float(np.mean(d["posterior"])),
                   float(np.mean(np.asarray(d["likelihood"])[small])), float(np.mean(np.asarray(d["posterior"])[small])))
            for name, d in curves.items() if "likelihood" in d}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a finished train.py run of the 2-D moons")
    ap.add_argument("--heldout-seed", type=int, default=1000, help="seed of the held-out draw (its noise: seed + 1)")
    ap.add_argument("--points", type=int, default=None, help="held-out points (default: the run's eval_points)")
    ap.add_argument("--out", default=None, help="per-sigma CSV (default <run-dir>/heldout_score_errors.csv)")
    args = ap.parse_args()
    t0 = time.time()
    cfg = train.load_run_config(args.run_dir)
    n = args.points or cfg.eval_points
    out, sig_grid, cfg = evaluate(args.run_dir, n, args.heldout_seed)
    n_small = int(np.sum(np.asarray(sig_grid) <= SMALL_SIGMA))
    print(f"run {args.run_dir}: {len(sig_grid)} sigma in [{sig_grid[0]:.3g}, {sig_grid[-1]:.3g}] ({n_small} <= {SMALL_SIGMA}), "
          f"{cfg.eval_points} train.py points, {n} held-out points (seed {args.heldout_seed})\n")
    print(f"| method | points | sigma*D_L | sigma*D_P | sigma*D_L (sigma <= {SMALL_SIGMA}) | sigma*D_P (sigma <= {SMALL_SIGMA}) |")
    print("| --- | --- | --- | --- | --- | --- |")
    tables = {label: summary(c, sig_grid) for label, c in out.items()}
    for name in next(iter(tables.values())):
        for label, tab in tables.items():
            print(f"| {name} | {label} | " + " | ".join(f"{v:.4g}" for v in tab[name]) + " |")
    res_path = os.path.join(args.run_dir, "results.json")
    if os.path.exists(res_path):
        with open(res_path) as f:
            res = json.load(f)
        diff = max(abs(tables["train (train.py)"][nm][0] - res[nm]["sigma*D_L (likelihood score err)"])
                   + abs(tables["train (train.py)"][nm][1] - res[nm]["sigma*D_P (posterior score err)"]) for nm in tables["held-out"])
        print(f"\ntrain (train.py) rows vs the run's results.json: max abs difference {diff:.3g}")
    path = args.out or os.path.join(args.run_dir, "heldout_score_errors.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["points", "method", "kind", "sigma", "sigma_times_mean_l2_error"])
        for label, curves in out.items():
            for name, d in curves.items():
                for kind, vals in d.items():
                    for sg, v in zip(sig_grid, vals):
                        w.writerow([label, name, kind, f"{sg:.5g}", f"{v:.6g}"])
    print(f"per-sigma curves: {path}\n{time.time() - t0:.0f} s wall")


if __name__ == "__main__":
    main()
