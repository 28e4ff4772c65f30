"""Ground truth for the MultiGoal demo: the soft-optimal (maximum-entropy) policy by soft value
iteration on a grid (Haarnoja et al., 2017, the fixed point MEow's single loss aims at):

    Q*(s, a) = r(s, a) + gamma (1 - d(s, a)) V*(s'),          s' = clip(s + a, -7, 7)
    V*(s)    = alpha log int_{[-1,1]^2} exp(Q*(s, a) / alpha) da
    pi*(a|s) = exp((Q*(s, a) - V*(s)) / alpha)

States on a regular grid over [-7, 7]^2 (V* between grid points by bilinear interpolation), actions
on a midpoint grid over [-1, 1]^2 (the integral is a Riemann sum). A goal ends the episode (d = 1);
the 1,000-step time limit is ignored (gamma^1000 ~ 0 at gamma 0.9).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .envs import MULTIGOAL_GOALS


class SoftOptimum(NamedTuple):
    states: np.ndarray  # (S,) grid coordinates of one state axis
    actions: np.ndarray  # (K,) grid coordinates of one action axis (midpoints)
    v: np.ndarray  # (S, S) V*(s), indexed [ix, iy]
    residual: float  # max |V_{n+1} - V_n| at the last iteration


def _interp(v, lo, h, p):
    """Bilinear interpolation of the grid values v (indexed [ix, iy]) at points p (..., 2)."""
    n = v.shape[0]
    u = jnp.clip((p - lo) / h, 0.0, n - 1 - 1e-6)
    i = jnp.floor(u).astype(jnp.int32)
    f = u - i
    i0, i1, fx, fy = i[..., 0], i[..., 1], f[..., 0], f[..., 1]
    return ((1 - fx) * (1 - fy) * v[i0, i1] + fx * (1 - fy) * v[i0 + 1, i1]
            + (1 - fx) * fy * v[i0, i1 + 1] + fx * fy * v[i0 + 1, i1 + 1])


def multigoal_q(v, s, a_grid, *, gamma, lo, h, action_cost=30.0, distance_cost=1.0, goal_reward=10.0, goal_radius=1.0):
    """Q(s, a) = r + gamma (1 - d) V(s') for states s (N, 2) and actions a_grid (M, 2): (N, M)."""
    goals = jnp.asarray(MULTIGOAL_GOALS)
    nxt = jnp.clip(s[:, None, :] + a_grid[None, :, :], -7.0, 7.0)
    sq = jnp.min(jnp.sum((nxt[..., None, :] - goals) ** 2, axis=-1), axis=-1)
    reached = jnp.sqrt(sq) < goal_radius
    r = -action_cost * jnp.sum(a_grid**2, -1)[None] - distance_cost * sq + goal_reward * reached
    return r + gamma * jnp.where(reached, 0.0, _interp(v, lo, h, nxt))


def soft_value_iteration(alpha: float, gamma: float, state_step: float = 0.25, n_actions: int = 41,
                         iters: int = 120) -> SoftOptimum:
    """V* of the MultiGoal toy (reward of envs.multigoal) by `iters` soft Bellman backups."""
    xs = np.arange(-7.0, 7.0 + 1e-9, state_step)
    ag = (np.arange(n_actions) + 0.5) / n_actions * 2.0 - 1.0
    S = jnp.asarray(np.stack(np.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    A = jnp.asarray(np.stack(np.meshgrid(ag, ag, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    log_da = float(np.log((2.0 / n_actions) ** 2))

    @jax.jit
    def backup(v):
        q = multigoal_q(v, S, A, gamma=gamma, lo=xs[0], h=state_step)
        return (alpha * (jax.scipy.special.logsumexp(q / alpha, axis=1) + log_da)).reshape(v.shape)

    v = jnp.zeros((len(xs), len(xs)), jnp.float32)
    for _ in range(iters - 1):
        v = backup(v)
    v_new = backup(v)
    return SoftOptimum(xs, ag, np.asarray(v_new), float(jnp.max(jnp.abs(v_new - v))))


def soft_optimal_log_pi(opt: SoftOptimum, alpha: float, gamma: float, s, a_grid) -> np.ndarray:
    """log pi*(a | s) = (Q*(s, a) - V*(s)) / alpha on an (M, 2) grid of actions, one state s (2,), as
    log-probabilities of the grid points (normalised over the grid: V*(s) is the log-sum-exp here)."""
    s = jnp.asarray(s, jnp.float32)[None]
    a_grid = jnp.asarray(a_grid, jnp.float32)
    q = multigoal_q(jnp.asarray(opt.v), s, a_grid, gamma=gamma, lo=opt.states[0], h=opt.states[1] - opt.states[0])[0]
    return np.asarray(q / alpha - jax.scipy.special.logsumexp(q / alpha))


def soft_optimal_value(opt: SoftOptimum, s) -> float:
    """V*(s) at one state s (2,), bilinear between the grid points (exact on them)."""
    return float(_interp(jnp.asarray(opt.v), opt.states[0], opt.states[1] - opt.states[0], jnp.asarray(s, jnp.float32)))
