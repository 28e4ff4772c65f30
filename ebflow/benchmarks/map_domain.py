"""Why DSM / FD-SSM need MaP here: how often their perturbation leaves the logit's domain.

Without MaP the logit is the flow's first layer, so DSM (x + sigma n) and FD-SSM (x +- v, |v| = eps)
perturb dequantised pixels u in (0, 1). Any perturbed pixel outside (-shift, 1 + shift) (the domain
of ``Logit``) makes the energy, hence the loss of the whole batch, NaN. Prints, per sigma = eps, the
fraction of training images (Fashion-MNIST, downsampled like the quick config) with such a pixel.

    python benchmarks/map_domain.py
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ebflow import data as D  # noqa: E402
from ebflow.layers import Logit  # noqa: E402


def leave_fraction(u: np.ndarray, delta: np.ndarray, shift: float) -> float:
    """Fraction of rows of u + delta with at least one entry outside (-shift, 1 + shift)."""
    x = u + delta
    return float(((x <= -shift) | (x >= 1.0 + shift)).any(axis=1).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="training images to count on")
    ap.add_argument("--image-size", type=int, default=14)
    ap.add_argument("--scales", default="0.00390625,1e-3,1e-4,1e-5,1e-6", help="sigma = eps values (pixels in (0, 1))")
    a = ap.parse_args(argv)
    x = D.load_idx_images(D.FASHION_MNIST_DIR, "train")[: a.n]
    x = D.downsample(x, x.shape[1] // a.image_size).reshape(len(x), -1).astype(np.float64)
    rng = np.random.default_rng(0)
    u = (x + rng.uniform(size=x.shape)) / 256.0  # uniform dequantisation, as preprocess.dequantize
    shift = Logit().shift
    print(f"{len(x)} images, D = {x.shape[1]}, {np.mean((x == 0).sum(1)):.1f} zero pixels per image on average\n")
    print("| sigma = eps | DSM: images with a pixel outside (0,1) | FD-SSM: same |")
    print("| --- | --- | --- |")
    for s in (float(v) for v in a.scales.split(",")):
        n = rng.normal(size=u.shape)
        v = s * n / np.linalg.norm(n, axis=1, keepdims=True)  # uniform on the sphere of radius eps
        dsm = leave_fraction(u, s * rng.normal(size=u.shape), shift)
        fd = leave_fraction(np.concatenate([u, u], 1), np.concatenate([v, -v], 1), shift)  # x + v and x - v
        print(f"| {s:g} | {dsm:.3f} | {fd:.3f} |")


if __name__ == "__main__":
    main()
