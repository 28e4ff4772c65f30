"""Training objectives: DSM for the score model; CE, DLSM and DLSM + CE for the classifier.

Notation (paper, Sec. 3-4): x ~ p_data, x~ = x + sigma z, s_phi(x~, sigma) the score model,
f_theta(x~, sigma) the noise-conditioned classifier's logits, and
  g_theta(x~, y, sigma) = grad_x~ log softmax(f_theta(x~, sigma))_y        (likelihood score estimate).

  DSM   (Vincent 2011; paper Sec. 3):   1/2 lambda(sigma) || s_phi(x~) - (x - x~)/sigma^2 ||^2
  DLSM  (paper Sec. 4, Theorem 1):      1/2 lambda(sigma) || g_theta(x~, y) + s_phi(x~) - (x - x~)/sigma^2 ||^2
  Total (paper Sec. 4.2):               L_DLSM + coef * sigma^(-2 w_ce) CE(f_theta(x~), y)

Theorem 1: with the score model fixed, L_DLSM equals the explicit likelihood score-matching loss
E || g_theta + s_phi - grad log p_sigma(x~|y) ||^2 up to a constant, so its minimiser makes
g_theta + s_phi the true posterior score (and, for an exact s_phi, g_theta the true likelihood score).
The weights are lambda(sigma) = sigma^(2 w): w = 1 is the usual VE weighting, the toy uses w = 2,
the official CIFAR classifiers w = 0 (configs/default_cifar_configs.py of chen-hao-chao/dlsm).

Reduction: the official code (losses.py of chen-hao-chao/dlsm and dlsm-toy) takes torch.mean of the
squared DLSM residual over the batch AND the data dimensions, so `coef` weighs CE against a
per-dimension DLSM loss; reduce_mean=True does the same. reduce_mean=False sums over the data
dimensions (a D-times larger DLSM term, i.e. coef / D in the official convention).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

LOSS_TYPES = ("ce", "dlsm", "total")


def _bcast(v, x):
    return v.reshape((-1,) + (1,) * (x.ndim - 1))


def _sum_data_axes(a):
    return jnp.sum(a.reshape(a.shape[0], -1), axis=-1)


def _reduce_data_axes(a, reduce_mean: bool):
    """Per example: mean over the data dimensions (official DLSM code) or their sum."""
    a = a.reshape(a.shape[0], -1)
    return jnp.mean(a, axis=-1) if reduce_mean else jnp.sum(a, axis=-1)


def sample_sigmas(key, batch: int, sde):
    """sigma = sigma(t), t ~ U(0, 1): log-uniform between sigma_min and sigma_max."""
    return sde.sigma(jax.random.uniform(key, (batch,)))


def dsm_loss(score_fn, x, key, sde, weighting: float = 1.0):
    """Denoising score matching for the VE SDE, weighted by sigma^(2 w)."""
    k1, k2 = jax.random.split(key)
    sigma = sample_sigmas(k1, x.shape[0], sde)
    z = jax.random.normal(k2, x.shape)
    x_t = x + _bcast(sigma, x) * z
    s = score_fn(x_t, sigma)
    # || sigma^w (s - (x - x~)/sigma^2) ||^2 = || sigma^w s + sigma^(w-1) z ||^2
    res = _bcast(sigma**weighting, x) * s + _bcast(sigma ** (weighting - 1.0), x) * z
    return 0.5 * jnp.mean(_sum_data_axes(res**2))


def likelihood_score(logits_fn, x_t, sigma, y):
    """g = grad_x~ log softmax(f(x~, sigma))_y, per example (examples are independent)."""

    def log_p_y(xx):
        logp = jax.nn.log_softmax(logits_fn(xx, sigma), axis=-1)
        return jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=-1))

    return jax.grad(log_p_y)(x_t)


def weighted_ce(logits, y, sigma, weighting_ce: float = 0.0):
    """The CE term: mean over the batch of -log softmax(logits)_y * sigma^(-2 weighting_ce)."""
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), y[:, None], -1)[:, 0]
    return jnp.mean(ce * sigma ** (-2.0 * weighting_ce))


def classifier_loss(logits_fn, score_fn, x, y, key, sde, loss_type: str = "total",
                    weighting_dlsm: float = 1.0, weighting_ce: float = 0.0, coef: float = 1.0,
                    reduce_mean: bool = True):
    """CE ("base"), DLSM only, or DLSM + coef * CE ("total", the paper's objective).

    score_fn is the frozen pre-trained score model; its output is wrapped in stop_gradient.
    Returns (loss, aux) with aux = dict of the two terms and the training accuracy.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown classifier loss {loss_type!r}; choose one of {', '.join(LOSS_TYPES)}")
    k1, k2 = jax.random.split(key)
    sigma = sample_sigmas(k1, x.shape[0], sde)
    z = jax.random.normal(k2, x.shape)
    x_t = x + _bcast(sigma, x) * z
    logits = logits_fn(x_t, sigma)
    ce_term = weighted_ce(logits, y, sigma, weighting_ce)
    acc = jnp.mean(jnp.argmax(logits, -1) == y)
    if loss_type == "ce":
        return ce_term, dict(ce=ce_term, dlsm=jnp.zeros(()), acc=acc)
    s = jax.lax.stop_gradient(score_fn(x_t, sigma))
    g = likelihood_score(logits_fn, x_t, sigma, y)
    # DLSM (Theorem 1): || sigma^w (g + s) + sigma^(w-1) z ||^2, since (x - x~)/sigma^2 = -z/sigma
    res = _bcast(sigma**weighting_dlsm, x) * (g + s) + _bcast(sigma ** (weighting_dlsm - 1.0), x) * z
    dlsm = 0.5 * jnp.mean(_reduce_data_axes(res**2, reduce_mean))
    if loss_type == "dlsm":
        return dlsm, dict(ce=ce_term, dlsm=dlsm, acc=acc)
    return dlsm + coef * ce_term, dict(ce=ce_term, dlsm=dlsm, acc=acc)  # total loss (Sec. 4.2)


def dlsm_loss_fixed(logits_fn, score_fn, x, y, sigma, z, weighting_dlsm: float = 1.0,
                    reduce_mean: bool = True, scale: float = 1.0):
    """L_DLSM on fixed (sigma, z) samples, with the guidance scale applied to g (scale 0: the
    score model alone, i.e. its DSM loss). The oracle-minimiser test perturbs it; on held-out
    images it measures the posterior-score error up to a classifier-independent constant."""
    x_t = x + _bcast(sigma, x) * z
    s = score_fn(x_t, sigma)
    g = scale * likelihood_score(logits_fn, x_t, sigma, y) if scale != 0.0 else jnp.zeros_like(x)
    res = _bcast(sigma**weighting_dlsm, x) * (g + s) + _bcast(sigma ** (weighting_dlsm - 1.0), x) * z
    return 0.5 * jnp.mean(_reduce_data_axes(res**2, reduce_mean))
