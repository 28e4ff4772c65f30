"""Score models: the paper's 2-D MLP (as a score or as an energy), a small NCSN++-style U-Net
for images, and the Section 6 one-layer autoencoder.

Every model is used through `ScoreModel.score(params, x, t)`:
- USBM / QCSBM: the network outputs the score directly (unconstrained, generally non-conservative);
- CSBM: the network outputs a scalar energy E and the score is s = -grad_x E, a gradient field,
  so its Jacobian (minus the Hessian of E) is symmetric by construction. On images the energy is the
  official code's (real_world/models/utils.py, `score_energy_fn`): E(x, t) = 1/2 ||U(x, t)||^2 / sigma
  with U the U-Net output (already scaled by 1/sigma), so s = -J_U^T U / sigma.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .sde import VESDE

MODELS = ("toy_mlp", "ncsnpp_small", "autoencoder")


class Swish(nn.Module):
    """x * sigmoid(beta x) with a learnable beta per feature (as in the official 2-D code)."""

    @nn.compact
    def __call__(self, x):
        beta = self.param("beta", nn.initializers.ones, (x.shape[-1],))
        return x * jax.nn.sigmoid(beta * x)


class ToyMLP(nn.Module):
    """The 2-D network of the paper: x -> 64 -> 128 -> 256 (swish), sigma -> 1 -> 1 -> 1, concat -> Dense(2).

    energy=False (USBM/QCSBM): s(x, t) = (x - out) / sigma.
    energy=True  (CSBM):       E(x, t) = ||x - lrelu(out)||^2 / (2 sigma), score = -grad_x E.
    """

    sde: VESDE
    energy: bool = False

    @nn.compact
    def __call__(self, x, t):
        sigma = self.sde.sigma(t)[:, None]
        h = Swish()(nn.Dense(64)(x))
        h = Swish()(nn.Dense(128)(h))
        h = nn.Dense(256)(h)
        c = Swish()(nn.Dense(1)(sigma))
        c = Swish()(nn.Dense(1)(c))
        c = nn.Dense(1)(c)
        out = nn.Dense(x.shape[-1])(Swish()(jnp.concatenate([h, c], -1)))
        if self.energy:
            out = nn.leaky_relu(out, 0.1)
            return jnp.sum((x - out) ** 2, -1) / (2 * sigma[:, 0])
        return (x - out) / sigma


class ToyAutoencoder(nn.Module):
    """Section 6: s(x) = R swish(W^T x + b) + c. J = R diag(swish'(.)) W^T is symmetric when R = W (tied)."""

    hidden: int = 32
    tied: bool = False

    @nn.compact
    def __call__(self, x, t):
        d = x.shape[-1]
        w = self.param("W", nn.initializers.lecun_normal(), (d, self.hidden))
        b = self.param("b", nn.initializers.zeros, (self.hidden,))
        c = self.param("c", nn.initializers.zeros, (d,))
        r = w if self.tied else self.param("R", nn.initializers.lecun_normal(), (d, self.hidden))
        return jax.nn.swish(x @ w + b) @ r.T + c


# ----------------------------------------------------------------------------- NCSN++-style U-Net


class GaussianFourierProjection(nn.Module):
    """Fixed random Fourier features of log sigma (NCSN++, Fourier scale 16)."""

    embedding_size: int = 64
    scale: float = 16.0

    @nn.compact
    def __call__(self, x):
        w = self.param("W", nn.initializers.normal(stddev=self.scale), (self.embedding_size,))
        w = jax.lax.stop_gradient(w)
        proj = x[:, None] * w[None, :] * 2 * np.pi
        return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], -1)


