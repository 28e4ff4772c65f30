"""Multi-scale Glow: split prior, ActNorm data-dependent init, and the EBFlow energy / normaliser split."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebflow import layers as L
from ebflow.flow import glow_flow


def _perturb(tree, key, scale):
    leaves, td = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(td, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def _glow(**kw):
    flow = glow_flow((4, 4, 1), num_blocks=2, block_size=2, width=8, **kw)
    x = jax.random.normal(jax.random.PRNGKey(3), (5, 4, 4, 1))
    p = _perturb(flow.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1), 0.2)
    return flow, p, x


def _normalised_energy(flow):
    """-E(x) + sum_{S_l} log|det W|: the EBFlow energy plus its normaliser, compared by model_and_brute
    (tests/conftest.py) with log N(z) + log|det dz/dx| from the brute 16 x 16 Jacobian."""
    return lambda p, x: -flow.energy(p, x) + flow.linear_logdet(p)


@pytest.mark.parametrize("kw", [{}, {"activation": "relu", "out_scale": True}], ids=["ours", "official"])
def test_split_prior_is_an_exact_bijection_with_the_brute_jacobian_logdet(kw):
    layer, shape = L.SplitPrior(hidden=(6, 6), kernel_size=3, **kw), (2, 2, 4)
    p = _perturb(layer.init(jax.random.PRNGKey(0), shape), jax.random.PRNGKey(1), 0.3)
    x = 2.0 * jax.random.normal(jax.random.PRNGKey(2), (3,) + shape)
    y, ld = jax.jit(layer.bijection)(p, x)
    np.testing.assert_allclose(jax.jit(layer.bijection_inverse)(p, y), x, atol=1e-10)
    brute = jax.jit(lambda p, v: jnp.linalg.slogdet(jax.jacfwd(lambda u: layer.bijection(p, u.reshape((1,) + shape))[0].reshape(-1))(v))[1])
    for i in range(3):
        np.testing.assert_allclose(ld[i], brute(p, x[i].reshape(-1)), rtol=1e-10)
    assert float(jnp.abs(ld).max()) > 1e-2  # the perturbed prior really scales x2
    # its log-density is the conditional Gaussian N(x2; mu(x1), sigma(x1)), written out independently
    x1, x2, _, log_prior = layer.split(p, x)
    mu, log_sigma = layer.prior(p, x1)
    sig = np.exp(np.asarray(log_sigma))
    ref = (-0.5 * ((np.asarray(x2) - np.asarray(mu)) / sig) ** 2 - np.log(sig * math.sqrt(2 * math.pi))).reshape(3, -1).sum(1)
    np.testing.assert_allclose(log_prior, ref, rtol=1e-10)
    assert layer.output_shape(shape) == (2, 2, 2) and not layer.linear
    with pytest.raises(TypeError, match="split"):
        layer.forward(p, x)


def test_split_prior_starts_at_standard_normal():
    layer, shape = L.SplitPrior(hidden=(6, 6), kernel_size=3), (2, 2, 4)
    p = layer.init(jax.random.PRNGKey(0), shape)  # zero-initialised last layer
    x = jax.random.normal(jax.random.PRNGKey(2), (3,) + shape)
    _, x2, eps2, log_prior = layer.split(p, x)
    np.testing.assert_array_equal(eps2, x2)
    np.testing.assert_allclose(log_prior, (-0.5 * x2**2 - 0.5 * math.log(2 * math.pi)).reshape(3, -1).sum(1), rtol=1e-12)


def test_glow_is_multiscale_and_inverts_both_ways():
    flow, p, x = _glow()
    assert any(isinstance(l, L.SplitPrior) for l in flow.layers)
    assert flow.shapes()[-1] == (1, 1, 8) and flow.latent_shape == (16,)  # 8 dims reach the end, 8 were factored out
    fwd, inv = jax.jit(flow.forward), jax.jit(flow.inverse)
    z, _ = fwd(p, x)
    assert z.shape == (5, 16)
    np.testing.assert_allclose(inv(p, z), x, atol=1e-8)
    z2 = jax.random.normal(jax.random.PRNGKey(9), (4, 16))
    np.testing.assert_allclose(fwd(p, inv(p, z2))[0], z2, atol=1e-8)
    # single-scale variant keeps every dimension to the end
    assert glow_flow((4, 4, 1), num_blocks=2, block_size=2, width=8, split_prior=False).latent_shape == (1, 1, 16)


def test_glow_energy_plus_normaliser_is_the_flow_log_density(model_and_brute):
    """-E(x) + sum_{S_l} log|det W| equals log N(z) + log|det dz/dx| from the brute (16 x 16) Jacobian."""
    flow, p, x = _glow()
    both = model_and_brute(flow, _normalised_energy(flow))
    for i in range(3):
        got, ref = both(p, x[i])
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    # the normaliser is exactly the ActNorm and 1x1-conv log-dets (numpy), nothing from couplings or priors
    want, shapes = 0.0, flow.shapes()
    for layer, q, s in zip(flow.layers, p, shapes):
        pixels = s[0] * s[1] if len(s) == 3 else 1
        if isinstance(layer, L.ActNorm):
            want += pixels * float(np.sum(q["s"]))
        elif isinstance(layer, L.Invertible1x1Conv):
            want += pixels * float(np.linalg.slogdet(np.asarray(q["w"]))[1])
    linear_logdet, energy = jax.jit(flow.linear_logdet), jax.jit(flow.energy)
    np.testing.assert_allclose(linear_logdet(p), want, rtol=1e-10)
    # and the split prior's log-density sits in the energy: it moves E when only the prior net changes
    k = next(i for i, l in enumerate(flow.layers) if isinstance(l, L.SplitPrior))
    q = list(p)
    q[k] = _perturb(p[k], jax.random.PRNGKey(7), 0.2)
    assert float(jnp.abs(energy(q, x) - energy(p, x)).max()) > 1e-3
    np.testing.assert_allclose(linear_logdet(q), linear_logdet(p), rtol=1e-12)


def test_glow_score_is_minus_energy_gradient():
    flow, p, x = _glow()
    full = jax.jit(jax.grad(lambda p, v: flow.log_prob(p, v).sum(), argnums=1))(p, x)
    np.testing.assert_allclose(jax.jit(flow.score)(p, x), full, rtol=1e-9, atol=1e-10)


def test_actnorm_data_init_gives_zero_mean_unit_variance_per_channel():
    layer = L.ActNorm()
    x = 3.0 + jnp.array([0.5, 4.0, 0.1]) * jax.random.normal(jax.random.PRNGKey(0), (64, 5, 5, 3))
    p = layer.data_init(layer.init(None, (5, 5, 3)), x)
    y, _ = layer.forward(p, x)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(layer.inverse(p, y), x, atol=1e-10)
    off = L.ActNorm(data_dependent=False)
    np.testing.assert_array_equal(off.data_init(off.init(None, (5, 5, 3)), x)["s"], 0.0)


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_glow_data_init_normalises_every_actnorm_on_the_first_batch():
    flow, _, _ = _glow()
    p = flow.init(jax.random.PRNGKey(0))
    x = 2.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(4), (50, 4, 4, 1))
    p = flow.data_init(p, x)
    h, seen = x, 0
    for layer, q in zip(flow.layers, p):
        if layer.factors_out:
            h = layer.split(q, h)[0]
            continue
        h, _ = layer.forward(q, h)
        if isinstance(layer, L.ActNorm):
            seen += 1
            np.testing.assert_allclose(h.mean(axis=(0, 1, 2)), 0.0, atol=1e-8)
            np.testing.assert_allclose(h.std(axis=(0, 1, 2)), 1.0, rtol=1e-5)
    assert seen == 4
    assert flow.has_data_init and not glow_flow((4, 4, 1), 2, 2, 8, actnorm_data_init=False).has_data_init


# ----------------------------------------------------------------- official coupling / prior nets
def _leaky(h):
    return np.where(h > 0, h, 0.1 * h)


def test_official_coupling_matches_its_formula_written_out():
    """y_b = x_b exp(s) + t, [raw, t] = exp(3 logs) * net(x_a), s = 2 tanh(raw / 2), net with LeakyReLU(0.1)."""
    layer, shape = L.AffineCoupling(hidden=(7,), log_scale="2tanh", activation="leaky_relu", out_scale=True), (6,)
    p = _perturb(layer.init(jax.random.PRNGKey(0), shape), jax.random.PRNGKey(1), 0.5)
    assert "scale" not in p and set(p) == {"net", "out_logs"}
    x = 2.0 * jax.random.normal(jax.random.PRNGKey(2), (4,) + shape)
    (w0, b0), (w1, b1) = [(np.asarray(q["w"]), np.asarray(q["b"])) for q in p["net"]]
    xa, xb = np.asarray(x[:, :3]), np.asarray(x[:, 3:])
    h = (_leaky(xa @ w0 + b0) @ w1 + b1) * np.exp(3.0 * np.asarray(p["out_logs"]))
    s, t = 2.0 * np.tanh(h[:, :3] / 2.0), h[:, 3:]
    y, ld = layer.forward(p, x)
    np.testing.assert_allclose(y, np.concatenate([xa, xb * np.exp(s) + t], axis=1), rtol=1e-12)
    np.testing.assert_allclose(ld, s.sum(1), rtol=1e-12)
    # the log-scale is bounded by 2 however large the net's output
    big = jax.tree_util.tree_map(lambda a: 100.0 * a, p)
    _, ld_big = layer.forward(big, x)
    assert float(jnp.abs(ld_big).max()) <= 2.0 * 3 + 1e-9


def test_official_glow_inverts_and_gives_the_brute_log_density(model_and_brute):
    """Official coupling nets: x -> z -> x, and -E + normaliser = log N(z) + slogdet of the brute 16 x 16 Jacobian
    (the default couplings are checked the same way above)."""
    ours = [l for l in glow_flow((4, 4, 1), 2, 2, 8).layers if isinstance(l, L.AffineCoupling)]
    assert [c.parity for c in ours] == [False, True] * 2 and all(c.log_scale == "scale_tanh" for c in ours)
    flow, p, x = _glow(coupling="official")
    couplings = [l for l in flow.layers if isinstance(l, L.AffineCoupling)]
    assert all(not c.parity and c.log_scale == "2tanh" and c.activation == "leaky_relu" and c.out_scale for c in couplings)
    assert all(l.activation == "relu" and l.out_scale for l in flow.layers if isinstance(l, L.SplitPrior))
    z, _ = jax.jit(flow.forward)(p, x)
    np.testing.assert_allclose(jax.jit(flow.inverse)(p, z), x, atol=1e-8)
    both = model_and_brute(flow, _normalised_energy(flow))
    for i in range(2):
        got, ref = both(p, x[i])
        np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_actnorm_logdet_is_input_independent():
    """Why ActNorm is in S_l (-log Z): the brute Jacobian's log-det is the same at very different inputs."""
    layer, shape = L.ActNorm(), (2, 2, 3)
    p = _perturb(layer.init(None, shape), jax.random.PRNGKey(0), 0.5)
    f = lambda v: layer.forward(p, v.reshape((1,) + shape))[0].reshape(-1)
    lds = [jnp.linalg.slogdet(jax.jacfwd(f)(v))[1] for v in (jnp.zeros(12), 50.0 * jax.random.normal(jax.random.PRNGKey(1), (12,)))]
    np.testing.assert_allclose(lds[0], lds[1], rtol=1e-12)
    np.testing.assert_allclose(lds[0], layer.const_logdet(p, shape), rtol=1e-12)
    np.testing.assert_array_equal(layer.forward(p, jnp.ones((2,) + shape))[1], 0.0)  # no energy term


