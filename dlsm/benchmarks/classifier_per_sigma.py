"""Per-sigma diagnostics of an image run's noise-conditioned classifiers, on the held-out test split.

    python benchmarks/classifier_per_sigma.py --run-dir runs/digits-<time> [--noise-draws 8] [--grad-batches 8]

Loads the run's score model and every classifier it trained (ckpt_*.msgpack) and prints, on the
run's sigma grid (geomspace(sigma_min, sigma_max, eval_sigmas), as train.py's held-out DLSM loss):

  acc       accuracy of argmax f(x~, sigma) on x~ = x_test + sigma z (--noise-draws draws of z per sigma)
  NLL       mean -log softmax(f(x~, sigma))_y on the same x~ (the CE term, held out)
  sigma*|g| sigma times the per-dimension RMS of g = grad_x~ log p(y|x~, sigma), the guidance the
            sampler adds at weight 1 (for comparison, sigma*|s| of the score model, whose DSM target
            sigma*(x - x~)/sigma^2 = -z has RMS 1)

and, for a DLSM + CE classifier (loss "total"), how its training gradient splits between the two
terms: || grad_theta L_DLSM || and || grad_theta coef*CE || (and their cosine), both on the same
training minibatches, sigma and noise as one train step (classifier_loss with one key), at the
shared initialisation and at the trained parameters; and per sigma of the grid at the trained
parameters (a training minibatch at that one sigma). The two gradients sum to the step's gradient
before clipping (tests/test_train.py checks it).

Writes the per-sigma values to <run-dir>/classifier_per_sigma.csv (or --out).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

import train
from dlsm import data as data_lib
from dlsm import steps
from dlsm.losses import classifier_loss, dlsm_loss_fixed, likelihood_score, weighted_ce
from dlsm.sde import VESDE

NAMES = {"ce": "base (CE)", "dlsm": "DLSM only", "total": "DLSM + CE"}


def _tree_norm(t):
    return float(jnp.sqrt(sum(jnp.sum(a**2) for a in jax.tree_util.tree_leaves(t))))


def _tree_cos(a, b):
    dot = sum(jnp.sum(u * v) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
    return float(dot) / (_tree_norm(a) * _tree_norm(b) + 1e-30)


def load_run(run_dir: str):
    """(cfg, data, score model + params, classifier, {loss: params}, initial classifier params)."""
    cfg = train.load_run_config(run_dir)
    if cfg.dataset == "moons":
        raise SystemExit(f"{run_dir} is a 2-D run; benchmarks/heldout_scores_2d.py covers those (exact oracle)")
    x, y, xt, yt = data_lib.load(cfg.dataset, cfg.data_dir, cfg.limit_train)
    score_model, clf = train.build(cfg, int(y.max()) + 1)
    x0 = jnp.asarray(x[:2])
    sp = steps.load_trained_params(run_dir, "score", score_model, x0, cfg.score_lr, cfg.grad_clip)
    cps = {lt: steps.load_trained_params(run_dir, f"clf_{lt}", clf, x0, cfg.clf_lr, cfg.grad_clip) for lt in cfg.losses}
    c0 = clf.init(train.run_keys(cfg.seed).clf, x0, jnp.ones((2,)))  # the shared initialisation
    return cfg, (x, y, xt, yt), score_model, sp, clf, cps, c0


def heldout_per_sigma(cfg, clf, cps, score_model, sp, xt, yt, noise_draws: int, seed: int, score_rms: bool = True):
    """({method: {acc, nll, g_rms}}, {"s_rms": [...]} (empty list if not score_rms), sigma grid) on the test split."""
    sig_grid = np.geomspace(cfg.sigma_min, cfg.sigma_max, cfg.eval_sigmas)

    @jax.jit
    def stats(p, xx, yy, sigma):
        logits_fn = lambda a, s: clf.apply(p, a, s)
        logits = logits_fn(xx, sigma)
        g = likelihood_score(logits_fn, xx, sigma, yy)
        return jnp.mean(jnp.argmax(logits, -1) == yy), weighted_ce(logits, yy, sigma), jnp.mean(g**2)

    s_ms = jax.jit(lambda xx, sigma: jnp.mean(score_model.apply(sp, xx, sigma) ** 2))
    rng = np.random.default_rng(seed)
    out = {lt: dict(acc=[], nll=[], g_rms=[]) for lt in cps}
    s_rms = []
    xt, yt = jnp.asarray(xt), jnp.asarray(yt)
    for sg in sig_grid:
        sigma = jnp.full((len(xt),), sg, jnp.float32)
        zs = [jnp.asarray(rng.standard_normal(xt.shape).astype(np.float32)) for _ in range(noise_draws)]
        if score_rms:
            s_rms.append(sg * float(np.sqrt(np.mean([float(s_ms(xt + sg * z, sigma)) for z in zs]))))
        for lt, p in cps.items():
            vals = np.array([[float(v) for v in stats(p, xt + sg * z, yt, sigma)] for z in zs])
            out[lt]["acc"].append(float(vals[:, 0].mean()))
            out[lt]["nll"].append(float(vals[:, 1].mean()))
            out[lt]["g_rms"].append(sg * float(np.sqrt(vals[:, 2].mean())))
    return out, dict(s_rms=s_rms), sig_grid


def objective_gradients(clf, params, score_fn, xb, yb, key, sde, cfg):
    """grad_theta of L_DLSM, of coef*CE and of their sum (the train step's objective), one draw of sigma, z."""
    def term(lt, p):
        return classifier_loss(lambda a, s: clf.apply(p, a, s), score_fn, xb, yb, key, sde, lt,
                               cfg.weighting_dlsm, cfg.weighting_ce, cfg.coef, cfg.dlsm_reduce_mean)[0]

    g_dlsm = jax.grad(lambda p: term("dlsm", p))(params)
    g_ce = jax.grad(lambda p: cfg.coef * term("ce", p))(params)
    g_total = jax.grad(lambda p: term("total", p))(params)
    return g_dlsm, g_ce, g_total


def gradient_split(cfg, clf, params, score_fn, x, y, sde, n_batches: int, seed: int):
    """Mean over n_batches training minibatches (train.py's sigma sampling) of ||grad DLSM||, ||grad coef*CE||, cos."""
    rng = np.random.default_rng(seed)
    fn = jax.jit(lambda p, xb, yb, k: objective_gradients(clf, p, score_fn, xb, yb, k, sde, cfg)[:2])
    rows = []
    for b in range(n_batches):
        idx = rng.integers(0, len(x), cfg.clf_batch)
        gd, gc = fn(params, jnp.asarray(x[idx]), jnp.asarray(y[idx]), jax.random.PRNGKey(seed + b))
        rows.append((_tree_norm(gd), _tree_norm(gc), _tree_cos(gd, gc)))
    return tuple(float(v) for v in np.mean(rows, 0))


def gradient_split_per_sigma(cfg, clf, params, score_fn, x, y, sig_grid, seed: int):
    """Per sigma of the grid: ||grad L_DLSM|| and ||grad coef*CE|| on one training minibatch at that sigma."""
    rng = np.random.default_rng(seed)

    def ce(p, xx, yy, sigma):
        return cfg.coef * weighted_ce(clf.apply(p, xx, sigma), yy, sigma, cfg.weighting_ce)

    def grads(p, xb, yb, sigma, z):
        gd = jax.grad(lambda q: dlsm_loss_fixed(lambda a, s: clf.apply(q, a, s), score_fn, xb, yb, sigma, z,
                                                cfg.weighting_dlsm, cfg.dlsm_reduce_mean, 1.0))(p)
        return gd, jax.grad(ce)(p, xb + sigma[:, None, None, None] * z, yb, sigma)

    fn = jax.jit(grads)
    out = dict(grad_dlsm=[], grad_ce=[])
    for sg in sig_grid:
        idx = rng.integers(0, len(x), cfg.clf_batch)
        z = rng.standard_normal((cfg.clf_batch,) + x.shape[1:]).astype(np.float32)
        gd, gc = fn(params, jnp.asarray(x[idx]), jnp.asarray(y[idx]), jnp.full((cfg.clf_batch,), sg, jnp.float32), jnp.asarray(z))
        out["grad_dlsm"].append(_tree_norm(gd))
        out["grad_ce"].append(_tree_norm(gc))
    return out


def evaluate(run_dir: str, noise_draws: int = 8, grad_batches: int = 8, seed: int = 1234):
    cfg, (x, y, xt, yt), score_model, sp, clf, cps, c0 = load_run(run_dir)
    sde = VESDE(cfg.sigma_min, cfg.sigma_max)
    score_fn = lambda a, s: score_model.apply(sp, a, s)
    per_sigma, score_rms, sig_grid = heldout_per_sigma(cfg, clf, cps, score_model, sp, xt, yt, noise_draws, seed)
    split, split_sigma = {}, None
    if "total" in cps:
        split["init"] = gradient_split(cfg, clf, c0, score_fn, x, y, sde, grad_batches, seed + 1)
        split["trained"] = gradient_split(cfg, clf, cps["total"], score_fn, x, y, sde, grad_batches, seed + 1)
        split_sigma = gradient_split_per_sigma(cfg, clf, cps["total"], score_fn, x, y, sig_grid, seed + 2)
    return dict(cfg=cfg, sig_grid=sig_grid, per_sigma=per_sigma, score_rms=score_rms, split=split, split_sigma=split_sigma)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a finished train.py image run (digits, fashion_mnist, ...)")
    ap.add_argument("--noise-draws", type=int, default=8, help="draws of z per sigma on the test split")
    ap.add_argument("--grad-batches", type=int, default=8, help="training minibatches of the gradient split")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default=None, help="per-sigma CSV (default <run-dir>/classifier_per_sigma.csv)")
    args = ap.parse_args()
    t0 = time.time()
    r = evaluate(args.run_dir, args.noise_draws, args.grad_batches, args.seed)
    cfg, sig, ps = r["cfg"], r["sig_grid"], r["per_sigma"]
    lts = list(ps)
    print(f"run {args.run_dir}: {len(sig)} sigma in [{sig[0]:.3g}, {sig[-1]:.3g}], test split, {args.noise_draws} noise draws\n")
    head = ["sigma"] + [f"acc {NAMES[lt]}" for lt in lts] + [f"NLL {NAMES[lt]}" for lt in lts] \
        + [f"sigma*|g| {NAMES[lt]}" for lt in lts] + ["sigma*|s|"]
    if r["split_sigma"]:
        head += ["DLSM+CE: |grad DLSM|", "DLSM+CE: |grad coef*CE|"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    rows = []
    for i, sg in enumerate(sig):
        row = [sg] + [ps[lt]["acc"][i] for lt in lts] + [ps[lt]["nll"][i] for lt in lts] \
            + [ps[lt]["g_rms"][i] for lt in lts] + [r["score_rms"]["s_rms"][i]]
        if r["split_sigma"]:
            row += [r["split_sigma"]["grad_dlsm"][i], r["split_sigma"]["grad_ce"][i]]
        rows.append(row)
        print("| " + " | ".join(f"{v:.4g}" for v in row) + " |")
    print("| mean over sigma | " + " | ".join(f"{v:.4g}" for v in np.mean(np.array(rows)[:, 1:], 0)) + " |")
    for when, (nd, nc, cos) in r["split"].items():
        print(f"\nDLSM + CE objective at the {when} parameters ({args.grad_batches} training minibatches of {cfg.clf_batch}, "
              f"train.py's sigma sampling): |grad L_DLSM| {nd:.4g}, |grad coef*CE| {nc:.4g} (ratio {nd / nc:.3g}), cosine {cos:.3g}")
    path = args.out or os.path.join(args.run_dir, "classifier_per_sigma.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows([[f"{v:.6g}" for v in row] for row in rows])
    print(f"\nper-sigma values: {path}\n{time.time() - t0:.0f} s wall")


if __name__ == "__main__":
    main()
