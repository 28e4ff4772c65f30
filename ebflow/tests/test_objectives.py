"""Each objective estimates what the paper says it does, has finite gradients, and can be lowered."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebflow.flow import fc_flow
from ebflow.objectives import OBJECTIVES, ObjectiveConfig, get_objective, total_loss


def _flow_params(d=4, seed=0, scale=0.3):
    flow = fc_flow((d,), num_layers=2)
    p = flow.init(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree_util.tree_flatten(p)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return flow, jax.tree_util.tree_unflatten(tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def _exact_score_matching(flow, p, x):
    """Hyvarinen's objective 1/2 ||s||^2 + tr(ds/dx), with the full Jacobian (small D only)."""
    s = flow.score(p, x)
    def tr(xi):
        return jnp.trace(jax.jacfwd(lambda v: flow.score(p, v[None])[0])(xi))
    return jnp.mean(0.5 * jnp.sum(s**2, 1) + jax.vmap(tr)(x)) / flow.dim


def test_ml_is_mean_negative_log_likelihood():
    flow, p = _flow_params()
    x = jax.random.normal(jax.random.PRNGKey(2), (7, 4))
    loss = get_objective("ml")(flow, p, x, None, ObjectiveConfig())
    np.testing.assert_allclose(loss, -flow.log_prob(p, x).mean() / 4, rtol=1e-10)


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_ssm_is_unbiased_for_exact_score_matching():
    flow, p = _flow_params()
    x = jnp.tile(jax.random.normal(jax.random.PRNGKey(2), (4, 4)), (4000, 1))  # many slices per point
    ssm = jax.jit(lambda q: get_objective("ssm")(flow, q, x, jax.random.PRNGKey(3), ObjectiveConfig()))(p)
    scale = float(jnp.mean(0.5 * jnp.sum(flow.score(p, x[:4]) ** 2, 1))) / flow.dim
    np.testing.assert_allclose(ssm, jax.jit(lambda q: _exact_score_matching(flow, q, x[:4]))(p), atol=0.03 * scale)
    assert scale > 0.1


def test_fdssm_approaches_score_matching_for_small_eps():
    flow, p = _flow_params()
    x = jnp.tile(jax.random.normal(jax.random.PRNGKey(2), (4, 4)), (5000, 1))  # many directions per point
    fd = get_objective("fdssm")(flow, p, x, jax.random.PRNGKey(4), ObjectiveConfig(eps=1e-2))
    # the objective is a difference of two O(1) terms; tolerance relative to the first term
    scale = float(jnp.mean(0.5 * jnp.sum(flow.score(p, x[:4]) ** 2, 1))) / flow.dim
    np.testing.assert_allclose(fd, jax.jit(lambda q: _exact_score_matching(flow, q, x[:4]))(p), atol=0.05 * scale)
    assert scale > 0.1


def test_dsm_gradient_matches_score_matching_for_small_sigma():
    """DSM = SM + const + O(sigma^2) in expectation; compare their parameter gradients."""
    flow, p = _flow_params(d=3)
    x = jnp.tile(jax.random.normal(jax.random.PRNGKey(2), (2, 3)), (3000, 1))
    cfg = ObjectiveConfig(sigma=0.05)
    g_dsm = jax.jit(jax.grad(lambda q: get_objective("dsm")(flow, q, x, jax.random.PRNGKey(5), cfg)))(p)  # one compile
    g_sm = jax.jit(jax.grad(lambda q: _exact_score_matching(flow, q, x[:2])))(p)
    a, b = jax.flatten_util.ravel_pytree(g_dsm)[0], jax.flatten_util.ravel_pytree(g_sm)[0]
    cos = float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))
    assert cos > 0.95, cos


def test_sml_gradient_matches_ml_gradient():
    """grad log Z = -E_model[grad E]: SML's gradient estimates ML's without any log-det."""
    flow, p = _flow_params(d=3, scale=0.2)
    x = jax.random.normal(jax.random.PRNGKey(2), (40000, 3))
    g_sml = jax.jit(jax.grad(lambda q: get_objective("sml")(flow, q, x, jax.random.PRNGKey(6), ObjectiveConfig())))(p)
    g_ml = jax.jit(jax.grad(lambda q: get_objective("ml")(flow, q, x, None, ObjectiveConfig())))(p)
    a, b = jax.flatten_util.ravel_pytree(g_sml)[0], jax.flatten_util.ravel_pytree(g_ml)[0]
    np.testing.assert_allclose(a, b, atol=0.03 * float(jnp.abs(b).max()))


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_score_matching_never_touches_the_linear_log_determinants(monkeypatch):
    """The point of EBFlow: ssm/dsm/fdssm must not call slogdet (O(D^3))."""
    flow, p = _flow_params()
    x = jax.random.normal(jax.random.PRNGKey(2), (5, 4))
    def boom(*a, **k):
        raise AssertionError("slogdet called")
    monkeypatch.setattr(jnp.linalg, "slogdet", boom)
    monkeypatch.setattr(jax.lax.linalg, "lu", boom)
    for name in ("ssm", "dsm", "fdssm"):
        jax.jit(jax.grad(lambda q: get_objective(name)(flow, q, x, jax.random.PRNGKey(0), ObjectiveConfig())))(p)
    with pytest.raises(AssertionError, match="slogdet called"):
        get_objective("ml")(flow, p, x, None, ObjectiveConfig())


