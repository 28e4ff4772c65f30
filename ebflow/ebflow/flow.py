"""The EBFlow container and the paper's architectures.

A flow g = g_L o ... o g_1 maps data x to z with log-density (change of variables, paper Eq. (1))

    log p(x) = log N(g(x); 0, I) + sum_{i in S_n} log|det J_{g_i}| + sum_{i in S_l} log|det J_{g_i}|.

EBFlow reads it as an energy-based model p(x) = exp(-E(x)) / Z (paper Sec. 3):

    E(x)       = -log N(g(x)) - sum_{i in S_n} log|det J_{g_i}(x)|      (energy, O(D^2 L))
    -log Z     =  sum_{i in S_l} log|det W_i|                           (constant in x, O(D^3 L))

so the score d/dx log p(x) = -dE/dx never needs the linear layers' determinants.

Multi-scale flows (Glow) factor half the channels out at a ``SplitPrior`` with a learned conditional
Gaussian p(x2 | x1); its log-density depends on x, so it is one more **energy** term:

    E(x) = -log N(h_L; 0, I) - sum_{splits k} log N(x2_k; mu_k(x1_k), sigma_k(x1_k)) - sum_{S_n} log|det J(x)|

with h_L what reaches the end of the flow. The latent z of such a flow is the flat vector
[h_L, eps2_1, eps2_2, ...] (eps2_k = (x2_k - mu_k) / sigma_k), of the data's dimension D, so g stays a
bijection R^D -> R^D and sampling is x = g^{-1}(z), z ~ N(0, I).
"""
from __future__ import annotations

import dataclasses
import itertools
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

    # ------------------------------------------------- state (the ``stats`` collection)
    def init_stats(self, key) -> list[Any]:
        """Non-trainable per-layer state, kept apart from the params like flax's ``batch_stats`` collection:
        the spectral-norm vectors u, v of each spectral-norm Conv2d ({} for every other layer)."""
        keys = jax.random.split(key, len(self.layers))
        return [layer.init_stats(k, s) for layer, k, s in zip(self.layers, keys, self.shapes())]

    @property
    def has_stats(self) -> bool:
        return any(getattr(layer, "spectral_norm", False) for layer in self.layers)

    def update_stats(self, params, stats) -> list[Any]:
        """One training-step update of the state: one power iteration per spectral-norm layer (no gradient)."""
        return [layer.update_stats(p, s) for layer, p, s in zip(self.layers, params, stats)]

    def bind(self, params, stats) -> list[Any]:
        """Params with each layer's state merged in, what ``forward`` / ``energy`` / ``inverse`` read.
        Gradients taken through a bound tree reach only the params (the state enters via stop_gradient)."""
        return [{**p, **s} if s else p for p, s in zip(params, stats)]

    @property
    def has_data_init(self) -> bool:
        return any(getattr(layer, "data_dependent", False) for layer in self.layers)

    def data_init(self, params, x) -> list[Any]:
        """Data-dependent initialisation (Glow's ActNorm) from one batch: layer by layer, each layer is
        initialised on what the already-initialised layers below it make of ``x``."""
        self._check(x)
        out = []
        for layer, p in zip(self.layers, params):
            p = layer.data_init(p, x)
            out.append(p)
            if layer.factors_out:
                x = layer.split(p, x)[0]
            else:
                x = layer.forward(p, x)[0]
        return out

    def _check(self, x):
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"flow expects inputs of shape (batch, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")

    @property
    def multiscale(self) -> bool:
        return any(layer.factors_out for layer in self.layers)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of z = g(x) per sample: the last layer's output, or (D,) for a multi-scale flow."""
        return (self.dim,) if self.multiscale else self.shapes()[-1]

    # ----------------------------------------------------------------- mapping
    def _encode(self, params, x):
        """Run the layers: (h_L, [eps2_k], sum_{S_n} log|det J|, sum_k log p(x2_k | x1_k)) per sample."""
        self._check(x)
        logdet_n = jnp.zeros(x.shape[0], x.dtype)
        log_prior = jnp.zeros(x.shape[0], x.dtype)
        eps = []
        for layer, p in zip(self.layers, params):
            if layer.factors_out:
                x, _, e, lp = layer.split(p, x)
                eps.append(e)
                log_prior = log_prior + lp
            else:
                x, ld = layer.forward(p, x)
                logdet_n = logdet_n + ld
        return x, eps, logdet_n, log_prior

    def forward(self, params, x):
        """z = g(x) and the data-dependent log|det dz/dx| per sample (S_n layers and split standardisations)."""
        h, eps, logdet_n, log_prior = self._encode(params, x)
        if not eps:
            return h, logdet_n
        flat = [a.reshape(a.shape[0], -1) for a in [h] + eps]
        # log|det| of x2 -> eps2 is -sum log sigma = log p(x2 | x1) - log N(eps2; 0, I)
        log_n_eps = sum(_log_std_normal(e) for e in flat[1:])
        return jnp.concatenate(flat, axis=1), logdet_n + log_prior - log_n_eps

    def inverse(self, params, z):
        """x = g^{-1}(z): exact sampling by inversion."""
        shapes = self.shapes()
        if self.multiscale:
            sizes = [math.prod(shapes[-1])] + [math.prod(layer.factored_shape(s)) for layer, s in zip(self.layers, shapes)
                                               if layer.factors_out]
            parts = jnp.split(z.reshape(z.shape[0], -1), list(itertools.accumulate(sizes))[:-1], axis=1)
            z, eps = parts[0].reshape((z.shape[0],) + shapes[-1]), parts[1:]
        for i in reversed(range(len(self.layers))):
            layer, p = self.layers[i], params[i]
            if layer.factors_out:
                e = eps.pop().reshape((z.shape[0],) + layer.factored_shape(shapes[i]))
                z = layer.merge(p, z, e)
            else:
                z = layer.inverse(p, z)
        return z

    # ------------------------------------------------------------ EBFlow terms
    def energy(self, params, x):
        """E(x) = -log N(h_L) - sum_k log p(x2_k | x1_k) - sum_{S_n} log|det J(x)|, shape (B,). (paper Eq. (7))

        Every term here depends on x through the nonlinear layers or the priors; the linear layers enter
        only through h_L, never through their log-dets (those are -log Z, ``linear_logdet``).
        """
        h, _, logdet_n, log_prior = self._encode(params, x)
        return -(_log_std_normal(h.reshape(h.shape[0], -1)) + log_prior + logdet_n)

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
        z = jax.random.normal(key, (n,) + self.latent_shape)
        return self.inverse(params, z)


