"""MaP: "Match after Preprocessing" (paper Sec. 4). The fixed data transform

    x in {0..255}^D  --dequantise-->  u = (x + U[0,1)) / 256  --logit-->  y = Logit(u)

runs outside the trained flow, so every objective (ML and score matching alike) is applied to y.
Its log-determinant is added back only to report the NLL of the discrete data in bits/dim:

    -log p(x) <= -log p_y(y) - log|dy/du| + D log 256            (uniform dequantisation bound)
    bits/dim   = that / (D ln 2)
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .layers import Logit


def dequantize(key, x_uint8):
    """u = (x + noise) / 256 with noise ~ U[0, 1): continuous data in (0, 1)."""
    x = jnp.asarray(x_uint8, jnp.float32)
    return (x + jax.random.uniform(key, x.shape)) / 256.0


def to_model_space(key, x_uint8, logit: Logit | None):
    """Data as the flow sees it, and log|dy/du| per sample. ``logit=None`` means no MaP (y = u)."""
    u = dequantize(key, x_uint8)
    if logit is None:
        return u, jnp.zeros(u.shape[0])
    return logit.forward({}, u)


def to_pixels(y, logit: Logit | None):
    """Back from model space to [0, 1] pixels, for plots."""
    u = y if logit is None else logit.inverse({}, y)
    return jnp.clip(u, 0.0, 1.0)


def bits_per_dim(log_p_model, logdet_pre, dim: int):
    """Per-sample bits/dim of the discrete data, from log p_y(y) and log|dy/du|."""
    nll = -(log_p_model + logdet_pre) + dim * math.log(256.0)
    return nll / (dim * math.log(2.0))
