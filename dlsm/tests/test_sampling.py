"""Samplers recover a Gaussian's moments; guidance by a zero classifier is unconditional sampling."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlsm import models, sampling
from dlsm.sde import VESDE

MU = jnp.array([3.0, -2.0])
S = 0.5


def gaussian_score(x, sigma):
    """Exact score of N(mu, S^2 I) perturbed by N(0, sigma^2 I)."""
    return (MU - x) / (S**2 + sigma[:, None] ** 2)


@pytest.mark.parametrize("method,n_corrector,dim", [("pc", 0, 2), ("ode", 0, 2), ("pc", 1, 64)])
def test_samplers_recover_gaussian_moments(method, n_corrector, dim):
    """Exact scores of N(mu, S^2 I): the samplers return its mean and std. sigma_max = 100 makes
    the VE prior N(0, sigma_max^2) a close match of the true marginal N(mu, S^2 + sigma_max^2).
    The Langevin corrector normalises its step by ||z|| / ||score||, which is only well behaved
    when norms concentrate, so it is tested in 64 dimensions."""
    mu = jnp.resize(MU, (dim,))
    score = lambda x, sigma: (mu - x) / (S**2 + sigma[:, None] ** 2)
    sde = VESDE(0.01, 100.0)
    x = sampling.sample(jax.random.PRNGKey(0), score, (2000, dim), sde, method, n_steps=400,
                        snr=0.16, n_corrector=n_corrector)
    x = np.asarray(x)
    np.testing.assert_allclose(x.mean(0), mu, atol=0.05)
    np.testing.assert_allclose(x.std(0), S, rtol=0.1)
    np.testing.assert_allclose(x.std(0).mean(), S, rtol=0.03 if n_corrector == 0 else 0.06)


def test_zero_classifier_guidance_is_unconditional():
    """A classifier with constant logits has grad log p(y|x) = 0: guided == unguided, bit for bit
    in the score and to float tolerance in the samples."""
    clf = models.ToyClassifierMLP(nf=2, num_classes=3)
    p = clf.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)), jnp.ones(2))
    p = jax.tree_util.tree_map(jnp.zeros_like, p)  # all-zero weights: logits identically 0
    logits = lambda x, s: clf.apply(p, x, s)
    sde = VESDE(0.01, 10.0)
    unguided = sampling.pc_sample(jax.random.PRNGKey(2), gaussian_score, (64, 2), sde, 50)
    for scale in (1.0, 5.0):
        g = sampling.guided_score(gaussian_score, logits, jnp.int32(1), scale)
        x = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
        s = jnp.full((16,), 0.7)
        np.testing.assert_array_equal(g(x, s), gaussian_score(x, s))
        a = sampling.pc_sample(jax.random.PRNGKey(2), g, (64, 2), sde, 50)
        np.testing.assert_allclose(a, unguided, rtol=1e-5, atol=1e-5)


def test_guidance_adds_scaled_classifier_gradient():
    """Non-trivial classifier: guided score = score + scale * grad log softmax_y (checked by hand)."""
    w = jnp.array([[1.0, -1.0], [0.5, 2.0]])
    logits = lambda x, s: x @ w  # linear 2-class logits
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
    s = jnp.ones(8)
    g = sampling.guided_score(gaussian_score, logits, jnp.int32(0), 3.0)(x, s)
    p = jax.nn.softmax(x @ w, -1)
    grad = w[:, 0][None] - p @ w.T  # d/dx log softmax_0 = w_0 - sum_k p_k w_k
    np.testing.assert_allclose(g, gaussian_score(x, s) + 3.0 * grad, rtol=1e-5, atol=1e-5)


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler"):
        sampling.sample(jax.random.PRNGKey(0), gaussian_score, (2, 2), VESDE(), "ddim")