def _log_std_normal(zf):
    """log N(z; 0, I) of flat (B, d) z."""
    return -0.5 * jnp.sum(zf**2, axis=1) - 0.5 * zf.shape[1] * LOG_2PI


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
             alpha: float = 0.3, residual: bool = True, spectral_norm: bool = False, neg_init: bool = False) -> Flow:
    """The paper's CNN flow: 3 blocks of 2 convolutions (7x7) with residual SLReLU, squeeze between.

    Needs H, W divisible by 2^(num_blocks-1). The convolution log-dets are those of the dense
    Toeplitz matrices (computed for ML / evaluation only). ``spectral_norm`` normalises every
    convolution kernel (the official CIFAR-10 CNN; state in ``Flow.init_stats``). ``neg_init`` starts
    every convolution at minus the Dirac kernel (the official MNIST and CIFAR-10 CNN configs, ``neg_init: 1``);
    otherwise Dirac + 1e-3 noise.
    """
    layers: list[L.Layer] = []
    for blk in range(num_blocks):
        if blk > 0:
            layers.append(L.Squeeze())
        for _ in range(convs_per_block):
            layers.append(L.Conv2d(kernel_size=kernel_size, spectral_norm=spectral_norm, neg_init=neg_init))
            layers.append(L.SmoothLeakyReLU(alpha=alpha, residual=residual))
    layers.pop()  # end on a linear layer, like the FC flow
    return Flow(tuple(layers), tuple(input_shape))


GLOW_COUPLINGS = ("ours", "official")


