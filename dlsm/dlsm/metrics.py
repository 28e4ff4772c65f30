"""Evaluation: score errors against the oracle (2-D), precision/recall/density/coverage, Frechet
distance in a feature space, and the classification accuracy score (CAS).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.spatial.distance import cdist


def score_errors(est, oracle):
    """Mean Euclidean norm of (estimate - oracle) over points (the toy study's D metrics)."""
    return float(np.mean(np.linalg.norm((np.asarray(est) - np.asarray(oracle)).reshape(len(est), -1), axis=-1)))


def _knn_radii(x, k):
    d = cdist(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def prdc(real, fake, k: int = 5):
    """Precision, recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020)
    from k-nearest-neighbour balls, as in the `prdc` package the paper uses."""
    real = np.asarray(real, np.float64).reshape(len(real), -1)
    fake = np.asarray(fake, np.float64).reshape(len(fake), -1)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"prdc needs more than k={k} real and fake points, got {len(real)} and {len(fake)}")
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    d = cdist(real, fake)  # (R, F)
    inside = d < r_real[:, None]
    precision = float(np.mean(inside.any(axis=0)))
    recall = float(np.mean((d < r_fake[None, :]).any(axis=1)))
    density = float(inside.sum() / (k * len(fake)))
    coverage = float(np.mean(d.min(axis=1) < r_real))
    return dict(precision=precision, recall=recall, density=density, coverage=coverage)


def frechet_distance(feat_a, feat_b):
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) between Gaussian fits of two feature sets."""
    a = np.asarray(feat_a, np.float64)
    b = np.asarray(feat_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(ca @ cb)
    if not np.isfinite(covmean).all():
        off = np.eye(len(ca)) * 1e-6
        covmean = scipy.linalg.sqrtm((ca + off) @ (cb + off))
    covmean = np.real(covmean)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca) + np.trace(cb) - 2 * np.trace(covmean))


def off_class_fraction(samples, cls: int, ref_x, ref_y):
    """Fraction of samples drawn for class `cls` whose nearest reference point belongs to another
    class: the class-consistency failure that a mismatched likelihood score causes."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(np.asarray(ref_x).reshape(len(ref_x), -1)).query(np.asarray(samples).reshape(len(samples), -1))
    return float(np.mean(np.asarray(ref_y)[idx] != cls))


def oracle_score_errors(points, labels, noises, sig_grid, oracle, score_fn, guidances, progress: bool = True):
    """The toy study's score errors at x~ = points + sigma z, per sigma of `sig_grid` (z = noises[i]).

    guidances: [(name, logits_fn, scale)]; the estimated likelihood score is scale * g with
    g = grad_x~ log softmax(logits_fn(x~, sigma))_y, the estimated posterior score s_phi(x~) + scale * g.
    Returns {name: {"likelihood": [...], "posterior": [...]}, "score model (prior)": {"prior": [...]}},
    each entry sigma * the mean L2 error against the oracle (`oracle`, a GaussianMixture) at that sigma.
    """
    import jax
    import jax.numpy as jnp

    from tqdm import tqdm

    from .losses import likelihood_score
    from .oracle import batched

    points, labels = np.asarray(points, np.float32), np.asarray(labels)
    if len(noises) != len(sig_grid) or any(np.shape(z) != points.shape for z in noises):
        raise ValueError(f"need one noise array of shape {points.shape} per sigma ({len(sig_grid)})")
    num_classes = oracle.num_classes
    oracle_prior = jax.jit(lambda a, sg: oracle.score(a, sg))
    oracle_lik = [jax.jit(lambda a, sg, c=c: oracle.likelihood_score(a, sg, c)) for c in range(num_classes)]
    curves = {name: {"likelihood": [], "posterior": []} for name, _, _ in guidances}
    curves["score model (prior)"] = {"prior": []}
    for sg, z in tqdm(list(zip(sig_grid, noises)), desc="score errors", mininterval=2.0, disable=not progress):
        xq = points + sg * np.asarray(z, np.float32)
        s_arr = jnp.full((len(points),), sg, jnp.float32)
        prior_o = batched(lambda a: oracle_prior(a, sg), xq)
        lik_o = np.zeros_like(xq)
        for c in range(num_classes):
            m = labels == c
            lik_o[m] = batched(lambda a: oracle_lik[c](a, sg), xq[m])
        s_est = np.asarray(score_fn(jnp.asarray(xq), s_arr))
        curves["score model (prior)"]["prior"].append(sg * score_errors(s_est, prior_o))
        for name, logits_fn, scale in guidances:
            g = scale * np.asarray(likelihood_score(logits_fn, jnp.asarray(xq), s_arr, jnp.asarray(labels)))
            curves[name]["likelihood"].append(sg * score_errors(g, lik_o))
            curves[name]["posterior"].append(sg * score_errors(s_est + g, prior_o + lik_o))
    return curves
