import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebflow.evaluate import mala_inpaint, sample
from ebflow.flow import fc_flow


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_mala_inpainting_targets_the_conditional_of_a_gaussian_flow():
    """A 1-layer FC flow is a Gaussian N(mu, Sigma); MALA's fill must match E[x_b | x_a]."""
    d = 4
    flow = fc_flow((d,), num_layers=1, neg_init=False)
    p = flow.init(jax.random.PRNGKey(0))
    w = jnp.array([[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 1.0]])
    p = [{"w": w, "b": jnp.array([0.1, -0.2, 0.3, 0.0])}]
    # z = W x + b ~ N(0, I)  =>  x ~ N(-W^{-1} b, (W^T W)^{-1})
    prec = w.T @ w
    mu = -jnp.linalg.solve(w, p[0]["b"])
    x_obs = jnp.array([[1.0, -1.0, 0.0, 0.0]])
    mask = jnp.array([[1.0, 1.0, 0.0, 0.0]])
    chains = jnp.tile(x_obs, (2000, 1))
    y, acc = mala_inpaint(flow, p, chains, jnp.tile(mask, (2000, 1)), jax.random.PRNGKey(1), steps=200, step_size=0.1)
    np.testing.assert_array_equal(y[:, :2], chains[:, :2])  # observed pixels untouched
    # conditional mean of a Gaussian in precision form: mu_b - P_bb^{-1} P_ba (x_a - mu_a)
    cond = mu[2:] - jnp.linalg.solve(prec[2:, 2:], prec[2:, :2] @ (x_obs[0, :2] - mu[:2]))
    np.testing.assert_allclose(y[:, 2:].mean(0), cond, atol=0.08)
    assert 0.3 < float(acc) <= 1.0


def test_exact_sampling_matches_the_model_gaussian():
    flow = fc_flow((2,), num_layers=1, neg_init=False)
    w = jnp.array([[2.0, 0.0], [1.0, 1.0]])
    p = [{"w": w, "b": jnp.zeros(2)}]
    x = sample(flow, p, jax.random.PRNGKey(0), 20000)
    cov = jnp.linalg.inv(w.T @ w)
    np.testing.assert_allclose(jnp.cov(x.T), cov, atol=0.05)


def test_map_nll_equals_the_nll_with_the_logit_inside_the_model():
    """MaP moves the logit outside the model and adds its log-det back: the reported bits/dim must be the
    same as for the flow that has the logit as its first layer (same params, same dequantisation noise)."""
    from ebflow.evaluate import test_nll_bpd
    from ebflow.flow import Flow
    from ebflow.layers import Logit

    flow = fc_flow((6,), num_layers=2)
    p = flow.init(jax.random.PRNGKey(0))
    p = [{k: v + 0.1 * jax.random.normal(jax.random.PRNGKey(i), v.shape) for k, v in q.items()} for i, q in enumerate(p)]
    x = np.random.default_rng(0).integers(0, 256, (50, 6)).astype(np.uint8)
    logit = Logit(0.5)
    with_map = test_nll_bpd(flow, p, x, jax.random.PRNGKey(3), logit, batch_size=20)
    inside = test_nll_bpd(Flow((logit,) + flow.layers, flow.input_shape), [{}] + p, x, jax.random.PRNGKey(3), None, batch_size=20)
    np.testing.assert_allclose(with_map, inside, rtol=1e-5)
    assert 2.0 < with_map < 30.0
