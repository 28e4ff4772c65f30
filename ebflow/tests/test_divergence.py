"""Toy metrics: KL / Fisher divergence estimators and the exact smoothed toy densities."""
import numpy as np
import pytest

from ebflow import data as D
from ebflow import toy_density as T
from ebflow.divergence import fisher_divergence, gaussian_fisher, gaussian_kl, kl_divergence


def _gauss_logp_score(x, m, c):
    ci = np.linalg.inv(c)
    d = x - m
    logp = -0.5 * np.einsum("ni,ij,nj->n", d, ci, d) - 0.5 * (len(m) * np.log(2 * np.pi) + np.linalg.slogdet(c)[1])
    return logp, -d @ ci.T


M1, C1 = np.array([0.5, -1.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
M2, C2 = np.array([0.0, 0.2]), np.array([[2.0, -0.4], [-0.4, 1.0]])


def test_divergences_of_a_density_with_itself_are_zero():
    x = np.random.default_rng(0).multivariate_normal(M1, C1, 1000)
    lp, sp = _gauss_logp_score(x, M1, C1)
    assert kl_divergence(lp, lp)[0] == 0.0
    assert fisher_divergence(sp, sp)[0] == 0.0
    assert gaussian_kl(M1, C1, M1, C1) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_fisher(M1, C1, M1, C1) == pytest.approx(0.0, abs=1e-12)


def test_monte_carlo_estimates_match_gaussian_closed_forms():
    x = np.random.default_rng(1).multivariate_normal(M1, C1, 400_000)
    lp, sp = _gauss_logp_score(x, M1, C1)
    lq, sq = _gauss_logp_score(x, M2, C2)
    kl, kl_se = kl_divergence(lp, lq)
    fd, fd_se = fisher_divergence(sp, sq)
    kl_true, fd_true = gaussian_kl(M1, C1, M2, C2), gaussian_fisher(M1, C1, M2, C2)
    assert kl_true > 0.3 and fd_true > 0.3  # a pair far enough apart that the check is not vacuous
    assert abs(kl - kl_true) < 4 * kl_se + 1e-3, (kl, kl_true, kl_se)
    assert abs(fd - fd_true) < 4 * fd_se + 1e-3, (fd, fd_true, fd_se)


def test_fisher_closed_form_one_dimensional():
    # N(0, 1) vs N(mu, 1): s_p - s_q = -mu, so F = mu^2 / 2
    assert gaussian_fisher([0.0], [[1.0]], [1.5], [[1.0]]) == pytest.approx(1.5**2 / 2)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="shape"):
        fisher_divergence(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="unknown toy dataset"):
        T.log_density("spiral", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        T.log_density("sine", np.zeros((2, 3)))


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
@pytest.mark.parametrize("name", D.TOY_DATASETS)
def test_toy_density_is_normalised_and_matches_its_sampler(name):
    """The exact density integrates to 1 on a grid, and its grid moments equal the sampler's."""
    # h = 0.25 < smoothing 0.375: the Riemann sum of a density blurred by a Gaussian of that width is exact to
    # far below the 2e-3 tolerance (aliasing error ~ exp(-2 pi^2 s^2 / h^2) ~ 1e-19), at a quarter of the points
    g = np.linspace(-11.0, 11.0, 89)
    h = g[1] - g[0]
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    logp, sc = T.oracle(name, pts, nodes=1000)
    p = np.exp(logp)
    assert np.all(np.isfinite(logp)) and np.all(np.isfinite(sc))
    assert p.sum() * h * h == pytest.approx(1.0, abs=2e-3)
    x = D.toy_batch(name, 100_000, np.random.default_rng(0))
    for f in (lambda z: z[:, 0], lambda z: z[:, 1], lambda z: z[:, 0] ** 2, lambda z: z[:, 1] ** 2, lambda z: z[:, 0] * z[:, 1]):
        grid_mean = (p * f(pts)).sum() * h * h
        fx = f(x)
        assert abs(fx.mean() - grid_mean) < 5 * fx.std() / np.sqrt(len(x)) + 2e-2, (name, fx.mean(), grid_mean)


@pytest.mark.parametrize("name", ["sine", "checkerboard"])
def test_toy_score_is_the_gradient_and_finite_in_the_tails(name):
    x = np.array([[0.3, -0.7], [2.0, 1.0], [30.0, -25.0]])
    e = 1e-5
    shifts = [np.zeros(2), [e, 0], [-e, 0], [0, e], [0, -e]]
    logp, sc = T.oracle(name, np.concatenate([x + np.asarray(d) for d in shifts]))  # one compile
    logp, sc = logp.reshape(5, 3), sc.reshape(5, 3, 2)
    assert np.all(np.isfinite(logp)) and np.all(np.isfinite(sc))
    np.testing.assert_allclose((logp[1] - logp[2]) / (2 * e), sc[0, :, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose((logp[3] - logp[4]) / (2 * e), sc[0, :, 1], rtol=1e-4, atol=1e-5)


def test_multimodal10_equals_its_gaussian_mixture():
    x = np.random.default_rng(2).normal(size=(50, 2)) * 3
    ang = 2 * np.pi * np.arange(10) / 10
    mu = 3.0 * np.stack([np.cos(ang), np.sin(ang)], 1)
    var = 0.3**2 + 0.375**2
    dens = np.mean(np.exp(-((x[:, None] - mu[None]) ** 2).sum(-1) / (2 * var)) / (2 * np.pi * var), 1)
    np.testing.assert_allclose(np.exp(T.oracle("multimodal10", x)[0]), dens, rtol=1e-10)
