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


def test_ode_nll_delta_tol_controls_the_log_density_change():
    """delta_tol (RK45's own tolerance on each sample's log-density change, besides the joint norm over (x, change))
    takes more steps and brings a loosely solved NLL to the analytic one; the host loop takes the same steps."""
    d = 16
    x = STD * jax.random.normal(jax.random.PRNGKey(3), (8, d))
    var = STD**2 + SDE.sigma(1e-5) ** 2
    analytic = 0.5 * d * np.log(2 * np.pi * var) + np.sum(np.asarray(x) ** 2, 1) / (2 * var)
    nll_jit = jax.jit(S.ode_nll, static_argnames=("sde", "exact"))
    score, key = jax.tree_util.Partial(zero_mean_score), jax.random.PRNGKey(4)
    nll0, nfe0 = nll_jit(score, SDE, x, key, exact=True, rtol=1e-2, atol=1e-2)
    nll1, nfe1 = nll_jit(score, SDE, x, key, exact=True, rtol=1e-2, atol=1e-2, delta_tol=(0.0, 1e-4))
    err0, err1 = (float(np.max(np.abs(np.asarray(n) - analytic))) for n in (nll0, nll1))
    assert int(nfe1) > int(nfe0) and err1 < 0.05 and err0 > 1 and err1 < err0 / 100, (nfe0, nfe1, err0, err1)
    nllh, nfeh = S.ode_nll_host(score, SDE, x, key, exact=True, rtol=1e-2, atol=1e-2, delta_tol=(0.0, 1e-4))
    assert int(nfeh) == int(nfe1)
    np.testing.assert_allclose(nllh, nll1, rtol=1e-5, atol=1e-4)


def test_rk45_integrates_exponential_and_counts_nfe():
    y, nfe = S.odeint_rk45(lambda t, y: -y, jnp.ones(3), 0.0, 2.0, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(y, np.exp(-2.0), rtol=1e-5)
    assert int(nfe) % 6 == 2 and int(nfe) > 8  # scipy's count: f(t0), the initial-step probe, 6 per attempt
    # tighter tolerance needs more evaluations
    _, nfe_loose = S.odeint_rk45(lambda t, y: -y, jnp.ones(3), 0.0, 2.0, rtol=1e-2, atol=1e-2)
    assert int(nfe_loose) < int(nfe)


def test_rk45_step_cap_stops_short_and_reports_where():
    """max_steps bounds the attempted steps (NFE 2 + 6 max_steps) and return_t says the solve stopped before t1;
    the capped state is the solution at that t. image_score_check.py's rk45_sample turns that into a
    'cap hit' row without P / R, and gives the full solve's samples and NFE when the cap is not reached."""
    f = lambda t, y: -y  # noqa: E731
    y, nfe, t = S.odeint_rk45(f, jnp.ones(3), 0.0, 2.0, rtol=1e-6, atol=1e-8, max_steps=3, return_t=True)
    assert int(nfe) == 2 + 6 * 3 and 0.0 < float(t) < 2.0
    np.testing.assert_allclose(y, np.exp(-float(t)), rtol=1e-5)
    y, nfe_full, t = S.odeint_rk45(f, jnp.ones(3), 0.0, 2.0, rtol=1e-6, atol=1e-8, return_t=True)
    assert float(t) == 2.0 and int(nfe_full) > 2 + 6 * 3

    import importlib.util
    import os

    from jax.tree_util import Partial

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                        "image_score_check.py")
    spec = importlib.util.spec_from_file_location("image_score_check", path)
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    x_init = SDE.sigma_max * jax.random.normal(jax.random.PRNGKey(0), (64, 1, 1, 1))
    key, score = jax.random.PRNGKey(1), Partial(gaussian_score)
    x, info = check.rk45_sample(score, SDE, key, x_init, 2000)
    assert not info["cap_hit"] and x.shape == x_init.shape and abs(float(jnp.mean(x)) - MU) < 0.3
    full = info["nfe"]
    x, info = check.rk45_sample(score, SDE, key, x_init, 4)
    assert x is None and info["cap_hit"] and info["nfe"] == 2 + 6 * 4 < full
    assert 1e-5 < info["t_end"] < 1.0 and np.isclose(info["sigma_end"], float(SDE.sigma(info["t_end"])))


