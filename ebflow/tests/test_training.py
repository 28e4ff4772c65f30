"""The train step's EMA of parameters and its gradient clipping do what they say."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebflow.flow import fc_flow
from ebflow.objectives import ObjectiveConfig
from ebflow.training import init_state, make_optimizer, make_train_step


def test_ema_follows_the_warmed_up_decay():
    """ema_t = d_t ema_{t-1} + (1 - d_t) params_t with d_t = min(decay, (1 + t) / (10 + t))."""
    flow = fc_flow((5,))
    opt = make_optimizer(1e-2)
    step = make_train_step(flow, "dsm", ObjectiveConfig(), opt, ema_decay=0.999)
    s0 = init_state(flow, jax.random.PRNGKey(0), opt)
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
    s1, _ = step(s0, x, jax.random.PRNGKey(2))
    s2, _ = step(s1, x, jax.random.PRNGKey(3))
    for e0, p1, p2, e2 in zip(*(jax.tree_util.tree_leaves(t) for t in (s0.ema_params, s1.params, s2.params, s2.ema_params))):
        e1 = 0.1 * e0 + 0.9 * p1  # t = 0: d = 1/10
        np.testing.assert_allclose(e2, (2 / 11) * e1 + (9 / 11) * p2, rtol=1e-6, atol=1e-9)  # t = 1: d = 2/11
    assert float(jnp.abs(s2.params[0]["w"] - s0.params[0]["w"]).max()) > 1e-3  # the parameters did move


def test_gradient_clipping_bounds_what_the_optimiser_sees():
    """With grad_clip = c, RMSprop's second-moment state after one step is 0.01 * clipped g^2: sum = 0.01 c^2."""
    params = {"w": jnp.zeros(10)}
    g = {"w": jnp.arange(1.0, 11.0) * 10.0}  # norm ~196
    for clip, expect in ((1.0, 0.01 * 1.0), (0.0, 0.01 * float(jnp.sum(g["w"] ** 2)))):
        opt = make_optimizer(1e-3, grad_clip=clip)
        _, st = opt.update(g, opt.init(params), params)
        nu = optax.tree_utils.tree_get(st, "nu")
        np.testing.assert_allclose(float(jnp.sum(nu["w"])), expect, rtol=1e-5)
