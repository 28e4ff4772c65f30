"""The energy-based normalizing flow: inversion, exact density, exact soft V, squashing."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meow_rl.flow import MEowFlow


def _flow_and_params(action_dim, obs_dim=3, seed=0, noise=0.05, **kw):
    kw.setdefault("hidden", 16)
    flow = MEowFlow(action_dim, **kw)
    key = jax.random.PRNGKey(seed)
    params = flow.init(key, jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim)))
    # shrink the translation nets' output so the actions stay away from tanh saturation (float32),
    # then perturb every parameter so the zero-initialised prior scale and shifts are non-trivial too so the zero-initialised prior scale and shifts are non-trivial too
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: 0.2 * x if "translations" in jax.tree_util.keystr(p) and "Dense_2" in jax.tree_util.keystr(p) else x, params)
    leaves, tree = jax.tree_util.tree_flatten(params)
    leaves = [x + noise * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return flow, jax.tree_util.tree_unflatten(tree, leaves)


@pytest.mark.parametrize("action_dim,init", [(1, "flax"), (2, "flax"), (5, "flax"), (2, "official")])
def test_flow_inverts(action_dim, init):
    flow, params = _flow_and_params(action_dim, init_scheme=init)
    s = jax.random.normal(jax.random.PRNGKey(3), (64, 3))
    z0 = 0.5 * jax.random.normal(jax.random.PRNGKey(4), (64, action_dim))
    a = flow.apply(params, s, z0, method=MEowFlow.forward)
    z_back = flow.apply(params, s, a, method=MEowFlow.inverse)
    np.testing.assert_allclose(z_back, z0, atol=2e-4)
    a2 = jnp.tanh(jax.random.normal(jax.random.PRNGKey(5), (64, action_dim)))
    a_back = flow.apply(params, s, flow.apply(params, s, a2, method=MEowFlow.inverse), method=MEowFlow.forward)
    np.testing.assert_allclose(a_back, a2, atol=1e-4)


def test_log_prob_matches_change_of_variables_with_jacobian():
    """log pi = log N(z0; 0, sigma^2) - log|det da/dz0|, the Jacobian computed by autodiff (no volume-preservation assumed)."""
    flow, params = _flow_and_params(3)
    s = jax.random.normal(jax.random.PRNGKey(0), (3,))
    z0 = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (3,))
    a = flow.apply(params, s[None], z0[None], method=MEowFlow.forward)[0]
    J = jax.jacfwd(lambda z: flow.apply(params, s[None], z[None], method=MEowFlow.forward)[0])(z0)
    log_sigma = flow.apply(params, s[None], method=MEowFlow.log_sigma)[0]
    log_n = jnp.sum(-0.5 * (z0 / jnp.exp(log_sigma)) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi))
    expected = log_n - jnp.linalg.slogdet(J)[1]
    got = flow.apply(params, s[None], a[None], method=MEowFlow.log_prob)[0]
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_density_integrates_to_one_1d():
    flow, params = _flow_and_params(1)
    s = jax.random.normal(jax.random.PRNGKey(7), (4, 3))
    grid = jnp.linspace(-1, 1, 4001)[1:-1]
    da = grid[1] - grid[0]
    for i in range(4):
        logp = flow.apply(params, jnp.repeat(s[i:i + 1], grid.shape[0], 0), grid[:, None], method=MEowFlow.log_prob)
        np.testing.assert_allclose(float(jnp.sum(jnp.exp(logp)) * da), 1.0, atol=1e-2)


def test_density_integrates_to_one_2d():
    flow, params = _flow_and_params(2)
    s = jax.random.normal(jax.random.PRNGKey(8), (1, 3))
    g = jnp.linspace(-1, 1, 302)[1:-1]
    A1, A2 = jnp.meshgrid(g, g)
    grid = jnp.stack([A1.ravel(), A2.ravel()], -1)
    logp = flow.apply(params, jnp.repeat(s, grid.shape[0], 0), grid, method=MEowFlow.log_prob)
    np.testing.assert_allclose(float(jnp.sum(jnp.exp(logp)) * (g[1] - g[0]) ** 2), 1.0, atol=2e-2)


def test_soft_v_is_log_sum_exp_of_q():
    """V_k(s) = alpha log int exp(Q_k(s,a)/alpha) da for both shifts, by quadrature over a 1-D action."""
    flow, params = _flow_and_params(1)
    alpha = 0.3
    s = jax.random.normal(jax.random.PRNGKey(9), (1, 3))
    grid = jnp.linspace(-1, 1, 4001)[1:-1]
    ss = jnp.repeat(s, grid.shape[0], 0)
    q1, q2 = flow.apply(params, ss, grid[:, None], method=MEowFlow.q_over_alpha)
    v1, v2 = flow.apply(params, s, method=MEowFlow.v_over_alpha)
    log_da = jnp.log(grid[1] - grid[0])
    assert abs(float(v1[0] - v2[0])) > 1e-3  # the two shifts differ, so both checks mean something
    for q, v in ((q1, v1), (q2, v2)):
        v_quad = alpha * (jax.scipy.special.logsumexp(q) + log_da)
        np.testing.assert_allclose(float(v_quad), float(alpha * v[0]), atol=1e-2)


def test_actions_squashed_and_sigma_bounded():
    flow, params = _flow_and_params(4, sigma_min=-5.0, sigma_max=-0.3, noise=1.0)
    s = 100.0 * jax.random.normal(jax.random.PRNGKey(10), (256, 3))  # extreme states
    eps = 5.0 * jax.random.normal(jax.random.PRNGKey(11), (256, 4))
    a = flow.apply(params, s, eps, False, method=MEowFlow.sample)
    assert bool(jnp.all(jnp.abs(a) <= 1.0)) and bool(jnp.all(jnp.isfinite(a)))
    log_sigma = flow.apply(params, s, method=MEowFlow.log_sigma)
    assert float(log_sigma.min()) >= -5.0 - 1e-6 and float(log_sigma.max()) <= -0.3 + 1e-6
    # actions at the box edge still have finite Q (clipped to +-(1 - 1e-5) before atanh)
    q1, _ = flow.apply(params, s[:4], jnp.array([[1.0, -1.0, 1.0, 0.0]] * 4), method=MEowFlow.q_over_alpha)
    assert bool(jnp.all(jnp.isfinite(q1)))


def test_deterministic_action_is_image_of_prior_mode():
    flow, params = _flow_and_params(2)
    s = jax.random.normal(jax.random.PRNGKey(12), (8, 3))
    eps = jax.random.normal(jax.random.PRNGKey(13), (8, 2))
    a_det = flow.apply(params, s, eps, True, method=MEowFlow.sample)
    a_mode = flow.apply(params, s, jnp.zeros((8, 2)), method=MEowFlow.forward)
    np.testing.assert_allclose(a_det, a_mode, atol=1e-6)
    a_sto = flow.apply(params, s, eps, False, method=MEowFlow.sample)
    assert float(jnp.abs(a_sto - a_det).max()) > 1e-3


def test_official_init_matches_the_pytorch_code():
    """init="official": prior-scale and shift nets have ALL weights zero (PyTorch-uniform biases), so
    log sigma(s) and b_k(s) start state-independent; translations orthogonal(1) with uniform biases;
    one Swish beta per unit. init="flax" differs (orthogonal hidden layers, zero biases)."""
    flow = MEowFlow(2, hidden=16, shift_hidden=32, init_scheme="official")
    p = flow.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 2)))["params"]
    for net, fan_ins in (("log_scale_net", (3, 16, 16)), ("shift1", (3, 32, 32)), ("translations_0", (5, 16, 16))):
        for i, fan_in in enumerate(fan_ins):
            d = p[net][f"Dense_{i}"]
            b = np.asarray(d["bias"])
            assert np.all(np.abs(b) <= 1 / math.sqrt(fan_in)) and np.all(b != 0.0)
            if net == "translations_0":
                w = np.asarray(d["kernel"])
                np.testing.assert_allclose(w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T, np.eye(min(w.shape)), atol=1e-5)
            else:
                assert np.all(np.asarray(d["kernel"]) == 0.0)
    assert p["translations_0"]["Swish_0"]["beta"].shape == (16,)
    s = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    ls = flow.apply({"params": p}, s, method=MEowFlow.log_sigma)
    np.testing.assert_allclose(ls, jnp.broadcast_to(ls[0], ls.shape), atol=1e-6)  # state-independent at init
    assert float(jnp.abs(ls[0] - (-5.0 - 0.3) / 2).max()) > 1e-4  # ... but not exactly the midpoint (bias)
    flax = MEowFlow(2, hidden=16, shift_hidden=32).init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 2)))["params"]
    assert np.all(np.asarray(flax["translations_0"]["Dense_0"]["bias"]) == 0.0)
    assert flax["translations_0"]["Swish_0"]["beta"].shape == (1,)
