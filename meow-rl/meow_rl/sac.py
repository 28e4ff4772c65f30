"""Soft actor-critic baseline (Haarnoja et al., 2018), CleanRL's choices, same interface as MEow.

    critic:  sum_k E[(Q_k(s,a) - y)^2],  y = r + gamma (1-d) (min_k Q_k^target(s',a') - alpha log pi(a'|s'))
    actor:   E[alpha log pi(a|s) - min_k Q_k(s,a)],  a = tanh(mu + sigma * eps)  (reparameterised)
    alpha:   E[-log alpha * (log pi(a|s) + target_entropy)],  target_entropy = -A   (autotune)
Here V(s') is a one-sample Monte Carlo estimate -- the quantity MEow computes exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from .meow import Agent
from .networks import MLP, polyak, squash_log_det

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class SACHParams:
    alpha: float = 0.2
    autotune: bool = True
    gamma: float = 0.99
    tau: float = 0.005
    policy_lr: float = 3e-4
    q_lr: float = 1e-3
    hidden: int = 256


class Actor(nn.Module):
    action_dim: int
    hidden: int = 256

    @nn.compact
    def __call__(self, s):
        h = MLP((self.hidden, self.hidden, 2 * self.action_dim), activation="relu")(s)
        mean, log_std = jnp.split(h, 2, axis=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


def tanh_gaussian_sample(mean, log_std, eps):
    """a = tanh(mean + std * eps) and log pi(a|s) with the tanh correction."""
    u = mean + jnp.exp(log_std) * eps
    a = jnp.tanh(u)
    log_normal = jnp.sum(-0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)
    return a, log_normal - jnp.sum(jnp.log(1.0 - a**2 + 1e-6), axis=-1)


def tanh_gaussian_log_prob(mean, log_std, a):
    a = jnp.clip(a, -1 + 1e-5, 1 - 1e-5)
    u = jnp.arctanh(a)
    eps = (u - mean) / jnp.exp(log_std)
    log_normal = jnp.sum(-0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)
    return log_normal - squash_log_det(a)


class DoubleQ(nn.Module):
    hidden: int = 256

    @nn.compact
    def __call__(self, s, a):
        x = jnp.concatenate([s, a], axis=-1)
        q1 = MLP((self.hidden, self.hidden, 1), activation="relu")(x)[..., 0]
        q2 = MLP((self.hidden, self.hidden, 1), activation="relu")(x)[..., 0]
        return q1, q2


@lru_cache(maxsize=None)  # one Agent per (hp, dims), as make_meow
def make_sac(hp: SACHParams, obs_dim: int, act_dim: int) -> Agent:
    actor, critic = Actor(act_dim, hp.hidden), DoubleQ(hp.hidden)
    pi_tx, q_tx, a_tx = optax.adam(hp.policy_lr), optax.adam(hp.q_lr), optax.adam(hp.q_lr)
    target_entropy = -float(act_dim)

    def init(key):
        k1, k2 = jax.random.split(key)
        pi = actor.init(k1, jnp.zeros((1, obs_dim)))
        q = critic.init(k2, jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)))
        log_alpha = jnp.asarray(math.log(hp.alpha), jnp.float32)
        return {"pi": pi, "q": q, "q_target": q, "log_alpha": log_alpha, "pi_opt": pi_tx.init(pi),
                "q_opt": q_tx.init(q), "a_opt": a_tx.init(log_alpha), "steps": jnp.zeros((), jnp.int32)}

    def act(state, obs, key, deterministic=False):
        mean, log_std = actor.apply(state["pi"], obs)
        eps = jax.random.normal(key, mean.shape)
        return jnp.where(deterministic, jnp.tanh(mean), tanh_gaussian_sample(mean, log_std, eps)[0])

    def update(state, batch, key):
        k1, k2 = jax.random.split(key)
        alpha = jnp.exp(state["log_alpha"])
        # critic
        mean, log_std = actor.apply(state["pi"], batch["next_obs"])
        a2, logp2 = tanh_gaussian_sample(mean, log_std, jax.random.normal(k1, mean.shape))
        qt1, qt2 = critic.apply(state["q_target"], batch["next_obs"], a2)
        v_next = jnp.minimum(qt1, qt2) - alpha * logp2  # one-sample soft value estimate
        y = jax.lax.stop_gradient(batch["reward"] + hp.gamma * (1.0 - batch["done"]) * v_next)

        def q_loss(qp):
            q1, q2 = critic.apply(qp, batch["obs"], batch["action"])
            return 0.5 * (jnp.mean((q1 - y) ** 2) + jnp.mean((q2 - y) ** 2)), jnp.mean(q1)

        (ql, qmean), qg = jax.value_and_grad(q_loss, has_aux=True)(state["q"])
        qu, q_opt = q_tx.update(qg, state["q_opt"], state["q"])
        q = optax.apply_updates(state["q"], qu)

        # actor
        eps = jax.random.normal(k2, (batch["obs"].shape[0], act_dim))

        def pi_loss(pp):
            m, ls = actor.apply(pp, batch["obs"])
            a, logp = tanh_gaussian_sample(m, ls, eps)
            q1, q2 = critic.apply(q, batch["obs"], a)
            return jnp.mean(alpha * logp - jnp.minimum(q1, q2)), logp

        (pl, logp), pg = jax.value_and_grad(pi_loss, has_aux=True)(state["pi"])
        pu, pi_opt = pi_tx.update(pg, state["pi_opt"], state["pi"])
        pi = optax.apply_updates(state["pi"], pu)

        # temperature
        log_alpha, a_opt = state["log_alpha"], state["a_opt"]
        if hp.autotune:
            ag = -jnp.mean(logp + target_entropy)  # d/d log_alpha of -log_alpha * (logp + H)
            au, a_opt = a_tx.update(ag, a_opt, log_alpha)
            log_alpha = optax.apply_updates(log_alpha, au)

        new = {"pi": pi, "q": q, "q_target": polyak(state["q_target"], q, hp.tau), "log_alpha": log_alpha,
               "pi_opt": pi_opt, "q_opt": q_opt, "a_opt": a_opt, "steps": state["steps"] + 1}
        return new, {"loss": ql, "q": qmean, "pi_loss": pl, "alpha": alpha}

    return Agent("sac", init, act, update)
