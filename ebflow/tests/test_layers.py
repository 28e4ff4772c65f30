"""Every layer inverts, and its log-det (data part + constant part) equals slogdet of its Jacobian."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebflow import layers as L

CASES = [
    (L.FullyConnected(init_noise=0.5), (6,)),
    (L.FullyConnected(neg_init=True, init_noise=0.3), (6,)),
    (L.Conv2d(kernel_size=3, init_noise=0.2), (4, 4, 2)),
    (L.Conv2d(kernel_size=3, init_noise=0.2, spectral_norm=True), (4, 4, 2)),
    (L.Conv2d(kernel_size=3, neg_init=True, spectral_norm=True), (4, 4, 2)),
    (L.Invertible1x1Conv(), (2, 3, 3)),
    (L.ActNorm(), (3, 3, 2)),
    (L.SmoothLeakyReLU(alpha=0.3), (6,)),
    (L.SmoothLeakyReLU(alpha=0.3, residual=True), (2, 2, 2)),
    (L.AffineCoupling(hidden=(8,), parity=False), (5,)),
    (L.AffineCoupling(hidden=(8,), parity=True), (2, 2, 3)),
    (L.AffineCoupling(hidden=(6, 6), parity=False, kernel_size=3), (3, 2, 4)),
    # the official Glow coupling: 2 tanh(h/2) log-scale, LeakyReLU(0.1), Conv2dZero output scale
    (L.AffineCoupling(hidden=(6, 6), kernel_size=3, log_scale="2tanh", activation="leaky_relu", out_scale=True), (3, 2, 4)),
    (L.Squeeze(), (4, 4, 1)),
    (L.Flatten((2, 3, 1)), (2, 3, 1)),
    (L.Logit(smoothness=0.5), (6,)),
]


def _params_and_input(layer, shape, seed=0):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    p = {**layer.init(k1, shape), **layer.init_stats(k4, shape)}  # bound: params + state (spectral-norm u, v)
    # perturb every parameter so nothing sits at a trivial identity value
    leaves, tree = jax.tree_util.tree_flatten(p)
    keys = jax.random.split(k2, max(len(leaves), 1))
    p = jax.tree_util.tree_unflatten(tree, [l + 0.3 * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])
    if isinstance(layer, L.Logit):
        x = jax.random.uniform(k3, (3,) + shape, minval=0.05, maxval=0.95)
    else:
        x = 2.0 * jax.random.normal(k3, (3,) + shape)
    return p, x


@pytest.mark.parametrize("layer,shape", CASES, ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_inverse_inverts(layer, shape):
    p, x = _params_and_input(layer, shape)
    y, _ = layer.forward(p, x)
    assert y.shape[1:] == layer.output_shape(shape)
    np.testing.assert_allclose(layer.inverse(p, y), x, atol=1e-8, rtol=1e-8)
    if not isinstance(layer, L.Logit):  # and the other way round: y -> x -> y
        np.testing.assert_allclose(layer.forward(p, layer.inverse(p, x.reshape(y.shape)))[0],
                                   x.reshape(y.shape), atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("layer,shape", CASES, ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_logdet_matches_autodiff_jacobian(layer, shape):
    p, x = _params_and_input(layer, shape, seed=1)
    _, data_ld = layer.forward(p, x)
    total = data_ld + layer.const_logdet(p, shape)
    for i in range(x.shape[0]):
        f = lambda v: layer.forward(p, v.reshape((1,) + shape))[0].reshape(-1)
        jac = jax.jacfwd(f)(x[i].reshape(-1))
        np.testing.assert_allclose(total[i], jnp.linalg.slogdet(jac)[1], atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("layer,shape", [c for c in CASES if c[0].linear])
def test_linear_layers_have_constant_logdet(layer, shape):
    """Membership of S_l: the forward pass reports no data-dependent log-det."""
    p, x = _params_and_input(layer, shape)
    np.testing.assert_array_equal(layer.forward(p, x)[1], 0.0)


def test_smooth_leaky_relu_newton_inverse_far_tails():
    layer = L.SmoothLeakyReLU(alpha=0.3)
    x = jnp.array([[-50.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 50.0]])
    np.testing.assert_allclose(layer.inverse({}, layer.forward({}, x)[0]), x, atol=1e-9)


def test_fully_connected_rejects_image_input():
    with pytest.raises(ValueError, match="flat inputs"):
        L.FullyConnected().init(jax.random.PRNGKey(0), (4, 4, 1))


def test_squeeze_rejects_odd_size():
    with pytest.raises(ValueError, match="even"):
        L.Squeeze().output_shape((3, 4, 1))


def test_logabsdet_value_and_gradient_match_slogdet():
    w = jax.random.normal(jax.random.PRNGKey(3), (7, 7))
    np.testing.assert_allclose(L.logabsdet(w), jnp.linalg.slogdet(w)[1], rtol=1e-12)
    np.testing.assert_allclose(jax.grad(L.logabsdet)(w), jnp.linalg.inv(w).T, rtol=1e-9, atol=1e-12)


def test_power_iteration_converges_over_steps_to_the_top_singular_value():
    """torch's spectral norm runs one power iteration per training step, keeping u between steps: on a fixed
    matrix, sigma_t = u_t^T W v_t approaches numpy's largest singular value step by step."""
    w = jax.random.normal(jax.random.PRNGKey(4), (5, 18))
    top = np.linalg.svd(np.asarray(w), compute_uv=False)[0]
    u = L._normalize(jax.random.normal(jax.random.PRNGKey(5), (5,)))
    errs = []
    for _ in range(60):
        u, v = L.power_iteration(w, u)
        errs.append(abs(float(L.spectral_sigma(w, u, v)) - top) / top)
    assert errs[0] > 1e-4  # one iteration is not yet converged: the state matters
    assert errs[-1] < 1e-10 and errs[20] < errs[0]
    np.testing.assert_allclose(np.linalg.norm(np.asarray(u)), 1.0, rtol=1e-12)


