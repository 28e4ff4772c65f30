"""The paper's 2-D toy experiment (Sec. 5.1, Table 1): train the toy flow, score it against the exact density.

Data: clean toy samples smoothed by N(0, s^2 I), s = 0.375, drawn fresh every step. For DSM the
smoothing noise *is* the denoising noise (as in the official toy code): the clean batch goes in and
sigma = s, so DSM's target is exactly the smoothed density p_s that the other objectives fit.
Evaluation: KL(p_s || q) and Fisher divergence on fresh samples of p_s, with log p_s and its score
from ``toy_density`` (exact, no KDE oracle) and the model's log q / score in float64.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from . import data as D
from . import toy_density
from .divergence import fisher_divergence, kl_divergence


def toy_train_batch(name: str, objective: str, n: int, rng: np.random.Generator, smoothing: float) -> np.ndarray:
    """The batch one step trains on: smoothed samples, or clean ones for DSM (which adds the noise itself)."""
    clean = D.sample_toy(name, n, rng)
    return clean if objective == "dsm" else clean + smoothing * rng.normal(size=clean.shape)


def toy_objective_config(objective: str, ocfg, smoothing: float):
    """DSM on the toys denoises the data smoothing itself: sigma = s."""
    return dataclasses.replace(ocfg, sigma=smoothing) if objective == "dsm" else ocfg


@dataclasses.dataclass(frozen=True)
class ToyEvalSet:
    """Fixed evaluation samples of p_s with the exact log p_s and score there."""

    name: str
    x: np.ndarray
    log_p: np.ndarray
    score_p: np.ndarray


def make_eval_set(name: str, n: int = 10000, seed: int = 2024, smoothing: float = 0.375) -> ToyEvalSet:
    x = D.toy_batch(name, n, np.random.default_rng(seed), smoothing)
    log_p, score_p = toy_density.oracle(name, x, smoothing)
    return ToyEvalSet(name, x, log_p, score_p)


def model_log_prob_and_score(flow, params, x: np.ndarray):
    """log q(x) and grad_x log q(x) of the flow, in float64."""
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), params)
        f = jax.jit(lambda pp, xx: (flow.log_prob(pp, xx), jax.grad(lambda y: flow.log_prob(pp, y).sum())(xx)))
        lq, sq = f(p64, jnp.asarray(x, jnp.float64))
        return np.asarray(lq), np.asarray(sq)


def toy_divergences(flow, params, ev: ToyEvalSet) -> dict:
    """KL(p_s || q) and Fisher divergence 1/2 E||grad log p_s - grad log q||^2, with standard errors."""
    log_q, score_q = model_log_prob_and_score(flow, params, ev.x)
    if not (np.all(np.isfinite(log_q)) and np.all(np.isfinite(score_q))):
        raise FloatingPointError(f"the toy flow's log-density or score is not finite on {ev.name} (diverged run?)")
    kl, kl_se = kl_divergence(ev.log_p, log_q)
    fd, fd_se = fisher_divergence(ev.score_p, score_q)
    return {"kl": kl, "kl_se": kl_se, "fisher": fd, "fisher_se": fd_se, "nll": float(-log_q.mean())}
