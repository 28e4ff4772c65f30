"""Is the Asym gap between the image USBM and QCSBM of a run larger than its measurement noise?

Loads the EMA weights of `<dataset>-usbm` and `<dataset>-qcsbm_hutch` from a finished run folder (its
config.json rebuilds the U-Net) and evaluates Asym = tr(JJ^T) - tr(JJ) per test image at n_levels noise
levels by Hutchinson (K slices), with the *same* noise z and probes v for both models. Prints, per level
and averaged over levels, the mean Asym of each model, their ratio, and the paired difference
USBM - QCSBM with its standard error over images (probe noise and image-to-image spread included):
a gap of many standard errors is measured, one of about one is not.

    python benchmarks/image_asym_gap.py runs/quick-<time>                 # all 297 digits test images, K = 8
    python benchmarks/image_asym_gap.py          # the newest run folder under runs/ with both image checkpoints
    python benchmarks/image_asym_gap.py runs/quick-<time> --n-images 64 --n-slices 1
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
from qcsbm import metrics as M  # noqa: E402
from qcsbm.config import load_run_config  # noqa: E402
from qcsbm.training import init_state, load_checkpoint  # noqa: E402


def newest_run(methods, root=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs")):
    """The newest run folder (recursively under root) whose ckpt/ holds an image checkpoint of every method."""
    found = []
    for d, _, files in os.walk(root):
        if os.path.basename(d) == "ckpt" and os.path.exists(os.path.join(os.path.dirname(d), "config.json")):
            cfg = load_run_config(os.path.dirname(d))
            if cfg.image_dataset and all(f"{cfg.image_dataset}-{m}.msgpack" in files for m in methods):
                found.append((os.path.getmtime(d), os.path.dirname(d)))
    return max(found)[1] if found else ""


def per_image_asym(score, sde, x0, key, n_levels, n_slices):
    """(n_levels, n_images) Asym of the score's Jacobian at x0 + sigma(t) z, Hutchinson with K = n_slices."""
    per = M.asymmetry_per_level(score, sde, x0, key, n_levels, exact=False, n_slices=n_slices)
    return np.stack([np.asarray(a, np.float64) for a, _ in per])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", default="", help="a finished run folder (default: the newest under runs/)")
    ap.add_argument("--methods", nargs=2, default=["usbm", "qcsbm_hutch"])
    ap.add_argument("--n-images", type=int, default=0, help="test images (0 = all)")
    ap.add_argument("--n-slices", type=int, default=8, help="Hutchinson K")
    a = ap.parse_args(argv)
    if not a.run_dir:
        a.run_dir = newest_run(a.methods)
        if not a.run_dir:
            print("no run folder under runs/ has image checkpoints of", a.methods, "- run `python train.py` first")
            return
    cfg = load_run_config(a.run_dir)
    x0 = jnp.asarray(train.eval_images(cfg, a.n_images))
    key = jax.random.PRNGKey(cfg.seed + 2)
    asym = {}
    for m in a.methods:
        model, sde, params, opt = train.image_model(cfg, m, x0)
        ckpt = os.path.join(a.run_dir, "ckpt", f"{cfg.image_dataset}-{m}.msgpack")
        state = load_checkpoint(ckpt, init_state(params, opt))
        asym[m] = per_image_asym(Partial(model.score, state.ema_params), sde, x0, key, cfg.n_levels, a.n_slices)
        print(f"{m}: step {int(state.step)}, EMA weights, {x0.shape[0]} images, K = {a.n_slices}", flush=True)
    u, q = (asym[m] for m in a.methods)
    n = u.shape[1]
    sig = sde.sigma(M.noise_levels(cfg.n_levels))
    print(f"\n| sigma | Asym {a.methods[0]} | Asym {a.methods[1]} | ratio | paired diff +- s.e. | diff / s.e. |")
    print("|---|---|---|---|---|---|")
    rows = [(f"{s:.3g}", u[i], q[i]) for i, s in enumerate(sig)] + [("mean over levels", u.mean(0), q.mean(0))]
    for lab, ui, qi in rows:
        d = ui - qi
        se = d.std(ddof=1) / np.sqrt(n)
        print(f"| {lab} | {ui.mean():.4g} | {qi.mean():.4g} | {qi.mean() / ui.mean():.3f} | "
              f"{d.mean():.4g} +- {se:.2g} | {d.mean() / se:.1f} |")


if __name__ == "__main__":
    main()
