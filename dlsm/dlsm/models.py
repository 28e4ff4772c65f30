"""Networks: the paper's 2-D MLPs, an image score U-Net and a time-conditioned ResNet classifier.

Every model is called as model.apply(params, x, sigma) with sigma of shape (B,):
score models return a tensor shaped like x, classifiers return logits (B, C).
Normalisation is GroupNorm (per example), so a classifier's input gradient for one example
does not depend on the rest of the batch, which the DLSM loss relies on.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


# ----------------------------------------------------------------------------- 2-D toy
class ToyMLP(nn.Module):
    """Noise-conditioned MLP of the toy study, widths 2 -> 16nf -> 8nf -> 4nf -> out (nf = 16).

    arch="paper": the official network: an x branch (2->16nf->8nf->4nf) and a raw-sigma branch
    (1->4nf->2nf->nf), concatenated, one linear layer. It is additive in sigma, so it cannot grow
    like 1/sigma; the paper trains it with the sigma^4 weighting (w = 2), which ignores small sigma.
    arch="film" (default here): the same widths with an embedding of log sigma added in every layer,
    inputs scaled by 1/sqrt(sigma^2 + data_scale^2), and (score models) the output divided by sigma,
    as NCSN++ does; this trains under the usual sigma^2 weighting (w = 1) down to small sigma.
    """

    nf: int = 16
    out_dim: int = 2
    arch: str = "film"
    data_scale: float = 15.0
    divide_by_sigma: bool = True

    @nn.compact
    def __call__(self, x, sigma):
        if self.arch == "paper":
            h = nn.relu(nn.Dense(self.nf * 16)(x))
            h = nn.relu(nn.Dense(self.nf * 8)(h))
            h = nn.Dense(self.nf * 4)(h)
            c = nn.relu(nn.Dense(self.nf * 4)(sigma[:, None]))
            c = nn.relu(nn.Dense(self.nf * 2)(c))
            c = nn.Dense(self.nf)(c)
            return nn.Dense(self.out_dim)(jnp.concatenate([h, c], -1))
        if self.arch != "film":
            raise ValueError(f"unknown toy arch {self.arch!r}; choose film or paper")
        emb = GaussianFourierProjection(self.nf * 4, scale=1.0)(sigma)
        h = x / jnp.sqrt(sigma**2 + self.data_scale**2)[:, None]
        for w in (self.nf * 16, self.nf * 8, self.nf * 4):
            h = nn.silu(nn.Dense(w)(h) + nn.Dense(w)(emb))
        out = nn.Dense(self.out_dim)(h)
        return out / sigma[:, None] if self.divide_by_sigma else out


def ToyScoreMLP(nf: int = 16, arch: str = "film") -> ToyMLP:
    return ToyMLP(nf=nf, out_dim=2, arch=arch, divide_by_sigma=True)


def ToyClassifierMLP(nf: int = 16, num_classes: int = 2, arch: str = "film") -> ToyMLP:
    return ToyMLP(nf=nf, out_dim=num_classes, arch=arch, divide_by_sigma=False)


# ----------------------------------------------------------------------------- image models
class GaussianFourierProjection(nn.Module):
    """Fourier features of log sigma (NCSN++ / the paper's ResNet-cond time embedding)."""

    dim: int = 64
    scale: float = 16.0

    @nn.compact
    def __call__(self, sigma):
        w = self.param("W", nn.initializers.normal(self.scale), (self.dim // 2,))
        w = jax.lax.stop_gradient(w)  # fixed random frequencies
        proj = jnp.log(sigma)[:, None] * w[None] * 2 * np.pi
        return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], -1)


def _groups(ch: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if ch % g == 0 and ch // g >= 2:
            return g
    return 1


class ResBlock(nn.Module):
    """BigGAN-style residual block with an additive time embedding (NCSN++); temb=None: no embedding."""

    out_ch: int
    stride: int = 1

    @nn.compact
    def __call__(self, x, temb=None):
        h = nn.silu(nn.GroupNorm(_groups(x.shape[-1]))(x))
        h = nn.Conv(self.out_ch, (3, 3), strides=self.stride)(h)
        if temb is not None:
            h = h + nn.Dense(self.out_ch)(nn.silu(temb))[:, None, None, :]
        h = nn.silu(nn.GroupNorm(_groups(self.out_ch))(h))
        h = nn.Conv(self.out_ch, (3, 3))(h)
        if x.shape[-1] != self.out_ch or self.stride != 1:
            x = nn.Conv(self.out_ch, (1, 1), strides=self.stride)(x)
        return (x + h) / np.sqrt(2.0)


class ScoreUNet(nn.Module):
    """A compact U-Net score model in the layout of NCSN++ (Fourier sigma embedding, residual
    blocks with additive embedding, skip connections, output divided by sigma), without NCSN++'s
    FIR resampling, progressive growing and attention. Input is scaled by 1/sqrt(1 + sigma^2)."""

    ch: int = 32
    ch_mult: Sequence[int] = (1, 2)
    num_res_blocks: int = 1

    @nn.compact
    def __call__(self, x, sigma):
        temb = GaussianFourierProjection(self.ch * 2)(sigma)
        temb = nn.Dense(self.ch * 4)(nn.silu(nn.Dense(self.ch * 4)(temb)))
        h = nn.Conv(self.ch, (3, 3))(x / jnp.sqrt(1.0 + sigma**2)[:, None, None, None])
        skips = [h]
        for i, m in enumerate(self.ch_mult):
            for _ in range(self.num_res_blocks):
                h = ResBlock(self.ch * m)(h, temb)
                skips.append(h)
            if i < len(self.ch_mult) - 1:
                h = nn.Conv(h.shape[-1], (3, 3), strides=2)(h)
                skips.append(h)
        h = ResBlock(h.shape[-1])(h, temb)
        for i, m in reversed(list(enumerate(self.ch_mult))):
            for _ in range(self.num_res_blocks + 1):
                h = ResBlock(self.ch * m)(jnp.concatenate([h, skips.pop()], -1), temb)
            if i > 0:
                b, hh, ww, c = h.shape
                h = jax.image.resize(h, (b, skips[-1].shape[1], skips[-1].shape[2], c), "nearest")
        h = nn.silu(nn.GroupNorm(_groups(h.shape[-1]))(h))
        h = nn.Conv(x.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)
        return h / sigma[:, None, None, None]  # scale_by_sigma (score_sde VE models)


class ResNetCond(nn.Module):
    """Time(sigma)-conditioned ResNet classifier, conditioned as the official resnet_cond
    (chen-hao-chao/dlsm, models/resnet_cond.py): a Gaussian Fourier embedding of log sigma
    (nf frequencies, scale 16) -> Dense(4nf) -> SiLU -> Dense(4nf), and after each stage
    h += Dense(C)(SiLU(temb)) broadcast over space; the stem is conv -> norm -> ReLU on the raw x~.
    stage_sizes (2,2,2,2) is ResNet18, (3,4,6,3) ResNet34; smaller tuples give the CPU variants.
    Departures: GroupNorm instead of BatchNorm (so one example's input gradient does not depend
    on the batch) and pre-activation blocks; stage widths nf * 2^i (official: 64 * 2^i, nf only
    sizes the embedding)."""

    num_classes: int = 10
    nf: int = 32
    stage_sizes: Sequence[int] = (2, 2, 2, 2)

    @nn.compact
    def __call__(self, x, sigma):
        temb = GaussianFourierProjection(self.nf * 2, scale=16.0)(sigma)
        temb = nn.Dense(self.nf * 4)(nn.silu(nn.Dense(self.nf * 4)(temb)))
        h = nn.relu(nn.GroupNorm(_groups(self.nf))(nn.Conv(self.nf, (3, 3))(x)))
        for i, n in enumerate(self.stage_sizes):
            for j in range(n):
                h = ResBlock(self.nf * 2**i, stride=2 if (i > 0 and j == 0) else 1)(h)
            h = h + nn.Dense(h.shape[-1])(nn.silu(temb))[:, None, None, :]  # stage-wise time conditioning
        h = nn.silu(nn.GroupNorm(_groups(h.shape[-1]))(h))
        return nn.Dense(self.num_classes)(jnp.mean(h, axis=(1, 2)))


# ----------------------------------------------------------------------------- evaluation nets
class PlainMLPClassifier(nn.Module):
    """Clean-data classifier for CAS on 2-D data (not noise-conditioned)."""

    num_classes: int = 2
    width: int = 128

    @nn.compact
    def __call__(self, x, features: bool = False):
        h = nn.relu(nn.Dense(self.width)(x))
        h = nn.relu(nn.Dense(self.width)(h))
        return h if features else nn.Dense(self.num_classes)(h)


class PlainCNNClassifier(nn.Module):
    """Clean-image classifier: used for CAS and, through its penultimate layer, as the feature
    network of the class-wise Frechet distance (a stand-in for Inception, not comparable to FID)."""

    num_classes: int = 10
    width: int = 32

    @nn.compact
    def __call__(self, x, features: bool = False):
        h = nn.relu(nn.Conv(self.width, (3, 3))(x))
        h = nn.relu(nn.Conv(self.width * 2, (3, 3), strides=2)(h))
        h = nn.relu(nn.Conv(self.width * 2, (3, 3), strides=2)(h))
        h = jnp.mean(h, axis=(1, 2))
        h = nn.relu(nn.Dense(self.width * 4)(h))
        return h if features else nn.Dense(self.num_classes)(h)


def build_score_model(kind: str, **kw) -> nn.Module:
    if kind == "toy_mlp":
        return ToyScoreMLP(nf=kw.get("nf", 16), arch=kw.get("arch", "film"))
    if kind == "unet":
        return ScoreUNet(ch=kw.get("ch", 32), ch_mult=tuple(kw.get("ch_mult", (1, 2))), num_res_blocks=kw.get("num_res_blocks", 1))
    raise ValueError(f"unknown score model {kind!r}; choose toy_mlp or unet")


def build_classifier(kind: str, num_classes: int, **kw) -> nn.Module:
    if kind == "toy_mlp":
        return ToyClassifierMLP(nf=kw.get("nf", 16), num_classes=num_classes, arch=kw.get("arch", "film"))
    if kind == "resnet_cond":
        return ResNetCond(num_classes=num_classes, nf=kw.get("nf", 32), stage_sizes=tuple(kw.get("stage_sizes", (2, 2, 2, 2))))
    raise ValueError(f"unknown classifier {kind!r}; choose toy_mlp or resnet_cond")