def test_spectral_norm_conv_state_converges_and_normalises_the_kernel():
    """Through the layer: update_stats on a fixed kernel -> sigma = sigma_max of the (C_out, k*k*C_in) matrix, and
    the kernel it convolves with has top singular value 1; without its state the layer says what is missing."""
    layer, shape = L.Conv2d(kernel_size=3, init_noise=0.3, spectral_norm=True), (4, 4, 5)
    p, s = layer.init(jax.random.PRNGKey(6), shape), layer.init_stats(jax.random.PRNGKey(7), shape)
    assert s["u"].shape == (5,) and s["v"].shape == (45,)
    for _ in range(100):
        s = layer.update_stats(p, s)
    mat = np.asarray(p["kernel"]).reshape(-1, 5).T
    np.testing.assert_allclose(layer.sigma({**p, **s}), np.linalg.svd(mat, compute_uv=False)[0], rtol=1e-9)
    normed = np.asarray(layer.kernel({**p, **s})).reshape(-1, 5).T
    np.testing.assert_allclose(np.linalg.svd(normed, compute_uv=False)[0], 1.0, rtol=1e-9)
    with pytest.raises(ValueError, match="power-iteration vectors"):
        layer.forward(p, jnp.zeros((1,) + shape))


@pytest.mark.parametrize("neg_init", [False, True])
def test_spectral_norm_at_the_degenerate_dirac_init(neg_init):
    """(Minus) the Dirac kernel has all singular values 1 (degenerate): one iteration already gives sigma = 1
    from any u, and the gradient through kernel / sigma is finite."""
    layer, shape = L.Conv2d(kernel_size=3, init_noise=0.0, neg_init=neg_init, spectral_norm=True), (4, 4, 2)
    p, s = layer.init(jax.random.PRNGKey(0), shape), layer.init_stats(jax.random.PRNGKey(1), shape)
    s = layer.update_stats(p, s)
    np.testing.assert_allclose(layer.sigma({**p, **s}), 1.0, rtol=1e-12)
    g = jax.grad(lambda k: jnp.sum(layer.kernel({**p, **s, "kernel": k}) ** 2))(p["kernel"])
    assert np.all(np.isfinite(g))


def test_spectral_norm_rescales_the_convolution_log_det():
    """With spectral norm the layer is the plain convolution with kernel / sigma: log|det| drops by D log sigma."""
    shape = (4, 4, 2)
    plain, sn = L.Conv2d(kernel_size=3, init_noise=0.3), L.Conv2d(kernel_size=3, init_noise=0.3, spectral_norm=True)
    p = plain.init(jax.random.PRNGKey(5), shape)
    s = sn.init_stats(jax.random.PRNGKey(6), shape)
    for _ in range(100):
        s = sn.update_stats(p, s)
    sigma = np.linalg.svd(np.asarray(p["kernel"]).reshape(-1, 2).T, compute_uv=False)[0]
    assert abs(sigma - 1.0) > 1e-3  # not vacuous
    np.testing.assert_allclose(sn.const_logdet({**p, **s}, shape), plain.const_logdet(p, shape) - 32 * np.log(sigma),
                               atol=1e-6)


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_neg_init_conv_is_minus_identity_at_init():
    """Official CNN init (neg_init): kernel = -Dirac, so T = -I, log|det| = 0 and the inverse is x = b - y; the bias
    is drawn with std 0.01 sqrt(2 / (2 k^2 C)) (torch's xavier_normal_(gain=0.01) std of the kernel shape)."""
    shape = (4, 4, 3)
    layer = L.Conv2d(kernel_size=5, neg_init=True)
    p = layer.init(jax.random.PRNGKey(0), shape)
    np.testing.assert_array_equal(layer.dense_matrix(p, shape), -np.eye(48))
    assert float(layer.const_logdet(p, shape)) == 0.0
    x = jax.random.normal(jax.random.PRNGKey(1), (2,) + shape)
    y, _ = layer.forward(p, x)
    np.testing.assert_allclose(y, p["b"] - x, atol=1e-12)
    np.testing.assert_allclose(layer.inverse(p, y), x, atol=1e-10)
    np.testing.assert_allclose(layer.inverse(p, y), p["b"] - y, atol=1e-10)
    biases = jax.vmap(lambda k: layer.init(k, shape)["b"])(jax.random.split(jax.random.PRNGKey(2), 3000))
    np.testing.assert_allclose(float(jnp.std(biases)), 0.01 * np.sqrt(2.0 / (2 * 25 * 3)), rtol=0.05)


def test_invertible_1x1_conv_log_det_is_pixels_times_log_det_w():
    layer = L.Invertible1x1Conv()
    p = {"w": jnp.array([[2.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.1, 0.0, 0.5]])}
    np.testing.assert_allclose(layer.const_logdet(p, (2, 3, 3)), 6 * np.log(abs(np.linalg.det(p["w"]))), rtol=1e-12)
    with pytest.raises(ValueError, match="Invertible1x1Conv expects"):
        layer.init(jax.random.PRNGKey(0), (6,))
