"""The EBFlow decomposition: energy + constant log Z reproduce the exact log-density and score."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebflow import layers as L
from ebflow.flow import Flow, build_flow, cnn_flow, fc_flow, glow_flow, toy_flow
from ebflow.preprocess import bits_per_dim


def _perturbed(flow, seed=0, scale=0.2):
    """Perturbed params, bound to their state (spectral-norm u, v after one power iteration, as in training)."""
    p = flow.init(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree_util.tree_flatten(p)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    p = jax.tree_util.tree_unflatten(tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])
    return flow.bind(p, flow.update_stats(p, flow.init_stats(jax.random.PRNGKey(seed + 2))))


FLOWS = [
    fc_flow((3, 3, 1), num_layers=3),
    cnn_flow((4, 4, 1), num_blocks=2, convs_per_block=2, kernel_size=3),
    cnn_flow((4, 4, 1), num_blocks=2, convs_per_block=1, kernel_size=3, spectral_norm=True),
    glow_flow((4, 4, 1), num_blocks=2, block_size=2, width=8),
    toy_flow(num_blocks=2, hidden=(8,)),
]
IDS = ["fc", "cnn", "cnn-spectral-norm", "glow", "toy"]


@pytest.mark.parametrize("flow", FLOWS, ids=IDS)
def test_flow_inverts_and_log_prob_is_change_of_variables(flow, model_and_brute):
    """log p(x_i) of the flow equals log N(z) + slogdet of the brute Jacobian (model_and_brute: tests/conftest.py)."""
    p = _perturbed(flow)
    x = jax.random.normal(jax.random.PRNGKey(3), (2,) + flow.input_shape)
    z, _ = jax.jit(flow.forward)(p, x)
    np.testing.assert_allclose(jax.jit(flow.inverse)(p, z), x, atol=1e-7)
    both = model_and_brute(flow, flow.log_prob)
    for i in range(2):
        got, ref = both(p, x[i])
        np.testing.assert_allclose(got, ref, rtol=1e-9)


@pytest.mark.parametrize("flow", FLOWS, ids=IDS)
def test_energy_gradient_is_the_full_model_score(flow):
    """d/dx log p = -dE/dx: the dropped linear log-dets are constant in x."""
    p = _perturbed(flow, seed=4)
    x = jax.random.normal(jax.random.PRNGKey(5), (3,) + flow.input_shape)
    full = jax.jit(jax.grad(lambda p, v: flow.log_prob(p, v).sum(), argnums=1))(p, x)
    np.testing.assert_allclose(jax.jit(flow.score)(p, x), full, rtol=1e-9, atol=1e-10)
    # and the linear part really is non-zero, so the test is not vacuous
    assert abs(float(jax.jit(flow.linear_logdet)(p))) > 1e-3


def test_identity_flow_nll_of_standard_normal_is_analytic():
    d = 5
    flow = Flow((), (d,))
    x = jax.random.normal(jax.random.PRNGKey(0), (20000, d))
    lp = flow.log_prob([], x)
    np.testing.assert_allclose(lp, -0.5 * jnp.sum(x**2, 1) - 0.5 * d * math.log(2 * math.pi), rtol=1e-12)
    # entropy of N(0, I): D/2 (1 + log 2 pi) nats
    assert abs(float(-lp.mean()) - 0.5 * d * (1 + math.log(2 * math.pi))) < 0.05


def test_bits_per_dim_formula():
    # a density uniform on the pixel cube gives exactly 8 bits/dim
    np.testing.assert_allclose(bits_per_dim(jnp.zeros(3), jnp.zeros(3), 10), 8.0)


def test_shape_mismatch_is_a_clear_error():
    flow = fc_flow((4,))
    p = flow.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="expects inputs of shape"):
        flow.energy(p, jnp.zeros((2, 5)))


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_flow("transformer", (4,))


def test_fc_flow_starts_at_minus_identity():
    flow = fc_flow((3,), num_layers=2, neg_init=True)
    p = flow.init(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(p[0]["w"], -np.eye(3))


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_cnn_neg_init_with_spectral_norm_starts_as_minus_identity_per_conv():
    """The official CIFAR CNN at init (neg_init + spectral norm): every convolution is -I (sigma = 1 after the first
    power iteration), so -log Z = 0; the flow inverts; the state is only u, v of the convolutions."""
    flow = cnn_flow((4, 4, 1), num_blocks=2, convs_per_block=2, kernel_size=3, spectral_norm=True, neg_init=True)
    params = flow.init(jax.random.PRNGKey(0))
    stats = flow.init_stats(jax.random.PRNGKey(1))
    assert [sorted(s) for s in stats if s] == [["u", "v"]] * 4 and flow.has_stats
    p = flow.bind(params, flow.update_stats(params, stats))
    convs = [(layer, q, s) for layer, q, s in zip(flow.layers, p, flow.shapes()) if isinstance(layer, L.Conv2d)]
    for layer, q, s in convs:
        np.testing.assert_allclose(layer.dense_matrix(q, s), -np.eye(math.prod(s)), atol=1e-12)
    np.testing.assert_allclose(flow.linear_logdet(p), 0.0, atol=1e-10)
    x = jax.random.normal(jax.random.PRNGKey(2), (3, 4, 4, 1))
    np.testing.assert_allclose(flow.inverse(p, flow.forward(p, x)[0]), x, atol=1e-8)