def _groups(ch):
    return min(32, max(1, ch // 4))


class ResnetBlock(nn.Module):
    """BigGAN-style residual block with a noise-embedding bias and skip rescaling by 1/sqrt(2)."""

    out_ch: int

    @nn.compact
    def __call__(self, x, temb):
        h = nn.swish(nn.GroupNorm(num_groups=_groups(x.shape[-1]))(x))
        h = nn.Conv(self.out_ch, (3, 3))(h)
        h = h + nn.Dense(self.out_ch)(nn.swish(temb))[:, None, None, :]
        h = nn.swish(nn.GroupNorm(num_groups=_groups(self.out_ch))(h))
        h = nn.Conv(self.out_ch, (3, 3), kernel_init=nn.initializers.zeros)(h)
        if x.shape[-1] != self.out_ch:
            x = nn.Conv(self.out_ch, (1, 1))(x)
        return (x + h) / np.sqrt(2.0)


class AttnBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        b, hh, ww, c = x.shape
        h = nn.GroupNorm(num_groups=_groups(c))(x).reshape(b, hh * ww, c)
        q, k, v = nn.Dense(c)(h), nn.Dense(c)(h), nn.Dense(c)(h)
        w = jax.nn.softmax(jnp.einsum("bic,bjc->bij", q, k) / np.sqrt(c), -1)
        h = nn.Dense(c, kernel_init=nn.initializers.zeros)(jnp.einsum("bij,bjc->bic", w, v))
        return (x + h.reshape(b, hh, ww, c)) / np.sqrt(2.0)


class NCSNppSmall(nn.Module):
    """A small NCSN++-style U-Net (Song et al. 2021): Fourier noise embedding, residual blocks,
    attention at the listed resolutions, skip connections, output U scaled by 1/sigma.
    The paper's setting is nf=128, ch_mult=(1,2,2,2), num_res_blocks=8 (deep), attn_resolutions=(16,).

    energy=False (USBM/QCSBM): s(x, t) = U(x, t).
    energy=True  (CSBM, as the official C-NCSN++): E(x, t) = 1/2 ||U(x, t)||^2 / sigma per sample, s = -grad_x E.
    GroupNorm and attention act within one sample, so each sample's energy depends on its own x only."""

    sde: VESDE
    nf: int = 32
    ch_mult: Sequence[int] = (1, 2)
    num_res_blocks: int = 1
    attn_resolutions: Sequence[int] = (4,)
    fourier_scale: float = 16.0
    energy: bool = False

    @nn.compact
    def __call__(self, x, t):
        sigma = self.sde.sigma(t)
        temb = GaussianFourierProjection(self.nf, self.fourier_scale)(jnp.log(sigma))
        temb = nn.Dense(self.nf * 4)(nn.swish(nn.Dense(self.nf * 4)(temb)))
        h = nn.Conv(self.nf, (3, 3))(2 * x - 1)  # data in [0, 1] -> [-1, 1] (centred input)
        hs = [h]
        for i, mult in enumerate(self.ch_mult):
            for _ in range(self.num_res_blocks):
                h = ResnetBlock(self.nf * mult)(h, temb)
                if h.shape[1] in self.attn_resolutions:
                    h = AttnBlock()(h)
                hs.append(h)
            if i != len(self.ch_mult) - 1:
                h = nn.Conv(h.shape[-1], (3, 3), strides=(2, 2))(h)
                hs.append(h)
        h = ResnetBlock(h.shape[-1])(h, temb)
        h = AttnBlock()(h)
        h = ResnetBlock(h.shape[-1])(h, temb)
        for i, mult in reversed(list(enumerate(self.ch_mult))):
            for _ in range(self.num_res_blocks + 1):
                h = ResnetBlock(self.nf * mult)(jnp.concatenate([h, hs.pop()], -1), temb)
                if h.shape[1] in self.attn_resolutions:
                    h = AttnBlock()(h)
            if i != 0:
                skip = hs[-1]
                h = jax.image.resize(h, (h.shape[0], skip.shape[1], skip.shape[2], h.shape[3]), "nearest")
                h = nn.Conv(h.shape[-1], (3, 3))(h)
        assert not hs, "U-Net skip stack not consumed"
        h = nn.swish(nn.GroupNorm(num_groups=_groups(h.shape[-1]))(h))
        h = nn.Conv(x.shape[-1], (3, 3))(h)
        u = h / sigma[:, None, None, None]
        if self.energy:
            return 0.5 * jnp.sum(u.reshape(u.shape[0], -1) ** 2, -1) / sigma  # E = 1/2 ||U||^2 / sigma
        return u


# ----------------------------------------------------------------------------- the common interface


@dataclass(frozen=True)
class ScoreModel:
    """A flax module and how its output becomes a score: kind 'score' (direct) or 'energy' (s = -grad E)."""

    module: nn.Module
    kind: str = "score"

    def __post_init__(self):
        if self.kind not in ("score", "energy"):
            raise ValueError(f"ScoreModel kind must be 'score' or 'energy', got {self.kind!r}")

    def init(self, key, x, t):
        return self.module.init(key, x, t)

    def score(self, params, x, t):
        if self.kind == "energy":
            # CSBM: s(x, t) = -grad_x E(x, t); each sample's energy depends on its own x only.
            return -jax.grad(lambda y: jnp.sum(self.module.apply(params, y, t)))(x)
        return self.module.apply(params, x, t)


def build_model(name: str, sde: VESDE, conservative: bool = False, **kwargs) -> ScoreModel:
    """name in MODELS; conservative=True gives the CSBM (energy) version where the model has one."""
    if name == "toy_mlp":
        return ScoreModel(ToyMLP(sde=sde, energy=conservative), "energy" if conservative else "score")
    if name == "autoencoder":
        return ScoreModel(ToyAutoencoder(tied=conservative, **kwargs), "score")
    if name == "ncsnpp_small":
        return ScoreModel(NCSNppSmall(sde=sde, energy=conservative, **kwargs), "energy" if conservative else "score")
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
