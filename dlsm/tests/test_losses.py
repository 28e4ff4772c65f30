"""Losses: the DLSM minimiser is the oracle classifier; gradients vs finite differences; short runs learn."""
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from dlsm import losses, models, steps
from dlsm.oracle import GaussianMixture
from dlsm.sde import VESDE


def mixture():
    means = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5], [0.0, -2.5]], np.float32)
    stds = np.full(4, 0.6, np.float32)
    return GaussianMixture(means, stds, np.log(np.full(4, 0.25, np.float32)), np.array([0, 0, 1, 1]))


def draw(gm, n, key):
    k1, k2 = jax.random.split(key)
    comp = jax.random.randint(k1, (n,), 0, 4)
    x = jnp.asarray(gm.means)[comp] + jax.random.normal(k2, (n, 2)) * jnp.asarray(gm.stds)[comp][:, None]
    return x, jnp.asarray(gm.labels)[comp]


@pytest.mark.parametrize("weighting", [1.0, 2.0])
def test_oracle_classifier_minimises_dlsm(weighting):
    """With the oracle as frozen score model, perturbing the oracle classifier's logits raises
    a fixed-sample estimate of L_DLSM (Theorem 1: its minimiser is the true likelihood score)."""
    gm = mixture()
    n = 40000
    x, y = draw(gm, n, jax.random.PRNGKey(0))
    data_gm = GaussianMixture(gm.means, gm.stds, gm.log_weights, gm.labels)
    sigma = VESDE(0.1, 5.0).sigma(jax.random.uniform(jax.random.PRNGKey(1), (n,)))
    z = jax.random.normal(jax.random.PRNGKey(2), (n, 2))

    def oracle_score(xt, s):  # per-example sigma: vmap the closed form
        return jax.vmap(lambda a, b: data_gm.score(a[None], b)[0])(xt, s)

    def oracle_logits(xt, s):
        return jax.vmap(lambda a, b: data_gm.log_posterior_class(a[None], b)[0])(xt, s)

    base = float(losses.dlsm_loss_fixed(oracle_logits, oracle_score, x, y, sigma, z, weighting))
    perturbations = [
        lambda a: 0.5 * jnp.sin(a[:, 0]),
        lambda a: 0.3 * a[:, 1],
        lambda a: -0.4 * jnp.tanh(a[:, 0] * a[:, 1]),
    ]
    for eps in (0.25, -0.25, 1.0):
        for f in perturbations:
            pert = lambda xt, s, f=f: oracle_logits(xt, s).at[:, 0].add(eps * f(xt))
            val = float(losses.dlsm_loss_fixed(pert, oracle_score, x, y, sigma, z, weighting))
            assert val > base, (eps, val, base)


def test_likelihood_score_matches_finite_differences():
    clf = models.ToyClassifierMLP(nf=4, num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 2)) * 3
    s = jnp.full((5,), 0.7)
    y = jnp.array([0, 1, 2, 1, 0])
    p = clf.init(jax.random.PRNGKey(1), x, s)
    fn = lambda xx, ss: clf.apply(p, xx, ss)
    g = losses.likelihood_score(fn, x, s, y)
    logp = lambda xx: jnp.take_along_axis(jax.nn.log_softmax(fn(xx, s), -1), y[:, None], -1)[:, 0]
    h = 1e-2
    for d in range(2):
        e = jnp.zeros_like(x).at[:, d].set(h)
        fd = (logp(x + e) - logp(x - e)) / (2 * h)
        np.testing.assert_allclose(g[:, d], fd, rtol=2e-2, atol=2e-3)


def test_dsm_gradient_matches_finite_differences():
    """The DSM loss along a random direction of the parameters: autodiff vs central differences (float64)."""
    with jax.enable_x64(True):
        m = models.ToyScoreMLP(nf=2)
        x = jax.random.normal(jax.random.PRNGKey(0), (64, 2), jnp.float64)
        p = m.init(jax.random.PRNGKey(1), x, jnp.ones(64, jnp.float64))
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), p)
        sde = VESDE(0.1, 5.0)
        key = jax.random.PRNGKey(2)
        flat, unravel = jax.flatten_util.ravel_pytree(p)
        loss = lambda v: losses.dsm_loss(lambda a, s: m.apply(unravel(v), a, s), x, key, sde, 1.0)
        f = jax.jit(loss)  # compiled: one program each instead of one per float64 op
        d = jax.random.normal(jax.random.PRNGKey(3), flat.shape, jnp.float64)
        # the Fourier frequencies of the sigma embedding are fixed (stop_gradient): not a direction
        frozen = jax.tree_util.tree_map_with_path(
            lambda path, a: jnp.full(a.shape, "GaussianFourierProjection" in jax.tree_util.keystr(path)), p)
        d = jnp.where(jax.flatten_util.ravel_pytree(frozen)[0] > 0, 0.0, d)
        d = d / jnp.linalg.norm(d)
        auto = jnp.dot(jax.jit(jax.grad(loss))(flat), d)
        h = 1e-4
        fd = (f(flat + h * d) - f(flat - h * d)) / (2 * h)
        np.testing.assert_allclose(auto, fd, rtol=1e-4, atol=1e-7)


