"""Pure, jit-compiled train steps, the data-parallel mesh, and checkpoints.

The steps take everything they read as arguments (params, optimizer state, batch, key), so the
same function runs on one device or, with the batch sharded over a `data` mesh axis and the
parameters replicated, data-parallel across devices (jit's GSPMD partitioner inserts the
gradient all-reduce).
"""
from __future__ import annotations

import os

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .losses import classifier_loss, dsm_loss


def make_optimizer(lr: float, grad_clip: float = 1.0, warmup: int = 0):
    sched = optax.linear_schedule(0.0, lr, warmup) if warmup > 0 else lr
    parts = ([optax.clip_by_global_norm(grad_clip)] if grad_clip > 0 else []) + [optax.adam(sched)]
    return optax.chain(*parts)


def make_score_step(model, sde, opt, weighting: float = 1.0):
    """One Adam step on the DSM loss of the score model."""

    def step(params, opt_state, x, key):
        loss, grads = jax.value_and_grad(
            lambda p: dsm_loss(lambda xt, s: model.apply(p, xt, s), x, key, sde, weighting)
        )(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step)


def make_classifier_step(clf, score_model, sde, opt, loss_type: str, weighting_dlsm: float,
                         weighting_ce: float, coef: float, reduce_mean: bool = True):
    """One Adam step on the classifier loss ('ce', 'dlsm' or 'total') with a frozen score model."""

    def step(params, opt_state, score_params, x, y, key):
        def loss_fn(p):
            return classifier_loss(
                lambda xt, s: clf.apply(p, xt, s),
                lambda xt, s: score_model.apply(score_params, xt, s),
                x, y, key, sde, loss_type, weighting_dlsm, weighting_ce, coef, reduce_mean,
            )

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, aux

    return jax.jit(step)


# ----------------------------------------------------------------------------- multi-device
def make_mesh(n_devices: int | None = None) -> Mesh:
    devs = jax.devices()
    n = len(devs) if n_devices in (None, 0) else n_devices
    if n > len(devs):
        raise ValueError(f"asked for {n} devices, only {len(devs)} visible")
    return Mesh(np.array(devs[:n]), ("data",))


def shard_batch(x, mesh: Mesh):
    """Split the leading (batch) axis over the mesh's data axis."""
    if x.shape[0] % mesh.size:
        raise ValueError(f"batch {x.shape[0]} is not divisible by the {mesh.size} devices of the mesh")
    return jax.device_put(x, NamedSharding(mesh, P("data")))


def replicate(tree, mesh: Mesh):
    return jax.device_put(tree, NamedSharding(mesh, P()))


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str, state: dict):
    """Write {params, opt_state, step, ...} with flax's msgpack serialisation (atomic rename)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(flax.serialization.to_bytes(jax.device_get(state)))
    os.replace(tmp, path)


def load_checkpoint(path: str, template: dict) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        return flax.serialization.from_bytes(template, f.read())


def load_trained_params(run_dir: str, phase: str, model, x0, lr: float, grad_clip: float = 1.0):
    """The parameters of a finished phase (ckpt_<phase>.msgpack of a train.py run folder)."""
    p0 = model.init(jax.random.PRNGKey(0), x0, jnp.ones((x0.shape[0],)))
    opt = make_optimizer(lr, grad_clip)
    template = dict(params=p0, opt_state=opt.init(p0), step=0, key=jax.random.PRNGKey(0))
    return load_checkpoint(os.path.join(run_dir, f"ckpt_{phase}.msgpack"), template)["params"]


def check_finite(loss, what: str, step: int):
    if not np.isfinite(float(loss)):
        raise FloatingPointError(f"{what}: loss became {float(loss)} at step {step}; lower the learning rate or check the data scaling")