def test_rk45_host_loop_takes_the_jitted_loops_steps():
    """ode_sample_host with RK45 (the solver's loop on the host: image_score_check.py's default, CSBM's in
    train.image_sampler) gives the samples, NFE and end time of the lax.while_loop solve, capped and uncapped."""
    x_init = SDE.sigma_max * jax.random.normal(jax.random.PRNGKey(0), (64, 2, 2, 1))
    score = jax.tree_util.Partial(gaussian_score)
    ode_sample = jax.jit(S.ode_sample, static_argnames=("sde", "shape", "method", "denoise", "return_t"))
    for cap in (4, 2000):
        kw = dict(rtol=1e-4, atol=1e-6, denoise=True, x_init=x_init, max_steps=cap, return_t=True)
        x, nfe, t = ode_sample(score, SDE, jax.random.PRNGKey(1), x_init.shape, **kw)
        xh, nfeh, th = S.ode_sample_host(score, SDE, jax.random.PRNGKey(1), x_init.shape, **kw)
        assert int(nfeh) == int(nfe) and float(th) == float(t)
        np.testing.assert_allclose(xh, x, rtol=1e-6, atol=1e-6)
    assert int(nfe) > 2 + 6 * 4 and float(t) < 1e-4  # the uncapped solve reached t = eps


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_fixed_step_host_loop_takes_the_jitted_loops_steps(method):
    """ode_sample_host with Euler / RK4 (one jitted step per host iteration) gives the fori_loop's samples from the
    key's start x(1), and its NFE."""
    score = jax.tree_util.Partial(gaussian_score)
    ode_sample = jax.jit(S.ode_sample, static_argnames=("sde", "shape", "method", "denoise", "return_t"))
    shape = (64, 2, 2, 1)
    x, nfe = ode_sample(score, SDE, jax.random.PRNGKey(2), shape, method=method, n_steps=7)
    xh, nfeh = S.ode_sample_host(score, SDE, jax.random.PRNGKey(2), shape, method=method, n_steps=7)
    assert int(nfeh) == int(nfe) == 7 * (1 if method == "euler" else 4)
    assert float(jnp.max(jnp.abs(xh - SDE.sigma_max * jax.random.normal(jax.random.PRNGKey(2), shape)))) > 1.0
    np.testing.assert_allclose(xh, x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("exact,method", [(True, "rk45"), (False, "rk45"), (False, "euler")])
def test_nll_host_loop_takes_the_jitted_loops_steps(exact, method):
    """ode_nll_host (train.py's image NLL for CSBM) gives ode_nll's NLL and NFE, exact and Hutchinson divergence."""
    score = jax.tree_util.Partial(gaussian_score)
    x = MU + STD * jax.random.normal(jax.random.PRNGKey(5), (32, 2))
    nll_jit = jax.jit(S.ode_nll, static_argnames=("sde", "exact", "method"))
    nll, nfe = nll_jit(score, SDE, x, jax.random.PRNGKey(6), exact=exact, method=method, n_steps=20)
    nllh, nfeh = S.ode_nll_host(score, SDE, x, jax.random.PRNGKey(6), exact=exact, method=method, n_steps=20)
    assert int(nfeh) == int(nfe) and nllh.shape == (32,)
    np.testing.assert_allclose(nllh, nll, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n_corrector,denoise", [(1, True), (2, False)])
def test_pc_host_loop_takes_the_scans_steps(n_corrector, denoise):
    """pc_sample_host (one jitted step per noise level, image_score_check.py's default) gives the samples of the
    lax.scan sampler for the same key, and moves them: a different key gives different samples."""
    score = jax.tree_util.Partial(gaussian_score)
    shape = (64, 2, 2, 1)
    pc = jax.jit(S.pc_sample, static_argnames=("sde", "shape", "n_steps", "n_corrector", "denoise"))
    x = pc(score, SDE, jax.random.PRNGKey(3), shape, n_steps=20, n_corrector=n_corrector, denoise=denoise)
    xh = S.pc_sample_host(score, SDE, jax.random.PRNGKey(3), shape, n_steps=20, n_corrector=n_corrector,
                          denoise=denoise)
    assert xh.shape == shape and float(jnp.std(xh)) > 0.1
    np.testing.assert_allclose(np.asarray(xh), np.asarray(x), rtol=1e-5, atol=1e-5)
    other = S.pc_sample_host(score, SDE, jax.random.PRNGKey(4), shape, n_steps=20, n_corrector=n_corrector,
                             denoise=denoise)
    assert float(jnp.max(jnp.abs(other - x))) > 0.1


def test_bits_per_dim():
    # uniform density on [0, 1]^D has nll 0 -> bits/dim = log2(n_bins)
    assert np.isclose(S.bits_per_dim(0.0, 10, 256), 8.0)


def test_ode_denoise_step_is_the_official_noise_removal():
    """The official ODE samplers end with one reverse-diffusion step at t = eps without noise, whose sigma is
    sigma_min: x + sigma_min^2 s(x, eps). For data N(mu, std^2) the ODE ends at N(mu, std^2 + sigma_min^2) and
    the step maps it to N(mu, std^4 / (std^2 + sigma_min^2)); a start x_init replaces the key's draw."""
    sde = VESDE(0.3, 20.0)
    std = 0.5

    def score(x, t):
        var = std**2 + sde.sigma(t) ** 2
        return -(x - MU) / var.reshape((-1,) + (1,) * (x.ndim - 1))

    run = jax.jit(lambda k, x0, d: S.ode_sample(score, sde, k, (20000, 1), rtol=1e-5, atol=1e-5, denoise=d,
                                                x_init=x0), static_argnames="d")
    x0 = sde.sigma_max * jax.random.normal(jax.random.PRNGKey(5), (20000, 1))
    x_raw, nfe_raw = run(jax.random.PRNGKey(0), x0, False)
    x_den, nfe_den = run(jax.random.PRNGKey(1), x0, True)  # another key: x_init decides the start
    var = std**2 + 0.3**2
    assert abs(float(np.std(x_raw)) - np.sqrt(var)) < 0.02 * np.sqrt(var)
    assert abs(float(np.std(x_den)) - std**2 / np.sqrt(var)) < 0.02 * std**2 / np.sqrt(var)
    assert abs(float(np.mean(x_den)) - MU) < 0.02
    np.testing.assert_allclose(np.asarray(x_den), np.asarray(S.denoise_step(score, sde, x_raw)),
                               rtol=1e-6, atol=1e-6)
    assert int(nfe_raw) == int(nfe_den)  # the noise-removal evaluation is not in the solver's NFE


def test_rk45_matches_scipy_solve_ivp_on_the_probability_flow_ode():
    """The official code samples with scipy's solve_ivp(RK45) and reports its nfev as the NFE: on the VE
    probability-flow ODE of a two-Gaussian mixture (t = 1 -> 1e-5) the JAX solver takes the same steps
    (same NFE at every tolerance) and lands on the same solution."""
    from scipy.integrate import solve_ivp

    sde = VESDE(0.01, 10.0)
    means, var0 = np.array([-1.0, 1.0]), 0.1**2

    def mix_score(x, sig, xp):
        v = var0 + sig**2
        logits = -((x[..., None] - means) ** 2) / (2 * v)
        w = xp.exp(logits - logits.max(-1, keepdims=True))
        return (w / w.sum(-1, keepdims=True) * (-(x[..., None] - means) / v)).sum(-1)

    def drift_np(t, x):
        return -0.5 * float(sde.g2(t)) * mix_score(x, float(sde.sigma(t)), np)

    def drift_jax(t, x):
        return -0.5 * sde.g2(t) * mix_score(x, sde.sigma(t), jnp)

    x1 = 10.0 * np.random.default_rng(0).normal(size=16)
    for rtol, atol in [(1e-2, 1e-4), (1e-3, 1e-5), (1e-4, 1e-6)]:
        ref = solve_ivp(drift_np, (1.0, 1e-5), x1, method="RK45", rtol=rtol, atol=atol)
        x0, nfe = S.odeint_rk45(drift_jax, jnp.asarray(x1, jnp.float32), 1.0, 1e-5, rtol, atol)
        assert int(nfe) == ref.nfev, (rtol, int(nfe), ref.nfev)
        np.testing.assert_allclose(np.asarray(x0), ref.y[:, -1], atol=1e-4)
