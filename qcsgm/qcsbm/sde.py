"""The variance-exploding (VE) SDE of Song et al. (2021) used throughout the paper.

Forward SDE: dx = sqrt(d sigma^2(t)/dt) dw, sigma(t) = sigma_min (sigma_max / sigma_min)^t, t in [0, 1].
Perturbation kernel: x_t = x_0 + sigma(t) z, z ~ N(0, I). Prior: N(0, sigma_max^2 I).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class VESDE:
    sigma_min: float = 0.1
    sigma_max: float = 3.0

    def __post_init__(self):
        if not (0 < self.sigma_min < self.sigma_max):
            raise ValueError(f"VESDE needs 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")

    def sigma(self, t):
        """sigma(t) = sigma_min (sigma_max / sigma_min)^t."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def g2(self, t):
        """Squared diffusion g(t)^2 = d sigma^2(t) / dt = 2 sigma(t)^2 log(sigma_max / sigma_min)."""
        return 2.0 * self.sigma(t) ** 2 * np.log(self.sigma_max / self.sigma_min)

    def prior_logp(self, x):
        """log N(x; 0, sigma_max^2 I), summed over all but the batch axis."""
        d = np.prod(x.shape[1:])
        sq = jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
        return -0.5 * d * np.log(2 * np.pi * self.sigma_max**2) - sq / (2 * self.sigma_max**2)
