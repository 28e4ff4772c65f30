"""Small building blocks shared by the MEow flow and the SAC baseline."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class Swish(nn.Module):
    """Swish with a learnable slope: x * sigmoid(beta * x) (beta initialised to 1); one beta per
    unit when `per_unit` (the official code's nf/nets.py), else one shared scalar."""

    per_unit: bool = False

    @nn.compact
    def __call__(self, x):
        beta = self.param("beta", nn.initializers.ones, (x.shape[-1],) if self.per_unit else (1,))
        return x * nn.sigmoid(beta * x)


def torch_bias_init(fan_in: int):
    """PyTorch's default nn.Linear bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class MLP(nn.Module):
    """Dense stack. `zero_init` marks MEow's prior-scale and shift nets, which start at 0.

    activation: "swish" (learnable beta, the MEow nets) or "relu" (the SAC nets).
    init_scheme: "flax" -- hidden layers orthogonal(sqrt 2), output orthogonal(1) (zero when `zero_init`),
          zero biases, one Swish beta, LayerNorm eps 1e-6;
          "official" -- the official MEow code's (PyTorch) init: orthogonal(1) weights in every layer
          (all-zero weights in every layer when `zero_init`), PyTorch's default uniform biases, one
          Swish beta per unit, LayerNorm eps 1e-5.
    """

    features: Sequence[int]
    activation: str = "swish"
    layer_norm: bool = False
    dropout: float = 0.0
    zero_init: bool = False
    init_scheme: str = "flax"

    def _dense(self, x, width, last: bool):
        if self.init_scheme == "official":
            kernel = nn.initializers.zeros if self.zero_init else nn.initializers.orthogonal(1.0)
            return nn.Dense(width, kernel_init=kernel, bias_init=torch_bias_init(x.shape[-1]))(x)
        if last:
            kernel = nn.initializers.zeros if self.zero_init else nn.initializers.orthogonal(1.0)
        else:
            kernel = nn.initializers.orthogonal(np.sqrt(2.0))
        return nn.Dense(width, kernel_init=kernel)(x)

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        if self.init_scheme not in ("flax", "official"):
            raise ValueError(f"init_scheme must be 'flax' or 'official', got {self.init_scheme!r}")
        official = self.init_scheme == "official"
        for width in self.features[:-1]:
            x = self._dense(x, width, last=False)
            if self.layer_norm:
                x = nn.LayerNorm(epsilon=1e-5 if official else 1e-6)(x)
            x = Swish(per_unit=official)(x) if self.activation == "swish" else nn.relu(x)
            if self.dropout > 0.0:
                x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        return self._dense(x, self.features[-1], last=True)


def polyak(target, online, tau: float):
    """theta_target <- tau * theta + (1 - tau) * theta_target."""
    return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def squash_log_det(a):
    """log |d tanh(u)/du| at a = tanh(u): sum log(1 - a^2)."""
    return jnp.sum(jnp.log(1.0 - a**2), axis=-1)
