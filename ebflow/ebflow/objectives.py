"""The five training objectives compared in the paper, all per data dimension.

Score-matching objectives (ssm, dsm, fdssm) only touch the energy E(x) of ``Flow.energy``:
the linear layers' log|det W| never appear, so a step costs O(D^2 L). ``ml`` needs them
(O(D^3 L)); ``sml`` needs exact samples from the flow, i.e. the inverse (also O(D^3)).

Every objective has the signature ``loss(flow, params, x, key, cfg) -> scalar`` where ``cfg``
is an ``ObjectiveConfig``.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

OBJECTIVES = ("ml", "sml", "ssm", "dsm", "fdssm")


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    sigma: float = 1.0  # DSM noise std (1.0 for MNIST-FC, 0.1 elsewhere)
    eps: float = 1.0  # FDSSM radius (same values as sigma in the official configs)
    slices: int = 1  # SSM projections per sample
    low_energy: float = 0.0  # lambda of the low-energy regulariser (1e-3 CIFAR/CelebA/STL, 0 MNIST)


def _flat(x):
    return x.reshape(x.shape[0], -1)


def maximum_likelihood(flow, params, x, key, cfg):
    """L_ML = E_x[-log p(x)] = E_x[E(x)] - sum_{S_l} log|det W|  (paper Eq. (2) with Eq. (7))."""
    return jnp.mean(flow.energy(params, x) - flow.linear_logdet(params)) / flow.dim


def sampling_ml(flow, params, x, key, cfg):
    """SML: grad of E_data[E(x)] - E_model[E(x~)], x~ = g^{-1}(z) with no gradient (paper Eq. (4)).

    Its gradient equals the ML gradient (the -log Z term's gradient is -E_model[dE/dtheta]).
    """
    x_model = jax.lax.stop_gradient(flow.sample(params, key, x.shape[0]))
    return (jnp.mean(flow.energy(params, x)) - jnp.mean(flow.energy(params, x_model))) / flow.dim


def sliced_score_matching(flow, params, x, key, cfg):
    """L_SSM = E_{x,v}[ 1/2 ||s(x)||^2 + v^T (ds/dx) v ],  s = -dE/dx, v Rademacher (paper Eq. (5)).

    v^T (ds/dx) v is one forward-over-reverse Hessian-vector product: O(D^2 L) per sample.
    """
    def score_fn(xx):
        return -jax.grad(lambda y: flow.energy(params, y).sum())(xx)

    total = 0.0
    for k in jax.random.split(key, cfg.slices):
        v = jax.random.rademacher(k, x.shape, dtype=x.dtype)
        s, jv = jax.jvp(score_fn, (x,), (v,))
        total = total + jnp.mean(0.5 * jnp.sum(_flat(s) ** 2, 1) + jnp.sum(_flat(v * jv), 1))
    return total / cfg.slices / flow.dim


def denoising_score_matching(flow, params, x, key, cfg):
    """L_DSM = E_{x,n}[ 1/2 || s(x + sigma n) + n / sigma ||^2 ],  n ~ N(0, I)  (paper Eq. (6))."""
    n = jax.random.normal(key, x.shape, x.dtype)
    s = flow.score(params, x + cfg.sigma * n)
    return jnp.mean(0.5 * jnp.sum(_flat(s + n / cfg.sigma) ** 2, 1)) / flow.dim


def finite_difference_ssm(flow, params, x, key, cfg):
    """FD-SSM with v uniform on the sphere of radius eps (paper Eq. (8), Pang et al. 2020):

        [ (E(x+v) - E(x-v))^2 / 8 + 2 E(x) - E(x+v) - E(x-v) ] / eps^2

    Only three energy evaluations, no second derivatives. E[v v^T] = eps^2 / D I, so the
    result is already per dimension.
    """
    u = jax.random.normal(key, x.shape, x.dtype)
    v = cfg.eps * u / jnp.linalg.norm(_flat(u), axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    e0 = flow.energy(params, x)
    ep = flow.energy(params, x + v)
    em = flow.energy(params, x - v)
    return jnp.mean((ep - em) ** 2 / 8.0 + 2.0 * e0 - ep - em) / cfg.eps**2


_LOSSES = {
    "ml": maximum_likelihood,
    "sml": sampling_ml,
    "ssm": sliced_score_matching,
    "dsm": denoising_score_matching,
    "fdssm": finite_difference_ssm,
}


def get_objective(name: str):
    if name not in _LOSSES:
        raise ValueError(f"unknown objective {name!r}; choose one of {OBJECTIVES}")
    return _LOSSES[name]


def total_loss(name: str, flow, params, x, key, cfg: ObjectiveConfig):
    """Objective plus the optional low-energy regulariser lambda * E_x[E(x)] / D (paper Sec. 4)."""
    loss = get_objective(name)(flow, params, x, key, cfg)
    if cfg.low_energy > 0.0:
        loss = loss + cfg.low_energy * jnp.mean(flow.energy(params, x)) / flow.dim
    return loss