@pytest.mark.parametrize("name", OBJECTIVES)
def test_short_run_lowers_each_objective(name):
    """Fit a correlated Gaussian with a linear flow (a Gaussian model, where score matching is consistent):
    150 Adam steps must lower the objective and the exact NLL, which score matching never saw.

    (With a nonlinear flow a lower score-matching loss need not mean a lower NLL on small data:
    score matching is blind to mass placed far from the data.)"""
    d = 4
    flow = fc_flow((d,), num_layers=1, neg_init=False)
    params = flow.init(jax.random.PRNGKey(0))
    a = jnp.array([[1.5, 0.0, 0.0, 0.0], [0.8, 0.8, 0.0, 0.0], [0.0, 0.3, 1.2, 0.0], [0.2, 0.0, 0.4, 0.6]])
    x = jax.random.normal(jax.random.PRNGKey(1), (512, d)) @ a.T + 1.0
    cfg = ObjectiveConfig(sigma=0.3, eps=0.3, low_energy=1e-3 if name == "dsm" else 0.0)
    fixed_key = jax.random.PRNGKey(9)  # same noise before and after, so the comparison is fair
    loss_fn = lambda q, k: total_loss(name, flow, q, x, k, cfg)
    opt = optax.adam(3e-2)
    st = opt.init(params)

    @jax.jit
    def step(q, st, k):
        l, g = jax.value_and_grad(loss_fn)(q, k)
        flat = jax.flatten_util.ravel_pytree(g)[0]
        up, st = opt.update(g, st)
        return optax.apply_updates(q, up), st, l, jnp.all(jnp.isfinite(flat))

    before = float(np.mean([loss_fn(params, k) for k in jax.random.split(fixed_key, 8)]))
    key = jax.random.PRNGKey(2)
    for _ in range(150):
        key, k = jax.random.split(key)
        params, st, l, finite = step(params, st, k)
        assert bool(finite), f"{name}: non-finite gradient"
    after = float(np.mean([loss_fn(params, k) for k in jax.random.split(fixed_key, 8)]))
    if name != "sml":  # SML's value E_data - E_model is only a gradient surrogate, not a quantity to lower
        assert after < before - 0.05 * abs(before) - 1e-3, (name, before, after)
    # and the fit is a better density than the initial flow (exact NLL, which score matching never saw)
    assert float(-flow.log_prob(params, x).mean()) < float(-flow.log_prob(flow.init(jax.random.PRNGKey(0)), x).mean())


def test_unknown_objective_name():
    with pytest.raises(ValueError, match="unknown objective 'sm'"):
        get_objective("sm")


@pytest.mark.parametrize("name", ("ssm", "dsm", "fdssm"))
def test_low_energy_regulariser_adds_lambda_times_mean_energy(name):
    """total_loss = objective + lambda * E_x[E(x)] / D (paper Sec. 4; the official code's `lambda`)."""
    flow, p = _flow_params()
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 4))
    key = jax.random.PRNGKey(8)
    lam = 0.1
    # one compiled program for both losses and both gradients (op-by-op dispatch of SSM's derivatives was the cost)
    loss_and_grad = lambda q, c: jax.value_and_grad(lambda r: total_loss(name, flow, r, x, key, c))(q)
    (plain, g0), (reg, g1) = jax.jit(lambda q: (loss_and_grad(q, ObjectiveConfig()), loss_and_grad(q, ObjectiveConfig(low_energy=lam))))(p)
    np.testing.assert_allclose(reg - plain, lam * jnp.mean(flow.energy(p, x)) / flow.dim, rtol=1e-10)
    # and it pushes the energy of the data down: its gradient changes the update
    g0, g1 = jax.flatten_util.ravel_pytree(g0)[0], jax.flatten_util.ravel_pytree(g1)[0]
    assert float(jnp.linalg.norm(g1 - g0)) > 1e-3 * float(jnp.linalg.norm(g0))