def test_short_runs_learn():
    """300 DSM steps lower the score loss; 200 DLSM+CE steps lower the classifier loss and classify."""
    gm = mixture()
    x, y = draw(gm, 4096, jax.random.PRNGKey(0))
    sde = VESDE(0.05, 8.0)
    m = models.ToyScoreMLP(nf=4)
    p = m.init(jax.random.PRNGKey(1), x[:2], jnp.ones(2))
    opt = steps.make_optimizer(3e-3)
    st = opt.init(p)
    step = steps.make_score_step(m, sde, opt)
    key = jax.random.PRNGKey(3)
    dsm = jax.jit(lambda pp: losses.dsm_loss(lambda a, s: m.apply(pp, a, s), x, jax.random.PRNGKey(9), sde))
    eval_loss = lambda pp: float(dsm(pp))
    before = eval_loss(p)
    for i in range(300):
        key, k = jax.random.split(key)
        p, st, _ = step(p, st, x[(i * 256) % 4096 : (i * 256) % 4096 + 256], k)
    after = eval_loss(p)
    assert after < 0.8 * before, (before, after)

    clf = models.ToyClassifierMLP(nf=4, num_classes=2)
    cp = clf.init(jax.random.PRNGKey(4), x[:2], jnp.ones(2))
    copt = steps.make_optimizer(3e-3)
    cst = copt.init(cp)
    cstep = steps.make_classifier_step(clf, m, sde, copt, "total", 1.0, 0.0, 1.0)
    ev = jax.jit(lambda cc: losses.classifier_loss(lambda a, s: clf.apply(cc, a, s), lambda a, s: m.apply(p, a, s), x, y,
                                                   jax.random.PRNGKey(7), sde, "total", 1.0, 0.0, 1.0))
    l0, _ = ev(cp)
    for i in range(200):
        key, k = jax.random.split(key)
        sl = slice((i * 256) % 4096, (i * 256) % 4096 + 256)
        cp, cst, _, _ = cstep(cp, cst, p, x[sl], y[sl], k)
    l1, aux = ev(cp)
    assert float(l1) < float(l0)
    clean = clf.apply(cp, x, jnp.full((len(x),), 0.05)).argmax(-1)
    assert float(jnp.mean(clean == y)) > 0.9


def test_unknown_loss_type():
    with pytest.raises(ValueError, match="unknown classifier loss"):
        losses.classifier_loss(None, None, jnp.zeros((2, 2)), jnp.zeros(2, jnp.int32), jax.random.PRNGKey(0),
                               VESDE(), "hinge")


@pytest.mark.background
def test_dlsm_reduce_mean_is_sum_over_dims():
    """Official reduction (torch.mean over batch and data dims) = our summed residual / D."""
    um = models.ScoreUNet(ch=8, ch_mult=(1,), num_res_blocks=1)
    cm = models.ResNetCond(num_classes=3, nf=8, stage_sizes=(1,))
    x = jax.random.uniform(jax.random.PRNGKey(0), (6, 4, 4, 1))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    s = jnp.ones(6)
    up, cp = jax.jit(um.init)(jax.random.PRNGKey(1), x, s), jax.jit(cm.init)(jax.random.PRNGKey(2), x, s)
    args = (lambda a, b: cm.apply(cp, a, b), lambda a, b: um.apply(up, a, b), x, y, jax.random.PRNGKey(3), VESDE(0.01, 10.0))
    # the three losses in one compiled program (op by op, each U-Net / ResNet op would compile on its own)
    (mean, _), (summed, _), (tot, aux) = jax.jit(lambda: (losses.classifier_loss(*args, "dlsm", 0.0, 0.0, 1.0, True),
                                                          losses.classifier_loss(*args, "dlsm", 0.0, 0.0, 1.0, False),
                                                          losses.classifier_loss(*args, "total", 0.0, 0.0, 0.5, True)))()
    np.testing.assert_allclose(float(summed), 16 * float(mean), rtol=1e-5)
    np.testing.assert_allclose(float(tot), float(mean) + 0.5 * float(aux["ce"]), rtol=1e-5)
