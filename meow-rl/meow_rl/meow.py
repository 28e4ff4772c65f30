"""The MEow agent: one flow is actor and critic, trained with one soft Bellman loss.

    L(theta) = sum_k E[(Q_k(s,a) - y)^2],  y = r + gamma (1 - d) min_k V_k^target(s')   (Eq. 13, SCDQ)

Q_k and V_k come from the same flow (flow.py); V is exact, so there is no separate actor loss,
no value network and no Monte Carlo estimate of the soft value.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .flow import MEowFlow
from .networks import polyak


@dataclass(frozen=True)
class MEowHParams:
    alpha: float = 0.2
    gamma: float = 0.99
    tau: float = 0.005
    lr: float = 1e-3
    grad_clip: float = 30.0
    sigma_min: float = -5.0
    sigma_max: float = -0.3
    num_couplings: int = 4
    hidden: int = 64
    shift_hidden: int = 256
    dropout: float = 0.1
    init_scheme: Literal["flax", "official"] = "flax"
    """flax: orthogonal(sqrt 2) hidden layers, zero biases, zero output layer of the prior-scale/shift nets;
    official: the official PyTorch code's (orthogonal(1), PyTorch uniform biases, ALL weights of the
    prior-scale/shift nets zero, one Swish beta per unit) -- see networks.MLP"""


def make_flow(hp: MEowHParams, act_dim: int) -> MEowFlow:
    return MEowFlow(act_dim, hp.sigma_min, hp.sigma_max, hp.num_couplings, hp.hidden, hp.shift_hidden, hp.dropout, hp.init_scheme)


class Agent(NamedTuple):
    """Pure functions of one algorithm; `update` and `act` are jit-compatible."""

    name: str
    init: Callable[[jax.Array], Any]  # key -> state
    act: Callable[..., jax.Array]  # (state, obs, key, deterministic) -> action in [-1, 1]^A
    update: Callable[..., tuple]  # (state, batch, key) -> (state, metrics)


@lru_cache(maxsize=None)  # one Agent per (hp, dims): its pure functions are the keys of compiled programs (loop.py)
def make_meow(hp: MEowHParams, obs_dim: int, act_dim: int) -> Agent:
    flow = make_flow(hp, act_dim)
    tx = optax.chain(optax.clip_by_global_norm(hp.grad_clip), optax.adam(hp.lr))

    def init(key):
        params = flow.init(key, jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)))
        return {"params": params, "target": params, "opt": tx.init(params), "steps": jnp.zeros((), jnp.int32)}

    def act(state, obs, key, deterministic=False):
        eps = jax.random.normal(key, obs.shape[:-1] + (act_dim,))
        return flow.apply(state["params"], obs, eps, deterministic, method=MEowFlow.sample)

    def loss_fn(params, target, batch, key):
        # target: eval mode (no dropout), min over the two shifts (SCDQ)
        v1_t, v2_t = flow.apply(target, batch["next_obs"], method=MEowFlow.v_over_alpha)
        v_next = hp.alpha * jnp.minimum(v1_t, v2_t)
        y = jax.lax.stop_gradient(batch["reward"] + hp.gamma * (1.0 - batch["done"]) * v_next)
        q1, q2 = flow.apply(params, batch["obs"], batch["action"], False, method=MEowFlow.q_over_alpha,
                            rngs={"dropout": key})
        q1, q2 = hp.alpha * q1, hp.alpha * q2
        loss = 0.5 * (jnp.mean((q1 - y) ** 2) + jnp.mean((q2 - y) ** 2))
        return loss, {"loss": loss, "q": jnp.mean(q1), "target_v": jnp.mean(v_next)}

    def update(state, batch, key):
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state["params"], state["target"], batch, key)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        target = polyak(state["target"], params, hp.tau)
        metrics["grad_norm"] = optax.global_norm(grads)
        return {"params": params, "target": target, "opt": opt, "steps": state["steps"] + 1}, metrics

    return Agent("meow", init, act, update)


def bellman_error(hp: MEowHParams, obs_dim: int, act_dim: int, state, batch):
    """Soft Bellman error of the online flow (eval mode) against its target: used by tests."""
    flow = make_flow(hp, act_dim)
    v1_t, v2_t = flow.apply(state["target"], batch["next_obs"], method=MEowFlow.v_over_alpha)
    y = batch["reward"] + hp.gamma * (1.0 - batch["done"]) * hp.alpha * jnp.minimum(v1_t, v2_t)
    q1, q2 = flow.apply(state["params"], batch["obs"], batch["action"], method=MEowFlow.q_over_alpha)
    return 0.5 * (jnp.mean((hp.alpha * q1 - y) ** 2) + jnp.mean((hp.alpha * q2 - y) ** 2))
