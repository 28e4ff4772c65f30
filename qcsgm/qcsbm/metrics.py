"""Evaluation: asymmetry of the score Jacobian (Asym, NAsym), score error against an oracle,
and k-NN precision / recall of samples (Kynkaanniemi et al., 2019; k = 3 as in the paper).

Asym  = tr(J J^T) - tr(J J) = 1/2 ||J - J^T||_F^2,
NAsym = 1/2 Asym / tr(J J^T) = ||J - J^T||_F^2 / (4 ||J||_F^2), in [0, 1]
(the official code's scaling). Both are averaged over samples at each of n_levels noise levels
t = 1/n, 2/n, ..., 1, then over levels.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .losses import jacobian_traces_exact, jacobian_traces_hutchinson, rademacher


def asymmetry(score_fn, x, t, key=None, exact=True, n_slices=16):
    """Per-sample (Asym, NAsym) of the Jacobian of x -> score_fn(x, t) at x."""
    f = lambda y: score_fn(y, t)  # noqa: E731
    if exact:
        _, tr_jjt, tr_jj = jacobian_traces_exact(f, x)
    else:
        v = rademacher(key, (n_slices,) + x.shape, x.dtype)
        _, tr_jjt, tr_jj = jacobian_traces_hutchinson(f, x, v)
    asym = tr_jjt - tr_jj
    return asym, 0.5 * asym / (tr_jjt + 1e-8)


def noise_levels(n_levels):
    return (np.arange(n_levels) + 1.0) / n_levels


def asymmetry_over_levels(score_fn, sde, x0, key, n_levels=10, exact=True, n_slices=16):
    """Mean Asym and NAsym of perturbed data x0 + sigma(t) z at each level t. Returns two (n_levels,) arrays."""
    asyms, nasyms = [], []
    asym_fn = jax.jit(lambda x, tt, kv: asymmetry(score_fn, x, tt, kv, exact, n_slices))  # compiled once
    for i, t in enumerate(noise_levels(n_levels)):
        kz, kv = jax.random.split(jax.random.fold_in(key, i))
        tt = jnp.full((x0.shape[0],), t, x0.dtype)
        x = x0 + sde.sigma(t) * jax.random.normal(kz, x0.shape, x0.dtype)
        a, na = asym_fn(x, tt, kv)
        asyms.append(float(jnp.mean(a)))
        nasyms.append(float(jnp.mean(na)))
    return np.array(asyms), np.array(nasyms)


def score_error_over_levels(score_fn, oracle_fn, sde, x0, key, n_levels=10):
    """Mean 1/2 ||s_theta(x~, t) - grad log p_sigma(x~)||^2 at each level (as in the official code)."""
    errs = []
    for i, t in enumerate(noise_levels(n_levels)):
        kz = jax.random.fold_in(key, i)
        tt = jnp.full((x0.shape[0],), t, x0.dtype)
        sigma = sde.sigma(tt)
        x = x0 + sigma[:, None] * jax.random.normal(kz, x0.shape, x0.dtype)
        err = 0.5 * jnp.sum((score_fn(x, tt) - oracle_fn(x, sigma)) ** 2, -1)
        errs.append(float(jnp.mean(err)))
    return np.array(errs)


def _pairwise_sq(a, b):
    return jnp.maximum(jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None] - 2 * a @ b.T, 0.0)


def _kth_nn_radius(x, k):
    d = _pairwise_sq(x, x)
    return jnp.sort(d, axis=1)[:, k]  # index 0 is the point itself


def precision_recall(real, fake, k=3):
    """k-NN precision (fraction of fake inside some real k-NN ball) and recall (vice versa)."""
    real = jnp.asarray(real, jnp.float32).reshape(len(real), -1)
    fake = jnp.asarray(fake, jnp.float32).reshape(len(fake), -1)
    if not (jnp.all(jnp.isfinite(fake))):
        return 0.0, 0.0
    r_real, r_fake = _kth_nn_radius(real, k), _kth_nn_radius(fake, k)
    d = _pairwise_sq(real, fake)  # (n_real, n_fake)
    precision = jnp.mean(jnp.any(d <= r_real[:, None], axis=0))
    recall = jnp.mean(jnp.any(d <= r_fake[None, :], axis=1))
    return float(precision), float(recall)
