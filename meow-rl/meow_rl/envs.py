"""Environments. Every environment here takes actions in [-1, 1]^A (the policies' tanh box).

* JaxEnv: pure-function environments (reset/step) that run inside jit/scan/vmap:
  - `pendulum`: Gymnasium's Pendulum-v1 dynamics and reward, re-written in JAX (tested against it);
  - `multigoal`: the 2-D multi-goal point mass of Haarnoja et al. (2017), MEow's toy experiment;
  - `brax_env`: any Brax environment (optional extra `[full]`), the vectorised GPU path.
* `make_gym_env`: a Gymnasium environment (MuJoCo v5 tasks) with its actions rescaled to [-1, 1].
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class JaxEnv(NamedTuple):
    name: str
    obs_dim: int
    act_dim: int
    max_steps: int
    reset: Callable[[jax.Array], tuple]  # key -> (state, obs)
    step: Callable[[Any, jax.Array], tuple]  # (state, action) -> (state, obs, reward, terminated)


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)  # one JaxEnv per configuration (as make_meow: keys of compiled programs)
def pendulum() -> JaxEnv:
    """Gymnasium Pendulum-v1 (g = 10, max torque 2, max speed 8, dt 0.05, 200 steps)."""
    g, m, l, dt, max_speed, max_torque = 10.0, 1.0, 1.0, 0.05, 8.0, 2.0

    def obs_of(th, thdot):
        return jnp.stack([jnp.cos(th), jnp.sin(th), thdot])

    def reset(key):
        high = jnp.array([jnp.pi, 1.0])
        th, thdot = jax.random.uniform(key, (2,), minval=-high, maxval=high)
        state = {"th": th, "thdot": thdot}
        return state, obs_of(th, thdot)

    def step(state, action):
        u = jnp.clip(max_torque * action[0], -max_torque, max_torque)
        th, thdot = state["th"], state["thdot"]
        th_norm = ((th + jnp.pi) % (2 * jnp.pi)) - jnp.pi
        cost = th_norm**2 + 0.1 * thdot**2 + 0.001 * u**2
        newthdot = thdot + (3 * g / (2 * l) * jnp.sin(th) + 3.0 / (m * l**2) * u) * dt
        newthdot = jnp.clip(newthdot, -max_speed, max_speed)
        newth = th + newthdot * dt
        return {"th": newth, "thdot": newthdot}, obs_of(newth, newthdot), -cost, jnp.array(False)

    return JaxEnv("Pendulum-v1", 3, 1, 200, reset, step)


# ---------------------------------------------------------------------------------------------
MULTIGOAL_GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]], np.float32)


@lru_cache(maxsize=None)
def multigoal(action_cost: float = 30.0, distance_cost: float = 1.0, goal_reward: float = 10.0,
              goal_radius: float = 1.0, init_sigma: float = 0.1, max_steps: int = 1000) -> JaxEnv:
    """2-D point mass of softlearning's MultiGoal (the official MEow toy copies it):
    s' = clip(s + clip(a, -1, 1), -7, 7), four goals at distance 5 from the start (0, 0),

        r = -action_cost ||a||^2 - distance_cost min_g ||s' - g||^2 + goal_reward [min_g ||s' - g|| < radius],

    the episode terminates at a goal and is truncated after max_steps. The optimal max-ent policy
    at the origin is four-modal.
    """
    goals = jnp.asarray(MULTIGOAL_GOALS)

    def reset(key):
        pos = jnp.clip(init_sigma * jax.random.normal(key, (2,)), -7.0, 7.0)
        return {"pos": pos}, pos

    def step(state, action):
        action = jnp.clip(action, -1.0, 1.0)
        pos = jnp.clip(state["pos"] + action, -7.0, 7.0)
        sq_dist = jnp.min(jnp.sum((pos[None, :] - goals) ** 2, axis=-1))
        reached = jnp.sqrt(sq_dist) < goal_radius
        r = -action_cost * jnp.sum(action**2) - distance_cost * sq_dist + goal_reward * reached
        return {"pos": pos}, pos, r, reached

    return JaxEnv("MultiGoal", 2, 2, max_steps, reset, step)


# ---------------------------------------------------------------------------------------------
def require_brax():
    """brax.envs, or an ImportError that says how to install the optional extra."""
    try:
        from brax import envs as brax_envs  # optional dependency
    except ImportError as e:
        raise ImportError("backend 'brax' needs the optional package brax: make setup-full (pip install -e '.[full]') "
                          "(on a GPU also make setup JAX_SPEC='jax[cuda12]')") from e
    return brax_envs


def brax_env(name: str, backend: str = "mjx", max_steps: int = 1000) -> JaxEnv:
    """A Brax environment as a JaxEnv (needs `pip install -e '.[full]'`). Brax's State carries
    obs, reward and a float `done`; episodes are cut at `max_steps` by the trainer, not by Brax."""
    brax_envs = require_brax()
    env = brax_envs.get_environment(name, backend=backend)

    def reset(key):
        st = env.reset(key)
        return st, st.obs

    def step(st, action):
        st = env.step(st, action)
        return st, st.obs, st.reward, st.done > 0.5

    return JaxEnv(f"brax-{name}", env.observation_size, env.action_size, max_steps, reset, step)


JAX_ENVS = {"Pendulum-v1": pendulum, "MultiGoal": multigoal}


def make_jax_env(env_id: str, backend: str = "jax", brax_pipeline: str = "mjx", max_steps: int = 1000) -> JaxEnv:
    if backend == "brax":
        return brax_env(env_id, brax_pipeline, max_steps)
    if env_id not in JAX_ENVS:
        raise ValueError(f"no JAX version of {env_id!r}; JAX envs: {sorted(JAX_ENVS)} (use --backend gym or brax)")
    return JAX_ENVS[env_id]()


def make_gym_env(env_id: str, seed: int | None = None):
    """Gymnasium env with actions rescaled to [-1, 1] (as in the official MEow/CleanRL scripts)."""
    import gymnasium as gym

    env = gym.make(env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{env_id} has a {type(env.action_space).__name__} action space; MEow needs a Box")
    env = gym.wrappers.RescaleAction(env, min_action=-1.0, max_action=1.0)
    if seed is not None:
        env.action_space.seed(seed)
    return env
