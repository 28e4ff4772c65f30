"""The asymmetry regulariser: exact traces, Hutchinson unbiasedness, analytic values, CSBM = 0, gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qcsbm.losses import jacobian_traces_exact, jacobian_traces_hutchinson, make_loss_fn, rademacher
from qcsbm.metrics import asymmetry
from qcsbm.models import build_model
from qcsbm.sde import VESDE

SDE = VESDE(0.1, 3.0)


def _x64():
    try:
        return jax.enable_x64(True)
    except (AttributeError, TypeError):  # older jax
        from jax.experimental import enable_x64

        return enable_x64()


def _linear_field(a):
    return lambda x: x @ a.T  # s(x) = A x for every sample


def test_exact_traces_of_linear_field_match_analytic():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3)).astype(np.float32)
    x = jnp.asarray(rng.standard_normal((5, 3)), jnp.float32)
    _, tr_jjt, tr_jj = jacobian_traces_exact(_linear_field(jnp.asarray(a)), x)
    np.testing.assert_allclose(tr_jjt, np.trace(a @ a.T), rtol=1e-5)
    np.testing.assert_allclose(tr_jj, np.trace(a @ a), rtol=1e-5)


def test_asym_of_non_conservative_linear_field_is_analytic():
    # A = S + K with S symmetric, K antisymmetric: Asym = 1/2 ||A - A^T||_F^2 = 2 ||K||_F^2,
    # NAsym = 1/2 Asym / ||A||_F^2 = ||K||^2 / (||S||^2 + ||K||^2).
    s = np.array([[2.0, 0.5], [0.5, 1.0]], np.float32)
    k = np.array([[0.0, 1.5], [-1.5, 0.0]], np.float32)
    a = jnp.asarray(s + k)
    x = jnp.ones((4, 2))
    asym, nasym = asymmetry(lambda y, t: y @ a.T, x, jnp.zeros(4))
    np.testing.assert_allclose(asym, 2 * np.sum(k**2), rtol=1e-5)
    np.testing.assert_allclose(nasym, np.sum(k**2) / (np.sum(s**2) + np.sum(k**2)), rtol=1e-5)


@pytest.mark.parametrize("d", [2, 6])
def test_hutchinson_is_unbiased(d):
    """Mean of the K=1 estimates over many probes matches the exact traces within 5 standard errors."""
    model = build_model("toy_mlp", SDE) if d == 2 else None
    rng = np.random.default_rng(1)
    if model is None:
        a = jnp.asarray(rng.standard_normal((d, d)), jnp.float32)
        f = lambda y: jnp.tanh(y @ a.T) * 2.0 + y @ a  # noqa: E731  nonlinear, non-conservative
    else:
        params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
        f = lambda y: model.score(params, y, jnp.full((y.shape[0],), 0.3))  # noqa: E731
    n = 8000
    x = jnp.broadcast_to(jnp.asarray(rng.standard_normal((1, d)), jnp.float32), (n, d))  # same J for all rows
    _, ex_jjt, ex_jj = jax.jit(lambda y: jacobian_traces_exact(f, y))(x[:1])
    v = rademacher(jax.random.PRNGKey(2), (1, n, d))
    _, h_jjt, h_jj = jax.jit(lambda y, v: jacobian_traces_hutchinson(f, y, v))(x, v)
    for est, exact in ((h_jjt, ex_jjt[0]), (h_jj, ex_jj[0])):
        se = float(jnp.std(est)) / np.sqrt(n)
        assert abs(float(jnp.mean(est)) - float(exact)) < 5 * se + 1e-5 * abs(float(exact)), (est.mean(), exact, se)
    # and the estimate is not trivially exact: individual probes do vary
    assert float(jnp.std(h_jjt)) > 0


def test_hutchinson_slices_reduce_variance():
    a = jnp.asarray(np.random.default_rng(3).standard_normal((4, 4)), jnp.float32)
    f = _linear_field(a)
    x = jnp.ones((4000, 4))
    _, e1, _ = jacobian_traces_hutchinson(f, x, rademacher(jax.random.PRNGKey(0), (1, 4000, 4)))
    _, e8, _ = jacobian_traces_hutchinson(f, x, rademacher(jax.random.PRNGKey(1), (8, 4000, 4)))
    assert float(jnp.var(e8)) < 0.3 * float(jnp.var(e1))


def test_csbm_gradient_field_has_zero_asymmetry():
    model = build_model("toy_mlp", SDE, conservative=True)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 2)) * 3
    t = jax.random.uniform(jax.random.PRNGKey(2), (64,))
    asym, nasym = jax.jit(lambda y, tt: asymmetry(lambda a, b: model.score(params, a, b), y, tt))(x, t)
    _, tr_jjt, _ = jax.jit(lambda y: jacobian_traces_exact(lambda a: model.score(params, a, t), y))(x)
    assert float(jnp.max(jnp.abs(asym) / tr_jjt)) < 1e-5
    # while the unconstrained model at the same init is measurably non-conservative
    usbm = build_model("toy_mlp", SDE)
    p2 = usbm.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
    _, nasym_u = asymmetry(lambda y, tt: usbm.score(p2, y, tt), x, t)
    assert float(jnp.mean(nasym_u)) > 1e-4


@pytest.mark.background
def test_csbm_image_unet_has_symmetric_jacobian():
    """The energy U-Net (s = -grad of 1/2 ||U||^2 / sigma) on a 4x4 image: full 16x16 Jacobian (jacfwd),
    Asym = 0 up to float error, while the score U-Net with the same architecture is not conservative."""
    sde = VESDE(0.01, 10.0)
    kw = dict(nf=8, ch_mult=(1, 2), attn_resolutions=(2,))
    x = jax.random.uniform(jax.random.PRNGKey(1), (1, 4, 4, 1))
    t = jnp.array([0.3])
    out = {}
    for conservative in (True, False):
        model = build_model("ncsnpp_small", sde, conservative=conservative, **kw)
        params = model.init(jax.random.PRNGKey(0), x, t)
        # perturb the zero-initialised convs so that every path of the network is active
        params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
        jac = jax.jit(jax.jacfwd(lambda y: model.score(params, y, t)))(x).reshape(16, 16)
        out[conservative] = float(0.5 * jnp.sum((jac - jac.T) ** 2) / jnp.sum(jac**2))  # Asym / tr(JJ^T)
    assert out[True] < 1e-5, out
    assert out[False] > 1e-3, out


@pytest.mark.background
def test_csbm_image_unet_trains():
    """One DSM step of the energy U-Net (gradients through s = -grad E): finite, and the parameters move."""
    from qcsbm.training import init_state, make_optimizer, make_train_step

    sde = VESDE(0.01, 10.0)
    model = build_model("ncsnpp_small", sde, conservative=True, nf=8, ch_mult=(1, 2), attn_resolutions=(2,))
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 4, 4, 1))
    params = model.init(jax.random.PRNGKey(0), x, jnp.zeros(4))
    opt = make_optimizer(1e-3, 1.0)
    step = make_train_step(make_loss_fn(model, sde, "csbm"), opt)
    state, aux = step(init_state(params, opt), x, jax.random.PRNGKey(2))
    assert np.isfinite(float(aux["loss"])) and float(aux["grad_norm"]) > 0
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.params, params)
    assert max(jax.tree.leaves(moved)) > 0


def test_tied_autoencoder_is_conservative_untied_is_not():
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
    t = jnp.zeros(32)
    for tied, expect_zero in ((True, True), (False, False)):
        model = build_model("autoencoder", SDE, conservative=tied, hidden=16)
        params = model.init(jax.random.PRNGKey(1), x, t)
        _, nasym = asymmetry(lambda y, tt: model.score(params, y, tt), x, t)
        assert (float(jnp.max(nasym)) < 1e-6) == expect_zero


def test_regularised_loss_gradient_matches_finite_differences():
    """d/d eps of the exact-Jacobian QCSBM loss along a random parameter direction (second-order autodiff)."""
    with _x64():
        sde = VESDE(0.1, 3.0)
        model = build_model("autoencoder", sde, hidden=8)
        x = jax.random.normal(jax.random.PRNGKey(0), (16, 2), jnp.float64)
        params = model.init(jax.random.PRNGKey(1), x, jnp.zeros(16, jnp.float64))
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        loss = make_loss_fn(model, sde, "qcsbm_exact", lam=1.0)
        key = jax.random.PRNGKey(2)
        f = jax.jit(lambda p: loss(p, x, key)[0])
        g = jax.jit(jax.grad(lambda p: loss(p, x, key)[0]))(params)
        direction = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(3), p.shape, jnp.float64), params)
        eps = 1e-5
        plus = f(jax.tree.map(lambda p, d: p + eps * d, params, direction))
        minus = f(jax.tree.map(lambda p, d: p - eps * d, params, direction))
        fd = (plus - minus) / (2 * eps)
        ad = sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(direction)))
        np.testing.assert_allclose(float(ad), float(fd), rtol=1e-6)
