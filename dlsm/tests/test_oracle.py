"""The oracle: closed-form Gaussian-mixture scores equal autodiff of the closed-form log-density."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlsm.oracle import GaussianMixture, batched


def small_mixture():
    means = np.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.0], [1.0, -2.0]], np.float32)
    stds = np.array([0.5, 0.3, 0.8, 0.4], np.float32)
    w = np.array([0.1, 0.4, 0.3, 0.2])
    return GaussianMixture(means, stds, np.log(w).astype(np.float32), np.array([0, 1, 0, 1]))


@pytest.mark.parametrize("sigma", [0.05, 0.7, 3.0])
def test_scores_match_autodiff(sigma):
    gm = small_mixture()
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 2)) * 2.0
    auto_prior = jax.vmap(jax.grad(lambda a: gm.log_prob(a[None], sigma)[0]))(x)
    np.testing.assert_allclose(gm.score(x, sigma), auto_prior, rtol=1e-4, atol=1e-4)
    for c in (0, 1):
        auto_post = jax.vmap(jax.grad(lambda a: gm.log_prob(a[None], sigma, c)[0]))(x)
        np.testing.assert_allclose(gm.score(x, sigma, c), auto_post, rtol=1e-4, atol=1e-4)
        # likelihood score = grad log p(y|x~), from the closed-form class posterior
        auto_lik = jax.vmap(jax.grad(lambda a: gm.log_posterior_class(a[None], sigma)[0, c]))(x)
        np.testing.assert_allclose(gm.likelihood_score(x, sigma, c), auto_lik, rtol=1e-3, atol=1e-3)


def test_class_posterior_normalised_and_bayes():
    gm = small_mixture()
    x = jax.random.normal(jax.random.PRNGKey(1), (32, 2))
    lp = gm.log_posterior_class(x, 0.5)
    np.testing.assert_allclose(jnp.exp(lp).sum(-1), 1.0, rtol=1e-5)
    # p(x) = sum_y p(y) p(x|y)
    prior = gm.class_log_prior()
    mix = jax.scipy.special.logsumexp(jnp.stack([gm.log_prob(x, 0.5, c) + prior[c] for c in (0, 1)], -1), -1)
    np.testing.assert_allclose(mix, gm.log_prob(x, 0.5), rtol=1e-5, atol=1e-5)


def test_empirical_mixture_and_batched():
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    gm = GaussianMixture.from_data(x, y)
    q = np.random.default_rng(1).normal(size=(37, 2)).astype(np.float32)
    full = np.asarray(gm.score(jnp.asarray(q), 0.3))
    np.testing.assert_allclose(batched(lambda a: gm.score(a, 0.3), q, batch=8), full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="from_data"):
        GaussianMixture.from_data(x, y[:10])


def test_oracle_score_errors_zero_for_the_oracle_and_exact_for_zero_guidance():
    """metrics.oracle_score_errors (the 2-D score-error evaluation of train.py and
    benchmarks/heldout_scores_2d.py): the oracle's own score model and classifier score 0 error; a
    classifier with constant logits (g = 0) has likelihood error sigma * E||grad log p(y|x~)||, and
    guidance x2 with the oracle classifier the same error again (2g - g = g)."""
    from dlsm import metrics

    gm = small_mixture()
    rng = np.random.default_rng(0)
    pts = gm.means[rng.integers(0, 4, 200)] + 0.3 * rng.standard_normal((200, 2)).astype(np.float32)
    labels = gm.labels[np.argmin(((pts[:, None] - gm.means[None]) ** 2).sum(-1), 1)]
    sig = np.array([0.1, 1.0])
    zs = [rng.standard_normal(pts.shape).astype(np.float32) for _ in sig]
    score_fn = lambda x, s: gm.score(x, s[0])
    oracle_clf = lambda x, s: gm.log_posterior_class(x, s[0])
    zero_clf = lambda x, s: jnp.zeros((x.shape[0], 2))
    curves = metrics.oracle_score_errors(pts, labels, zs, sig, gm, score_fn,
                                         [("oracle", oracle_clf, 1.0), ("zero", zero_clf, 1.0), ("x2", oracle_clf, 2.0)],
                                         progress=False)
    assert np.max(curves["score model (prior)"]["prior"]) < 1e-4
    assert np.max(curves["oracle"]["likelihood"]) < 1e-3 and np.max(curves["oracle"]["posterior"]) < 1e-3
    for i, sg in enumerate(sig):
        xq = pts + sg * zs[i]
        lik = np.zeros_like(xq)
        for c in (0, 1):  # on all points (one shape, ops compiled once), kept where the label is c
            lik[labels == c] = np.asarray(gm.likelihood_score(jnp.asarray(xq), sg, c))[labels == c]
        want = sg * np.mean(np.linalg.norm(lik, axis=1))
        assert want > 1e-3  # the classes overlap: a non-trivial likelihood score
        assert curves["zero"]["likelihood"][i] == pytest.approx(want, rel=1e-3)
        assert curves["x2"]["likelihood"][i] == pytest.approx(want, rel=1e-3)
    with pytest.raises(ValueError, match="one noise array"):
        metrics.oracle_score_errors(pts, labels, zs[:1], sig, gm, score_fn, [], progress=False)
