"""Exact densities of the smoothed 2-D toys: p_s = p_clean * N(0, s^2 I), s = 0.375.

The paper's toy evaluation (Table 1) needs log p and its score grad_x log p of the data density.
The official code estimates both with a Gaussian KDE of 10k clean test points (bandwidth s).
Here they are exact up to quadrature error: every toy is a 1-D curve or a union of boxes with
Gaussian and/or uniform noise, so the convolution with N(0, s^2 I) is a 1-D integral (sine,
swirl; midpoint rule with ``nodes`` points) or closed form (checkerboard, multimodal10):

  sine:          p(x) = int_{-8}^{8} 1/16 N(x1; t, s^2) N(x2; 4 sin(3t/4), 1 + s^2) dt
  swirl:         p(x) = int_0^{3pi} 2t/(3pi)^2 B(x1; c*(t cos t + [1/2, 1]), s) B(x2; c*(-t sin t + [3/2, 2]), s) dt
  checkerboard:  p(x) = sum_{8 squares} 1/8 B(x1; [lo1, hi1], s) B(x2; [lo2, hi2], s)
  multimodal10:  p(x) = 1/10 sum_k N(x; mu_k, (0.3^2 + s^2) I)

with B(y; [lo, hi], s) = (Phi((y - lo)/s) - Phi((y - hi)/s)) / (hi - lo), a uniform on [lo, hi]
convolved with N(0, s^2). Everything is computed in log space (log_ndtr, logsumexp), so far tails
stay finite. The score is the autodiff gradient of ``log_density``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp

from .data import MM10_RADIUS, MM10_STD, SWIRL_SCALE, TOY_DATASETS

LOG_2PI = math.log(2.0 * math.pi)


def _log_normal(y, mean, var):
    return -0.5 * (y - mean) ** 2 / var - 0.5 * (LOG_2PI + jnp.log(var))


def _log_ndtr_diff(a, b):
    """log(Phi(a) - Phi(b)) for a > b, stable in both tails (mirrored when b > 0).

    The unused branch gets safe inputs so its gradient cannot poison the result (double where).
    """
    right = b > 0
    a_l, b_l = jnp.where(right, -1.0, a), jnp.where(right, -2.0, b)  # left/centre: Phi(a) - Phi(b)
    a_r, b_r = jnp.where(right, -b, 1.0), jnp.where(right, -a, 0.0)  # right tail: Phi(-b) - Phi(-a)
    left = log_ndtr(a_l) + jnp.log(-jnp.expm1(log_ndtr(b_l) - log_ndtr(a_l)))
    mirr = log_ndtr(a_r) + jnp.log(-jnp.expm1(log_ndtr(b_r) - log_ndtr(a_r)))
    return jnp.where(right, mirr, left)


def _log_box(y, lo, hi, s):
    """log B(y; [lo, hi], s): uniform on [lo, hi] convolved with N(0, s^2)."""
    return _log_ndtr_diff((y - lo) / s, (y - hi) / s) - jnp.log(hi - lo)


def _midpoint(a: float, b: float, n: int):
    h = (b - a) / n
    return a + h * (jnp.arange(n) + 0.5), h


def _log_density_one(name: str, x, s: float, nodes: int):
    x1, x2 = x[0], x[1]
    if name == "sine":
        t, h = _midpoint(-8.0, 8.0, nodes)
        terms = _log_normal(x1, t, s**2) + _log_normal(x2, 4.0 * jnp.sin(0.75 * t), 1.0 + s**2)
        return logsumexp(terms) + math.log(h / 16.0)
    if name == "swirl":
        c = SWIRL_SCALE
        t, h = _midpoint(0.0, 3.0 * math.pi, nodes)
        cx, cy = t * jnp.cos(t), -t * jnp.sin(t)
        terms = (jnp.log(2.0 * t / (3.0 * math.pi) ** 2)
                 + _log_box(x1, c * (cx + 0.5), c * (cx + 1.0), s) + _log_box(x2, c * (cy + 1.5), c * (cy + 2.0), s))
        return logsumexp(terms) + math.log(h)
    if name == "checkerboard":
        # (x1 cell, x2 cells) in units of 3: x2 in [0,1) u [-2,-1) shifted up by floor(x1) mod 2
        lo1 = jnp.array([-2.0, -2.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0])
        lo2 = jnp.array([0.0, -2.0, 1.0, -1.0, 0.0, -2.0, 1.0, -1.0])
        terms = _log_box(x1, 3.0 * lo1, 3.0 * lo1 + 3.0, s) + _log_box(x2, 3.0 * lo2, 3.0 * lo2 + 3.0, s)
        return logsumexp(terms) - math.log(8.0)
    if name == "multimodal10":
        ang = 2.0 * math.pi * jnp.arange(10) / 10
        var = MM10_STD**2 + s**2
        terms = _log_normal(x1, MM10_RADIUS * jnp.cos(ang), var) + _log_normal(x2, MM10_RADIUS * jnp.sin(ang), var)
        return logsumexp(terms) - math.log(10.0)
    raise ValueError(f"unknown toy dataset {name!r}; choose one of {TOY_DATASETS}")


def log_density(name: str, x, smoothing: float = 0.375, nodes: int = 4000):
    """Exact log p_s(x) of toy ``name`` at points x of shape (N, 2)."""
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {TOY_DATASETS}")
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"toy densities are 2-D: expected points of shape (N, 2), got {tuple(x.shape)}")
    return jax.vmap(lambda xi: _log_density_one(name, xi, smoothing, nodes))(x)


def score(name: str, x, smoothing: float = 0.375, nodes: int = 4000):
    """grad_x log p_s(x), shape (N, 2)."""
    return jax.grad(lambda xx: log_density(name, xx, smoothing, nodes).sum())(jnp.asarray(x))


def oracle(name: str, x, smoothing: float = 0.375, nodes: int = 4000, chunk: int = 2000):
    """(log p, score) at x as float64 numpy arrays, computed in float64 and in chunks (memory)."""
    with jax.enable_x64(True):
        f = jax.jit(lambda xx: (log_density(name, xx, smoothing, nodes), score(name, xx, smoothing, nodes)))
        x = np.asarray(x, np.float64)
        outs = [f(jnp.asarray(x[i : i + chunk])) for i in range(0, len(x), chunk)]
        return (np.concatenate([np.asarray(o[0]) for o in outs]), np.concatenate([np.asarray(o[1]) for o in outs]))
