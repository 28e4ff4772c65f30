"""The EBFlow container and the paper's architectures.

A flow g = g_L o ... o g_1 maps data x to z with log-density (change of variables, paper Eq. (1))

    log p(x) = log N(g(x); 0, I) + sum_{i in S_n} log|det J_{g_i}| + sum_{i in S_l} log|det J_{g_i}|.

EBFlow reads it as an energy-based model p(x) = exp(-E(x)) / Z (paper Sec. 3):

    E(x)       = -log N(g(x)) - sum_{i in S_n} log|det J_{g_i}(x)|      (energy, O(D^2 L))
    -log Z     =  sum_{i in S_l} log|det W_i|                           (constant in x, O(D^3 L))

so the score d/dx log p(x) = -dE/dx never needs the linear layers' determinants.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from . import layers as L

LOG_2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class Flow:
    layers: tuple[L.Layer, ...]
    input_shape: tuple[int, ...]

    # ------------------------------------------------------------------ params
    def shapes(self) -> list[tuple[int, ...]]:
        """Input shape of every layer, then the output shape of the last."""
        s = [tuple(self.input_shape)]
        for layer in self.layers:
            s.append(tuple(layer.output_shape(s[-1])))
        return s

    @property
    def dim(self) -> int:
        return int(math.prod(self.input_shape))

    def init(self, key) -> list[Any]:
        keys = jax.random.split(key, len(self.layers))
        return [layer.init(k, s) for layer, k, s in zip(self.layers, keys, self.shapes())]

    def _check(self, x):
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"flow expects inputs of shape (batch, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")

    # ----------------------------------------------------------------- mapping
    def forward(self, params, x):
        """z = g(x) and sum_{S_n} log|det J| per sample."""
        self._check(x)
        logdet = jnp.zeros(x.shape[0], x.dtype)
        for layer, p in zip(self.layers, params):
            x, ld = layer.forward(p, x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, params, z):
        """x = g^{-1}(z): exact sampling by inversion."""
        for layer, p in zip(reversed(self.layers), reversed(params)):
            z = layer.inverse(p, z)
        return z

    # ------------------------------------------------------------ EBFlow terms
    def energy(self, params, x):
        """E(x) = -log N(g(x)) - sum_{S_n} log|det J(x)|, shape (B,). (paper Eq. (7))"""
        z, logdet_n = self.forward(params, x)
        zf = z.reshape(z.shape[0], -1)
        log_base = -0.5 * jnp.sum(zf**2, axis=1) - 0.5 * zf.shape[1] * LOG_2PI
        return -(log_base + logdet_n)

    def linear_logdet(self, params):
        """sum_{S_l} log|det W| = -log Z(theta), the O(D^3) term. (paper Eq. (7))"""
        total = jnp.zeros(())
        for layer, p, s in zip(self.layers, params, self.shapes()):
            if layer.linear:
                total = total + layer.const_logdet(p, s)
        return total

    def log_prob(self, params, x):
        """Exact log p(x) = -E(x) - log Z. (paper Eq. (1))"""
        return -self.energy(params, x) + self.linear_logdet(params)

    def score(self, params, x):
        """s(x) = d/dx log p(x) = -dE/dx; the linear log-dets drop out."""
        return -jax.grad(lambda xx: self.energy(params, xx).sum())(x)

    def sample(self, params, key, n: int):
        z = jax.random.normal(key, (n,) + self.shapes()[-1])
        return self.inverse(params, z)


# ------------------------------------------------------------------ architectures
def fc_flow(input_shape: Sequence[int], num_layers: int = 2, alpha: float = 0.3, neg_init: bool = True,
            residual: bool = False) -> Flow:
    """The paper's FC flow: [FC(D->D), SLReLU] x (L-1), FC. Weights start at -I (neg_init)."""
    layers: list[L.Layer] = []
    if len(input_shape) > 1:
        layers.append(L.Flatten(tuple(input_shape)))
    for i in range(num_layers):
        layers.append(L.FullyConnected(neg_init=neg_init))
        if i + 1 < num_layers:
            layers.append(L.SmoothLeakyReLU(alpha=alpha, residual=residual))
    return Flow(tuple(layers), tuple(input_shape))


def cnn_flow(input_shape: Sequence[int], num_blocks: int = 3, convs_per_block: int = 2, kernel_size: int = 7,
             alpha: float = 0.3, residual: bool = True, spectral_norm: bool = False) -> Flow:
    """The paper's CNN flow: 3 blocks of 2 convolutions (7x7) with residual SLReLU, squeeze between.

    Needs H, W divisible by 2^(num_blocks-1). The convolution log-dets are those of the dense
    Toeplitz matrices (computed for ML / evaluation only). ``spectral_norm`` normalises every
    convolution kernel (the official CIFAR-10 CNN).
    """
    layers: list[L.Layer] = []
    for blk in range(num_blocks):
        if blk > 0:
            layers.append(L.Squeeze())
        for _ in range(convs_per_block):
            layers.append(L.Conv2d(kernel_size=kernel_size, spectral_norm=spectral_norm))
            layers.append(L.SmoothLeakyReLU(alpha=alpha, residual=residual))
    layers.pop()  # end on a linear layer, like the FC flow
    return Flow(tuple(layers), tuple(input_shape))


def glow_flow(input_shape: Sequence[int], num_blocks: int = 2, block_size: int = 16, width: int = 512,
              kernel_size: int = 3) -> Flow:
    """Glow (Kingma & Dhariwal 2018) as in the paper's MNIST Glow experiment, single-scale:

        num_blocks x [Squeeze, block_size x (ActNorm, Invertible1x1Conv, AffineCoupling)]

    ActNorm and the 1x1 convolutions are linear (S_l: their log-dets form -log Z and score matching
    skips them); the couplings are nonlinear (S_n, in the energy). The coupling net is 3x3 conv ->
    1x1 conv -> zero-initialised 3x3 conv with ``width`` channels. Unlike the official model there is
    no split prior between blocks (every dimension reaches the final N(0, I)) and ActNorm starts at
    the identity instead of a data-dependent init.
    """
    layers: list[L.Layer] = []
    for _ in range(num_blocks):
        layers.append(L.Squeeze())
        for k in range(block_size):
            layers.append(L.ActNorm())
            layers.append(L.Invertible1x1Conv())
            layers.append(L.AffineCoupling(hidden=(width, width), parity=bool(k % 2), kernel_size=kernel_size))
    return Flow(tuple(layers), tuple(input_shape))


def toy_flow(num_blocks: int = 10, hidden: tuple[int, ...] = (64, 64)) -> Flow:
    """2-D toy flow: num_blocks x [2x2 linear, affine coupling, actnorm] + final 2x2 linear."""
    layers: list[L.Layer] = []
    for i in range(num_blocks):
        layers.append(L.FullyConnected(init_noise=0.5))
        layers.append(L.AffineCoupling(hidden=hidden, parity=bool(i % 2)))
        layers.append(L.ActNorm())
    layers.append(L.FullyConnected(init_noise=0.5))
    return Flow(tuple(layers), (2,))


ARCHITECTURES = ("fc", "cnn", "glow", "toy")


def build_flow(arch: str, input_shape: Sequence[int], **kw) -> Flow:
    if arch == "fc":
        return fc_flow(input_shape, **kw)
    if arch == "cnn":
        return cnn_flow(input_shape, **kw)
    if arch == "glow":
        return glow_flow(input_shape, **kw)
    if arch == "toy":
        if tuple(input_shape) != (2,):
            raise ValueError(f"the toy flow is 2-D, got input shape {tuple(input_shape)}")
        return toy_flow(**kw)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