def test_unknown_glow_coupling_options_are_named():
    with pytest.raises(ValueError, match="unknown Glow coupling 'nope'"):
        glow_flow((4, 4, 1), 2, 2, 8, coupling="nope")
    with pytest.raises(ValueError, match="activation 'gelu'"):
        L.AffineCoupling(activation="gelu").init(jax.random.PRNGKey(0), (4,))
    with pytest.raises(ValueError, match="log_scale 'exp'"):
        L.AffineCoupling(log_scale="exp").init(jax.random.PRNGKey(0), (4,))


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_frozen_actnorm_keeps_its_data_init_while_the_rest_trains():
    """actnorm_trainable=False (what the official Glow ran: its ActNorm tensors were never registered with torch):
    same density at the same params, but b, s (params and EMA) stay at their data init under ML, whose gradient
    reaches ActNorm through both the forward map and its log-det in -log Z; trainable ActNorm moves."""
    from ebflow.objectives import ObjectiveConfig
    from ebflow.training import init_state, make_optimizer, make_train_step

    x = 2.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(4), (8, 4, 4, 1))
    opt, moved = make_optimizer(1e-2), {}
    for trainable in (False, True):
        flow = glow_flow((4, 4, 1), 2, 2, 8, actnorm_trainable=trainable)
        step = make_train_step(flow, "ml", ObjectiveConfig(), opt)
        s0 = s = init_state(flow, jax.random.PRNGKey(0), opt, x)
        for k in range(3):
            s, _ = step(s, x, jax.random.PRNGKey(10 + k))
        moved[trainable] = [(isinstance(layer, L.ActNorm),
                             max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(q0), jax.tree_util.tree_leaves(q))),
                             max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(q0), jax.tree_util.tree_leaves(e))))
                            for layer, q0, q, e in zip(flow.layers, s0.params, s.params, s.ema_params) if jax.tree_util.tree_leaves(q0)]
        if not trainable:
            frozen_flow, p0 = flow, s0.params
    np.testing.assert_array_equal(jax.jit(frozen_flow.log_prob)(p0, x), jax.jit(flow.log_prob)(p0, x))
    for is_actnorm, dp, de in moved[False]:
        if is_actnorm:
            assert dp == 0.0 and de < 1e-8  # EMA d p + (1 - d) p of a constant p: rounding only
    assert all(dp > 1e-4 for is_actnorm, dp, _ in moved[False] if not is_actnorm)
    assert all(dp > 1e-4 for _, dp, _ in moved[True])
    assert sum(a for a, _, _ in moved[False]) == 4


def test_paper_glow_config_freezes_actnorm_and_refuses_weight_decay_on_it():
    import train
    assert train.parse_args(["--config", "paper-mnist-glow"]).glow_actnorm_trainable is False
    assert train.parse_args(["--config", "paper-mnist-glow", "--glow-actnorm-trainable"]).glow_actnorm_trainable
    with pytest.raises(ValueError, match="frozen ActNorm"):
        train.parse_args(["--config", "paper-mnist-glow", "--weight-decay", "1e-5"])
