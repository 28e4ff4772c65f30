"""Exact scores of a Gaussian mixture perturbed by the VE kernel (the oracle of the 2-D study).

A data set {x_i} with labels {y_i} is a mixture of Gaussians with zero width. Perturbing a
mixture sum_k pi_k N(mu_k, s_k^2 I) by N(0, sigma^2 I) gives sum_k pi_k N(mu_k, (s_k^2 + sigma^2) I),
so every quantity in the paper's analysis is available in closed form:

  prior score      grad log p_sigma(x~)        = sum_k r_k(x~) (mu_k - x~) / v_k        (Bayes, Sec. 3)
  posterior score  grad log p_sigma(x~ | y)    = same sum over the components of class y
  likelihood score grad log p_sigma(y | x~)    = posterior score - prior score           (Sec. 3, Bayes' theorem)

with responsibilities r_k = softmax_k(log pi_k + log N(x~; mu_k, v_k I)) and v_k = s_k^2 + sigma^2.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    means: np.ndarray  # (K, d)
    stds: np.ndarray  # (K,) isotropic component widths (0 for an empirical data set)
    log_weights: np.ndarray  # (K,) log pi_k, normalised
    labels: np.ndarray  # (K,) class of each component

    @staticmethod
    def from_data(x, y) -> "GaussianMixture":
        """The empirical distribution of (x, y): one zero-width component per point."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.int32)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(f"from_data wants x (N, d) and y (N,), got {x.shape} and {y.shape}")
        n = x.shape[0]
        return GaussianMixture(x, np.zeros(n, np.float32), np.full(n, -np.log(n), np.float32), y)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def class_log_prior(self):
        """log p(y) = logsumexp of the weights of the class's components."""
        lw = np.asarray(self.log_weights, np.float64)
        return np.array([np.logaddexp.reduce(lw[self.labels == c]) for c in range(self.num_classes)])

    def _component_logits(self, x, sigma, mask=None):
        v = jnp.asarray(self.stds) ** 2 + sigma**2  # (K,)
        d = x.shape[-1]
        sq = jnp.sum((x[:, None, :] - jnp.asarray(self.means)[None]) ** 2, -1)  # (B, K)
        logits = jnp.asarray(self.log_weights)[None] - 0.5 * sq / v[None] - 0.5 * d * jnp.log(2 * jnp.pi * v)[None]
        if mask is not None:
            logits = jnp.where(mask[None], logits, -jnp.inf)
        return logits, v

    def log_prob(self, x, sigma, y=None):
        """log p_sigma(x~) or, with a class y (int), log p_sigma(x~ | y)."""
        mask = None if y is None else jnp.asarray(self.labels) == y
        logits, _ = self._component_logits(x, sigma, mask)
        out = jax.scipy.special.logsumexp(logits, axis=-1)
        if y is not None:
            out = out - self.class_log_prior()[y]
        return out

    def score(self, x, sigma, y=None):
        """Closed-form grad_x~ log p_sigma(x~ [| y]) = sum_k r_k (mu_k - x~) / v_k."""
        mask = None if y is None else jnp.asarray(self.labels) == y
        logits, v = self._component_logits(x, sigma, mask)
        r = jax.nn.softmax(logits, axis=-1)  # responsibilities (B, K)
        return (r / v[None]) @ jnp.asarray(self.means) - x * jnp.sum(r / v[None], -1, keepdims=True)

    def likelihood_score(self, x, sigma, y):
        """grad_x~ log p_sigma(y | x~) = grad log p(x~|y) - grad log p(x~) (Bayes' theorem)."""
        return self.score(x, sigma, y) - self.score(x, sigma)

    def log_posterior_class(self, x, sigma):
        """log p_sigma(y | x~) for every class, (B, C): the oracle classifier's log-softmax."""
        lp = jnp.stack([self.log_prob(x, sigma, c) + self.class_log_prior()[c] for c in range(self.num_classes)], -1)
        return lp - jax.scipy.special.logsumexp(lp, -1, keepdims=True)


def batched(fn, x, batch: int = 512):
    """Apply fn to x in fixed-size chunks (padded, so a jitted fn compiles once); the empirical
    moons have 10^4 components, so a (B, K) block is the memory bound."""
    outs = []
    for i in range(0, len(x), batch):
        chunk = np.asarray(x[i : i + batch])
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, 0)], 0)
        outs.append(np.asarray(fn(jnp.asarray(chunk)))[:n])
    return np.concatenate(outs, 0) if outs else np.zeros((0,) + np.shape(x)[1:], np.float32)
