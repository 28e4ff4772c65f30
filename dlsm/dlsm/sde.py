"""The variance-exploding SDE (Song et al. 2021), the forward process of DLSM.

dx = sqrt(d[sigma^2(t)]/dt) dw,  sigma(t) = sigma_min (sigma_max / sigma_min)^t,  t in [0, 1].
The perturbation kernel is p_sigma(x~ | x) = N(x~; x, sigma(t)^2 I), so the denoising target
is grad_x~ log p_sigma(x~ | x) = (x - x~) / sigma^2 = -z / sigma for x~ = x + sigma z.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class VESDE:
    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __post_init__(self):
        if not (0.0 < self.sigma_min < self.sigma_max):
            raise ValueError(f"VESDE needs 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")

    def sigma(self, t):
        """sigma(t) = sigma_min (sigma_max / sigma_min)^t."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def diffusion_sq(self, t):
        """g(t)^2 = d sigma^2(t) / dt = 2 sigma(t)^2 log(sigma_max / sigma_min)."""
        return 2.0 * self.sigma(t) ** 2 * np.log(self.sigma_max / self.sigma_min)

    def perturb(self, x, z, t):
        """x~ = x + sigma(t) z, broadcasting sigma over the trailing data axes."""
        s = self.sigma(t).reshape((-1,) + (1,) * (x.ndim - 1))
        return x + s * z

    def discrete_sigmas(self, n_steps: int):
        """Geometric grid sigma_max -> sigma_min used by the reverse-diffusion predictor."""
        return jnp.exp(jnp.linspace(np.log(self.sigma_max), np.log(self.sigma_min), n_steps))

    def prior_sample(self, key, shape):
        import jax

        return jax.random.normal(key, shape) * self.sigma_max
