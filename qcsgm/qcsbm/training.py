"""Training state, the jit-compiled train step (with optional data parallelism over a device mesh),
EMA, and checkpoints. Pure functions; I/O stays in train.py."""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def _global_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(tree)))


class TrainState(NamedTuple):
    step: Any
    params: Any
    ema_params: Any
    opt_state: Any


def make_optimizer(lr, grad_clip=1.0, warmup=0):
    sched = optax.linear_schedule(0.0, lr, warmup) if warmup > 0 else lr
    return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adam(sched))


def init_state(params, optimizer):
    return TrainState(jnp.zeros((), jnp.int32), params, params, optimizer.init(params))


def make_mesh(n_devices: int = 0):
    """A 1-D 'data' mesh over the first n_devices devices (0 = all). On CPU, try
    XLA_FLAGS=--xla_force_host_platform_device_count=2 to exercise the multi-device path."""
    devs = jax.devices()
    n = len(devs) if n_devices <= 0 else n_devices
    if n > len(devs):
        raise ValueError(f"asked for {n} devices, only {len(devs)} available ({devs[0].platform})")
    return Mesh(np.array(devs[:n]), ("data",))


def make_train_step(loss_fn, optimizer, ema_decay=0.0, mesh: Mesh | None = None):
    """train_step(state, x, key) -> (state, aux). With a mesh the batch is sharded over 'data'
    and the state replicated; XLA inserts the gradient all-reduce."""

    def train_step(state, x, key):
        key = jax.random.fold_in(key, state.step)
        (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, state.ema_params, params)
        aux = dict(aux, grad_norm=_global_norm(grads))
        return TrainState(state.step + 1, params, ema, opt_state), aux

    if mesh is None:
        return jax.jit(train_step)
    rep, dat = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return jax.jit(train_step, in_shardings=(rep, dat, rep), out_shardings=(rep, rep))


def shard_batch(x, mesh: Mesh | None):
    if mesh is None:
        return jnp.asarray(x)
    if x.shape[0] % mesh.size:
        raise ValueError(f"batch size {x.shape[0]} is not divisible by the {mesh.size} devices of the mesh")
    return jax.device_put(x, NamedSharding(mesh, P("data")))


def replicate(tree, mesh: Mesh | None):
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, P()))


def save_checkpoint(path: str, state: TrainState):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(flax.serialization.to_bytes(jax.device_get(state)))
    os.replace(tmp, path)


def load_checkpoint(path: str, template: TrainState) -> TrainState:
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        return flax.serialization.from_bytes(jax.device_get(template), f.read())
