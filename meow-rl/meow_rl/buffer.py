"""Replay buffer as a pytree of fixed-size arrays: insert and sample are pure and jit-compatible."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def buffer_init(capacity: int, obs_dim: int, act_dim: int):
    z = lambda *shape: jnp.zeros((capacity,) + shape, jnp.float32)  # noqa: E731
    return {"obs": z(obs_dim), "action": z(act_dim), "reward": z(), "next_obs": z(obs_dim), "done": z(),
            "ptr": jnp.zeros((), jnp.int32), "size": jnp.zeros((), jnp.int32)}


def buffer_insert(buf, transitions):
    """Insert a batch of N transitions (leading axis N) at the ring pointer."""
    n = transitions["obs"].shape[0]
    cap = buf["obs"].shape[0]
    idx = (buf["ptr"] + jnp.arange(n)) % cap
    new = {k: buf[k].at[idx].set(transitions[k].astype(jnp.float32)) for k in ("obs", "action", "reward", "next_obs", "done")}
    new["ptr"] = (buf["ptr"] + n) % cap
    new["size"] = jnp.minimum(buf["size"] + n, cap)
    return new


def buffer_sample(buf, key, batch_size: int):
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buf["size"], 1))
    return {k: buf[k][idx] for k in ("obs", "action", "reward", "next_obs", "done")}
