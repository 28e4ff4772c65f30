"""Samplers and the ODE likelihood on Gaussians, where the score of every perturbed marginal is exact."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qcsbm import sampling as S
from qcsbm.sde import VESDE

# Large sigma_max: the prior N(0, sigma_max^2) nearly matches the perturbed data marginal at t = 1
# (exactly for zero-mean data, which the likelihood tests use).
SDE = VESDE(0.01, 20.0)
MU, STD = 0.5, 0.5


def gaussian_score(x, t, mu=MU, std=STD):
    # data N(mu, std^2) perturbed by N(0, sigma(t)^2): score = -(x - mu) / (std^2 + sigma^2)
    var = std**2 + SDE.sigma(t) ** 2
    return -(x - mu) / var.reshape((-1,) + (1,) * (x.ndim - 1))


def test_vesde_sigma_and_g2():
    assert np.isclose(SDE.sigma(0.0), 0.01) and np.isclose(SDE.sigma(1.0), 20.0)
    t, h = 0.37, 1e-4
    fd = (SDE.sigma(t + h) ** 2 - SDE.sigma(t - h) ** 2) / (2 * h)
    assert np.isclose(SDE.g2(t), fd, rtol=1e-5)
    with pytest.raises(ValueError):
        VESDE(1.0, 0.5)


@pytest.mark.parametrize("sampler", ["pc", "rk45", "rk4"])
def test_samplers_recover_1d_gaussian_moments(sampler):
    key = jax.random.PRNGKey(0)
    n = 4000
    if sampler == "pc":
        x = jax.jit(lambda k: S.pc_sample(gaussian_score, SDE, k, (n, 1), n_steps=300))(key)
    else:
        x, nfe = jax.jit(lambda k: S.ode_sample(gaussian_score, SDE, k, (n, 1), method=sampler, n_steps=100))(key)
        assert int(nfe) > 0
    x = np.asarray(x)[:, 0]
    assert abs(x.mean() - MU) < 4 * STD / np.sqrt(n) + 0.02
    assert abs(x.std() - STD) < 0.05 * STD


def test_fixed_step_ode_takes_a_traced_step_count():
    """One compiled Euler program (n_steps a traced argument) serves every step count: more steps move the
    sample moments towards the data's, and the NFE it reports is the step count."""
    run = jax.jit(lambda k, n: S.ode_sample(gaussian_score, SDE, k, (4000, 1), method="euler", n_steps=n))
    errs = []
    for n in (5, 50, 400):
        x, nfe = run(jax.random.PRNGKey(0), n)
        assert int(nfe) == n
        x = np.asarray(x)[:, 0]
        errs.append(abs(x.mean() - MU) + abs(x.std() - STD))
    assert errs[2] < errs[0] and errs[2] < 0.05, errs
    assert run._cache_size() == 1


def zero_mean_score(x, t):
    return gaussian_score(x, t, mu=0.0)


def test_ode_nll_of_gaussian_matches_analytic_exact_divergence():
    d = 2
    x = STD * jax.random.normal(jax.random.PRNGKey(1), (500, d))
    nll, nfe = jax.jit(lambda x, k: S.ode_nll(zero_mean_score, SDE, x, k, exact=True, rtol=1e-5, atol=1e-5))(
        x, jax.random.PRNGKey(2))
    var = STD**2 + SDE.sigma(1e-5) ** 2  # the ODE starts at t = eps
    analytic = 0.5 * d * np.log(2 * np.pi * var) + np.sum(np.asarray(x) ** 2, 1) / (2 * var)
    np.testing.assert_allclose(np.asarray(nll), analytic, rtol=2e-3, atol=2e-3)


def test_ode_nll_hutchinson_is_unbiased_in_higher_dimension():
    d = 16
    x = STD * jax.random.normal(jax.random.PRNGKey(3), (400, d))
    nll, _ = jax.jit(lambda x, k: S.ode_nll(zero_mean_score, SDE, x, k, exact=False, rtol=1e-5, atol=1e-5))(
        x, jax.random.PRNGKey(4))
    var = STD**2 + SDE.sigma(1e-5) ** 2
    analytic = 0.5 * d * np.log(2 * np.pi * var) + np.sum(np.asarray(x) ** 2, 1) / (2 * var)
    diff = np.asarray(nll) - analytic
    assert abs(diff.mean()) < 5 * diff.std() / np.sqrt(len(diff)) + 1e-2


def test_rk45_integrates_exponential_and_counts_nfe():
    y, nfe = S.odeint_rk45(lambda t, y: -y, jnp.ones(3), 0.0, 2.0, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(y, np.exp(-2.0), rtol=1e-5)
    assert int(nfe) % 6 == 1 and int(nfe) > 7
    # tighter tolerance needs more evaluations
    _, nfe_loose = S.odeint_rk45(lambda t, y: -y, jnp.ones(3), 0.0, 2.0, rtol=1e-2, atol=1e-2)
    assert int(nfe_loose) < int(nfe)


def test_bits_per_dim():
    # uniform density on [0, 1]^D has nll 0 -> bits/dim = log2(n_bins)
    assert np.isclose(S.bits_per_dim(0.0, 10, 256), 8.0)
