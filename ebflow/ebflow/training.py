"""Pure, jit-compiled train step; optimiser (RMSprop + clipping), EMA, checkpoints, data parallelism."""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .objectives import ObjectiveConfig, get_objective, total_loss


class TrainState(NamedTuple):
    step: jnp.ndarray
    params: Any
    ema_params: Any
    opt_state: Any
    stats: Any = ()  # non-trainable state (flax's batch_stats pattern): spectral-norm u, v per layer; not EMA'd


def eval_params(flow, state: TrainState):
    """What evaluation runs: the EMA params bound to the current state, no power iteration (torch's eval mode,
    where the EMA copies the weights and the u, v buffers stay as training left them)."""
    return flow.bind(state.ema_params, state.stats)


def make_optimizer(lr: float = 1e-4, grad_clip: float = 0.0, lr_decay: float = 1.0, decay_every: int = 0,
                   optimizer: str = "rmsprop", max_decays: int = 0, weight_decay: float = 0.0):
    """RMSprop (paper) or Adam (toys), optional global-norm clipping, step-wise LR decay per 'epoch':
    lr_t = lr * lr_decay^min(t // decay_every, max_decays) (max_decays 0 = no cap), as the official
    MultiStepLR(milestones=range(1, M), gamma) stepped once per epoch decays M - 1 times and then holds.
    ``weight_decay`` w is torch's coupled L2: the optimiser sees clip(g) + w * params (clip_grad_norm_ runs
    before optimizer.step, which adds w * params to every parameter's gradient)."""
    if not decay_every or lr_decay == 1.0:
        sched = lr
    else:
        end = lr * lr_decay**max_decays if max_decays > 0 else None
        sched = optax.exponential_decay(lr, decay_every, lr_decay, staircase=True, end_value=end)
    if optimizer == "rmsprop":
        opt = optax.rmsprop(sched, decay=0.99, eps=1e-8)  # torch.optim.RMSprop defaults
    elif optimizer == "adam":
        opt = optax.adam(sched)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose rmsprop or adam")
    parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip > 0 else []
    parts += [optax.add_decayed_weights(weight_decay)] if weight_decay > 0 else []
    return optax.chain(*parts, opt) if parts else opt


def init_state(flow, key, optimizer, init_batch=None) -> TrainState:
    """Random init; then, if the flow has data-dependent layers (Glow's ActNorm), ``flow.data_init`` on
    ``init_batch`` (train.py passes the first training batch, as the official code's first forward pass).
    The state (spectral-norm u, v) is drawn from its own key, so the params do not depend on whether a flow has any."""
    params = flow.init(key)
    stats = flow.init_stats(jax.random.fold_in(key, 1))
    if flow.has_data_init:
        if init_batch is None:
            raise ValueError("this flow has data-dependent initialisation (ActNorm): pass init_batch to init_state")
        params = jax.jit(flow.data_init)(params, init_batch)
    return TrainState(jnp.zeros((), jnp.int32), params, params, optimizer.init(params), stats)


def make_train_step(flow, objective: str, ocfg: ObjectiveConfig, optimizer, ema_decay: float = 0.999):
    """Return a jit'd ``step(state, x, key) -> (state, loss)``.

    EMA of parameters (paper Sec. 4): ema <- d * ema + (1 - d) * params. The EMA weights are the
    ones evaluated. Works unchanged on a batch sharded over a device mesh (see ``shard``).

    Spectral norm as torch runs it in training mode: first one power iteration on the current kernels
    (``flow.update_stats``, no gradient), then the loss with kernel / (u^T W v) from the new u, v.
    """
    get_objective(objective)  # fail early on an unknown name

    def loss_fn(params, stats, x, key):
        return total_loss(objective, flow, flow.bind(params, stats), x, key, ocfg)

    @jax.jit
    def step(state: TrainState, x, key):
        stats = flow.update_stats(state.params, state.stats)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, stats, x, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # warm-up d_t = min(decay, (1 + t) / (10 + t)) so short runs are not dominated by the init
        t = state.step.astype(jnp.float32)
        d = jnp.minimum(ema_decay, (1.0 + t) / (10.0 + t)) if ema_decay > 0 else 0.0
        ema = jax.tree_util.tree_map(lambda e, p: d * e + (1.0 - d) * p, state.ema_params, params)
        return TrainState(state.step + 1, params, ema, opt_state, stats), loss

    return step


def check_finite(loss, step: int, objective: str):
    """Stop with a clear message instead of training on NaN/inf silently."""
    v = float(loss)
    if not np.isfinite(v):
        raise FloatingPointError(
            f"objective {objective!r} gave a non-finite loss ({v}) at step {step}. Try a smaller --lr, "
            f"gradient clipping (--grad-clip 5), MaP preprocessing (--map), or a larger --sigma/--eps."
        )
    return v


# --------------------------------------------------------------------- data parallelism
def make_mesh(num_devices: int | None = None) -> Mesh:
    """1-D device mesh with axis 'data'. On CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N gives N."""
    devs = jax.devices()[: num_devices or len(jax.devices())]
    return Mesh(np.array(devs), ("data",))


def shard(mesh: Mesh, state: TrainState, x):
    """Replicate the state and split the batch along its first axis over the 'data' mesh axis.

    jit then runs the same step SPMD on every device and XLA inserts the gradient all-reduce.
    """
    if x.shape[0] % mesh.size:
        raise ValueError(f"batch size {x.shape[0]} is not divisible by the {mesh.size} devices of the mesh")
    state = jax.device_put(state, NamedSharding(mesh, P()))
    x = jax.device_put(x, NamedSharding(mesh, P("data")))
    return state, x


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str, state: TrainState, extra: dict | None = None):
    blob = serialization.to_bytes({"state": jax.device_get(state), "extra": extra or {}})
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def load_checkpoint(path: str, template: TrainState, extra_template: dict | None = None):
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        restored = serialization.from_bytes({"state": template, "extra": extra_template or {}}, f.read())
    return restored["state"], restored["extra"]
