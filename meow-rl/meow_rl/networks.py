"""Small building blocks shared by the MEow flow and the SAC baseline."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


class Swish(nn.Module):
    """Swish with a learnable slope: x * sigmoid(beta * x) (beta initialised to 1)."""

    @nn.compact
    def __call__(self, x):
        beta = self.param("beta", nn.initializers.ones, (1,))
        return x * nn.sigmoid(beta * x)


class MLP(nn.Module):
    """Dense stack. `zero_init` zeroes the output layer (MEow's prior-scale and shift nets start at 0).

    activation: "swish" (learnable beta, the MEow nets) or "relu" (the SAC nets).
    """

    features: Sequence[int]
    activation: str = "swish"
    layer_norm: bool = False
    dropout: float = 0.0
    zero_init: bool = False

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        for width in self.features[:-1]:
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = Swish()(x) if self.activation == "swish" else nn.relu(x)
            if self.dropout > 0.0:
                x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        if self.zero_init:
            out = nn.Dense(self.features[-1], kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros)
        else:
            out = nn.Dense(self.features[-1], kernel_init=nn.initializers.orthogonal(1.0))
        return out(x)


def polyak(target, online, tau: float):
    """theta_target <- tau * theta + (1 - tau) * theta_target."""
    import jax

    return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def squash_log_det(a):
    """log |d tanh(u)/du| at a = tanh(u): sum log(1 - a^2)."""
    return jnp.sum(jnp.log(1.0 - a**2), axis=-1)