def glow_flow(input_shape: Sequence[int], num_blocks: int = 2, block_size: int = 16, width: int = 512,
              kernel_size: int = 3, split_prior: bool = True, actnorm_data_init: bool = True,
              coupling: str = "ours", actnorm_trainable: bool = True) -> Flow:
    """Glow (Kingma & Dhariwal 2018), multi-scale, as in the paper's MNIST Glow (official models/mnist/glow.py):

        for each of num_blocks levels:
            Squeeze, block_size x (ActNorm, Invertible1x1Conv, AffineCoupling),
            SplitPrior (all levels but the last)

    Which term each layer gives (EBFlow split, see ``Flow``):
      ActNorm, Invertible1x1Conv   linear (S_l): log-dets H W sum s, H W log|det W| are constant in x ->
                                   -log Z; score matching never computes them.
      AffineCoupling               nonlinear (S_n): log-det sum s(x_a) depends on x -> energy.
      SplitPrior                   log N(x2; mu(x1), sigma(x1)) of the factored-out half -> energy.
      final N(0, I) on h_L         -> energy.
    ActNorm is affine, y = (x + b) exp(s): its Jacobian is the same for every x, so under the paper's
    definition it is in S_l and its log-det H W sum(s) is part of -log Z. (The official code derives its
    ActNorm from FlowActivationLayer, not LinearFlowLayer, so ``zero_ldj`` does not drop that constant and its
    "energy" carries it; the score is the same either way. Its low-energy regulariser lambda E[E(x)] / D
    sees that constant but gets no gradient from it, because the official ActNorm is never trained; see
    ``actnorm_trainable``.)

    ``coupling`` picks the coupling and prior nets:
      "ours"      couplings alternate which half they transform; SiLU; s = scale * tanh(raw) with a learned
                  per-dim scale; prior nets SiLU.
      "official"  the official Glow (layers/coupling.py): every coupling transforms the second half of the
                  channels (the 1x1 convolutions do the mixing); LeakyReLU(0.1); s = 2 tanh(raw / 2); the
                  zero-initialised last conv scales its output by exp(3 logs) (Conv2dZero). The split prior's
                  net uses ReLU (the official SplitPrior builds its Coupling without an activation) and the
                  same exp(3 logs) output scale.

    ActNorm starts from data (``Flow.data_init`` on the first batch: zero mean, unit variance per channel)
    when ``actnorm_data_init``. ``actnorm_trainable=False`` freezes every ActNorm at that start, which is
    what the official code ran (its ActNorm's ``Parameter(...).to('cuda')`` is never registered with the
    module, so Adam, the EMA and the checkpoints never see it); True is Glow's trainable ActNorm. The coupling and prior nets are 3x3 conv -> 1x1 conv -> zero-initialised
    3x3 conv with ``width`` channels.
    """
    if coupling not in GLOW_COUPLINGS:
        raise ValueError(f"unknown Glow coupling {coupling!r}; choose one of {GLOW_COUPLINGS}")
    official = coupling == "official"
    net = dict(hidden=(width, width), kernel_size=kernel_size, out_scale=official)
    layers: list[L.Layer] = []
    for level in range(num_blocks):
        layers.append(L.Squeeze())
        for k in range(block_size):
            layers.append(L.ActNorm(data_dependent=actnorm_data_init, trainable=actnorm_trainable))
            layers.append(L.Invertible1x1Conv())
            if official:
                layers.append(L.AffineCoupling(parity=False, log_scale="2tanh", activation="leaky_relu", **net))
            else:
                layers.append(L.AffineCoupling(parity=bool(k % 2), **net))
        if split_prior and level < num_blocks - 1:
            layers.append(L.SplitPrior(activation="relu" if official else "silu", **net))
    return Flow(tuple(layers), tuple(input_shape))


def toy_flow(num_blocks: int = 10, hidden: tuple[int, ...] = (64, 64)) -> Flow:
    """2-D toy flow: num_blocks x [2x2 linear, affine coupling, actnorm] + final 2x2 linear (actnorm from identity)."""
    layers: list[L.Layer] = []
    for i in range(num_blocks):
        layers.append(L.FullyConnected(init_noise=0.5))
        layers.append(L.AffineCoupling(hidden=hidden, parity=bool(i % 2)))
        layers.append(L.ActNorm(data_dependent=False))
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
