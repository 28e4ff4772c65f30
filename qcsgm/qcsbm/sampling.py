"""Samplers and likelihood for the VE SDE.

- Predictor-corrector (PC) sampler: reverse-diffusion predictor + Langevin corrector (snr 0.16).
- Probability-flow ODE  dx/dt = -1/2 g(t)^2 s(x, t), solved with adaptive Dormand-Prince RK45
  (the paper's solver: its NFE is part of the claim) or a fixed-step Euler / RK4.
- NLL via the ODE: log p_0(x) = log p_1(x(1)) + int_eps^1 div f(x(t), t) dt, with the exact
  divergence (small D) or Hutchinson's estimate eps^T (df/dx) eps.
All functions take `score_fn(x, t)` with t of shape (batch,); wrap the call in jax.jit (closing over
the parameters) to compile the whole sampler. `pc_sample_host`, `ode_sample_host` and `ode_nll_host` take the
same steps from a host loop, one jitted program per step (faster for an energy model's score on CPU).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .losses import per_sample_sum


# The samplers stop at t = eps, not 0 (score_sde's sampling_eps for the VE SDE): the score is trained on
# sigma(t) >= sigma_min only.
SAMPLING_EPS = 1e-5


def _bcast(a, x):
    return a.reshape((-1,) + (1,) * (x.ndim - 1))


# ----------------------------------------------------------------------------- PC sampler


def pc_sample(score_fn, sde, key, shape, n_steps=1000, snr=0.16, n_corrector=1, eps=SAMPLING_EPS, denoise=True):
    """PC sampling (Song et al. 2021, Alg. 2-3 for VE). NFE = n_steps * (1 + n_corrector).
    The loop over noise levels is a lax.scan; `pc_sample_host` runs the same steps from a host loop."""
    carry, ts, ts_next = _pc_start(sde, key, shape, n_steps, eps)
    carry, _ = jax.lax.scan(lambda c, tt: (_pc_step(score_fn, sde, n_corrector, c, tt[0], tt[1], snr), None),
                            carry, (ts, ts_next))
    x, x_mean, _ = carry
    return x_mean if denoise else x


@functools.partial(jax.jit, static_argnames=("sde", "shape", "n_steps"))
def _pc_start(sde, key, shape, n_steps, eps):
    """x(1) ~ sigma_max N(0, I), the sampler's state (x, x_mean, key) and its noise levels t -> t_next."""
    key, k0 = jax.random.split(key)
    x = sde.sigma_max * jax.random.normal(k0, shape)
    ts = jnp.linspace(1.0, eps, n_steps)
    ts_next = jnp.concatenate([ts[1:], jnp.zeros(1)])
    return (x, x, key), ts, ts_next


def _pc_step(score_fn, sde, n_corrector, carry, t, t_next, snr):
    """One noise level: n_corrector Langevin corrector steps, then the reverse-diffusion predictor."""
    x, _, key = carry
    vec_t = jnp.full((x.shape[0],), t)
    for _ in range(n_corrector):  # Langevin corrector, step = 2 (snr ||z|| / ||s||)^2
        key, kz = jax.random.split(key)
        s = score_fn(x, vec_t)
        z = jax.random.normal(kz, x.shape)
        s_norm = jnp.mean(jnp.sqrt(per_sample_sum(s**2)))
        z_norm = jnp.mean(jnp.sqrt(per_sample_sum(z**2)))
        step_size = 2 * (snr * z_norm / s_norm) ** 2
        x = x + step_size * s + jnp.sqrt(2 * step_size) * z
    # reverse-diffusion predictor: x <- x + (sigma_t^2 - sigma_next^2) s + sqrt(sigma_t^2 - sigma_next^2) z
    key, kz = jax.random.split(key)
    sig2 = sde.sigma(t) ** 2
    sig2_next = jnp.where(t_next > 0, sde.sigma(t_next) ** 2, 0.0)
    g2 = sig2 - sig2_next
    x_mean = x + g2 * score_fn(x, vec_t)
    x = x_mean + jnp.sqrt(g2) * jax.random.normal(kz, x.shape)
    return x, x_mean, key


_pc_step_jit = jax.jit(_pc_step, static_argnames=("sde", "n_corrector"))


def pc_sample_host(score_fn, sde, key, shape, n_steps=1000, snr=0.16, n_corrector=1, eps=SAMPLING_EPS,
                   denoise=True):
    """`pc_sample` with its loop over noise levels on the host: the same steps (`_pc_step`), one jitted program
    per noise level, compiled once (t traced). score_fn must be a pytree (e.g. Partial(model.score, params)).
    Why: inside lax.scan XLA:CPU leaves an energy U-Net's input-gradient convolutions in their slow form (see the
    host loops' section below)."""
    carry, ts, ts_next = _pc_start(sde, key, shape, n_steps, eps)
    for t, t_next in zip(np.asarray(ts), np.asarray(ts_next)):
        carry = _pc_step_jit(score_fn, sde, n_corrector, carry, t, t_next, snr)
    x, x_mean, _ = carry
    return x_mean if denoise else x


# ----------------------------------------------------------------------------- ODE solvers

# Dormand-Prince 5(4) tableau.
_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1])
_A = [[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
      [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
      [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]]
_B5 = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_B4 = np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


def _float():
    """The solvers' time dtype: float32, float64 in jax's x64 mode (`ode_nll_float64`)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _tree_axpy(y, h, ks, coefs):
    return jax.tree.map(lambda y_, *k: y_ + h * sum(c * k_ for c, k_ in zip(coefs, k) if c != 0), y, *ks)


def odeint_rk45(f, y0, t0, t1, rtol=1e-3, atol=1e-5, max_steps=2000, return_t=False, last_tol=None):
    """Adaptive Dormand-Prince RK45 from t0 to t1 (either direction) on a pytree state, step for step
    scipy's `solve_ivp(method="RK45")`, which the official code uses (its `nfev` is the paper's NFE).

    Error norm: RMS over all state entries of err / (atol + rtol max(|y|, |y_new|)); a step is accepted
    when it is < 1; the step size then grows by min(10, 0.9 err^-1/5) (at most 1 after a rejection within
    the same step) or shrinks by max(0.2, 0.9 err^-1/5). Initial step: scipy's `select_initial_step`
    (Hairer, Norsett & Wanner, II.4), which evaluates f once more. Returns (y(t1), nfe) with nfe counted
    as scipy's nfev: 2 + 6 per attempted step (FSAL).

    max_steps caps the attempted steps (at most 2 + 6 max_steps NFE; may be a traced integer); a capped solve
    stops short of t1. return_t: also return the time reached, (y(t), nfe, t), t == t1 unless the cap was hit.
    last_tol: None (scipy's norm), or (rtol, atol) of the state's last leaf alone (`ode_nll`'s log-density change):
    a step is then accepted only when also max |err| / (atol + rtol max(|y|, |y_new|)) over that leaf is < 1, and
    the larger of the two norms sets the next step (not in scipy; the initial step stays scipy's).
    The loop is a lax.while_loop; `odeint_host` runs the same steps from a host loop."""
    state = jax.lax.while_loop(lambda st: _rk45_running(st, t0, t1, max_steps),
                               lambda st: _rk45_attempt(f, st, t0, t1, rtol, atol, last_tol),
                               _rk45_start(f, y0, t0, t1, rtol, atol))
    t, y, nfe = state[0], state[1], state[6]
    return (y, nfe, t) if return_t else (y, nfe)


def _rk45_norm(y0, tree, scale):
    n_el = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(y0))
    return jnp.sqrt(sum(jnp.sum((a / s) ** 2) for a, s in zip(jax.tree.leaves(tree), jax.tree.leaves(scale)))
                    / n_el)


def _rk45_scale(y, y_new, rtol, atol):
    return jax.tree.map(lambda a, b: atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)), y, y_new)


def _rk45_start(f, y0, t0, t1, rtol, atol):
    """The solver state before its first step: (t, y, f(t, y), h, rejected, attempted steps, nfe)."""
    direction = jnp.sign(t1 - t0)
    interval = jnp.abs(t1 - t0)
    f0 = f(t0, y0)
    # scipy.integrate._ivp.common.select_initial_step, error-estimator order 4
    sc0 = _rk45_scale(y0, y0, rtol, atol)
    d0, d1 = _rk45_norm(y0, y0, sc0), _rk45_norm(y0, f0, sc0)
    h0 = jnp.minimum(jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1), interval)
    f1 = f(t0 + direction * h0, jax.tree.map(lambda y, k: y + direction * h0 * k, y0, f0))
    d2 = _rk45_norm(y0, jax.tree.map(lambda a, b: a - b, f1, f0), sc0) / h0
    h1 = jnp.where((d1 <= 1e-15) & (d2 <= 1e-15), jnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / jnp.maximum(d1, d2)) ** (1 / 5))
    h_init = jnp.minimum(jnp.minimum(100 * h0, h1), interval)
    return jnp.asarray(t0, _float()), y0, f0, h_init, jnp.asarray(False), 0, 2


def _rk45_running(state, t0, t1, max_steps):
    t, n = state[0], state[5]
    return (jnp.sign(t1 - t0) * (t1 - t) > 0) & (n < max_steps)


def _rk45_attempt(f, state, t0, t1, rtol, atol, last_tol=None):
    """One attempted Dormand-Prince step (6 evaluations of f), accepted or not."""
    t, y, fy, h, rejected, n, nfe = state
    direction = jnp.sign(t1 - t0)
    last = h >= jnp.abs(t1 - t)  # this step lands on t1 (set exactly, as scipy does)
    h = jnp.minimum(h, jnp.abs(t1 - t))
    hs = direction * h
    ks = [fy]
    for i in range(1, 7):
        ks.append(f(t + _C[i] * hs, _tree_axpy(y, hs, ks, _A[i])))
    y_new = _tree_axpy(y, hs, ks, _A[6])
    err = jax.tree.map(lambda *k: hs * sum((b5 - b4) * k_ for b5, b4, k_ in zip(_B5, _B4, k)), *ks)
    en = _rk45_norm(y, err, _rk45_scale(y, y_new, rtol, atol))
    if last_tol is not None:  # the last leaf's own max norm (`odeint_rk45`)
        (a, b, e), (lr, la) = (jax.tree.leaves(v)[-1] for v in (y, y_new, err)), last_tol
        en = jnp.maximum(en, jnp.max(jnp.abs(e) / (la + lr * jnp.maximum(jnp.abs(a), jnp.abs(b)))))
    accept = en < 1.0
    grow = jnp.where(en > 0, jnp.minimum(10.0, 0.9 * jnp.where(en > 0, en, 1.0) ** (-0.2)), 10.0)
    factor = jnp.where(accept, jnp.where(rejected, jnp.minimum(1.0, grow), grow),
                       jnp.maximum(0.2, 0.9 * en ** (-0.2)))
    t = jnp.where(accept, jnp.where(last, t1, t + hs), t)
    y = jax.tree.map(lambda a, b: jnp.where(accept, b, a), y, y_new)
    fy = jax.tree.map(lambda a, b: jnp.where(accept, b, a), fy, ks[6])
    return t, y, fy, h * factor, ~accept, n + 1, nfe + 6


def odeint_fixed(f, y0, t0, t1, n_steps, method="rk4"):
    """Fixed-step Euler or RK4 from t0 to t1. Returns (y(t1), nfe).

    A fori_loop, so n_steps may be a traced integer: one compiled program serves every step count."""
    h = (t1 - t0) / n_steps
    y = jax.lax.fori_loop(0, n_steps, lambda i, y: _fixed_step(f, method, t0, h, i, y), y0)
    return y, n_steps * (1 if method == "euler" else 4)


def _fixed_step(f, method, t0, h, i, y):
    """Step i of `odeint_fixed`, from t0 + i h."""
    t = t0 + i * h
    if method == "euler":
        return _tree_axpy(y, h, [f(t, y)], [1.0])
    k1 = f(t, y)
    k2 = f(t + h / 2, _tree_axpy(y, h, [k1], [0.5]))
    k3 = f(t + h / 2, _tree_axpy(y, h, [k2], [0.5]))
    k4 = f(t + h, _tree_axpy(y, h, [k3], [1.0]))
    return _tree_axpy(y, h, [k1, k2, k3, k4], [1 / 6, 1 / 3, 1 / 3, 1 / 6])


def probability_flow_drift(score_fn, sde):
    """f(x, t) = -1/2 g(t)^2 s(x, t) for the VE SDE (zero forward drift)."""

    def drift(t, x):
        vec_t = jnp.full((x.shape[0],), t)
        return -0.5 * sde.g2(vec_t).reshape((-1,) + (1,) * (x.ndim - 1)) * score_fn(x, vec_t)

    return drift


def denoise_step(score_fn, sde, x, eps=SAMPLING_EPS):
    """The official samplers' final noise removal (`noise_removal=True`): one reverse-diffusion predictor
    step at t = eps without noise. At t = eps the official discrete sigma is sigma_min and the next one 0,
    so x <- x + sigma_min^2 s(x, eps), Tweedie's denoiser for the smallest noise level."""
    return x + sde.sigma_min**2 * score_fn(x, jnp.full((x.shape[0],), eps, x.dtype))


def ode_sample(score_fn, sde, key, shape, method="rk45", n_steps=100, rtol=1e-3, atol=1e-5, eps=SAMPLING_EPS,
               denoise=False, x_init=None, max_steps=2000, return_t=False):
    """Probability-flow ODE sampler from t=1 to t=eps. Returns (samples, nfe), or (samples, nfe, t_end) with
    return_t, where t_end > eps means RK45 stopped at its cap of max_steps attempted steps (`odeint_rk45`).

    x_init: the start x(1) (default sigma_max * N(0, I) from key). denoise: end with `denoise_step`, as the
    official ODE samplers do (2-D: always; images: `noise_removal=True`); its one score evaluation is not in
    the returned NFE, as the official NFE is scipy's `nfev` of the solver alone. The official settings are
    RK45 with rtol 1e-3 / atol 1e-5 on the 2-D toys and rtol 1e-4 / atol 1e-6 on images (`*_config_ode.py`)."""
    x = sde.sigma_max * jax.random.normal(key, shape) if x_init is None else x_init
    drift = probability_flow_drift(score_fn, sde)
    if method == "rk45":
        x, nfe, t_end = odeint_rk45(drift, x, 1.0, eps, rtol, atol, max_steps, return_t=True)
    elif method in ("euler", "rk4"):
        (x, nfe), t_end = odeint_fixed(drift, x, 1.0, eps, n_steps, method), jnp.asarray(eps, x.dtype)
    else:
        raise ValueError(f"unknown ODE method {method!r}; choose rk45, rk4 or euler")
    x = denoise_step(score_fn, sde, x, eps) if denoise else x
    return (x, nfe, t_end) if return_t else (x, nfe)


# ----------------------------------------------------------------------------- likelihood


def divergence_exact(f, x):
    """Per-sample tr(df/dx) with D jvps (small D)."""
    b = x.shape[0]
    d = int(np.prod(x.shape[1:]))
    _, f_jvp = jax.linearize(f, x)
    eye = np.eye(d, dtype=x.dtype)
    return sum(f_jvp(jnp.broadcast_to(eye[i].reshape(x.shape[1:]), x.shape)).reshape(b, d)[:, i] for i in range(d))


def divergence_hutchinson(f, x, noise):
    """Per-sample Hutchinson estimate noise^T (df/dx) noise (one jvp)."""
    _, jv = jax.jvp(f, (x,), (noise,))
    return per_sample_sum(jv * noise)


def nll_drift(score_fn, sde, noise):
    """The ODE of `ode_nll` on the state (x, log-density change): (f(x, t), div f(x, t)), the divergence exact
    when noise is None, else Hutchinson's with that noise."""
    drift = probability_flow_drift(score_fn, sde)

    def aug(t, state):
        y, _ = state
        g = lambda y_: drift(t, y_)  # noqa: E731
        div = divergence_exact(g, y) if noise is None else divergence_hutchinson(g, y, noise)
        return g(y), div

    return aug


def ode_nll(score_fn, sde, x, key, exact=True, method="rk45", n_steps=100, rtol=1e-3, atol=1e-5, eps=SAMPLING_EPS,
            noise=None, delta_tol=None):
    """Negative log-likelihood (nats, per sample) of x under the probability-flow ODE.

    -log p_0(x) = -log p_1(x(1)) - int_eps^1 div f(x(t), t) dt. Returns (nll, nfe). noise: Hutchinson's
    noise (default: Rademacher from key). delta_tol: None, or RK45's own (rtol, atol) on each sample's log-density
    change (nats), checked besides the joint norm over (x, log-density change) (`odeint_rk45`'s last_tol)."""
    noise = jax.random.rademacher(key, x.shape, dtype=x.dtype) if noise is None else noise
    aug = nll_drift(score_fn, sde, None if exact else noise)
    state0 = (x, jnp.zeros(x.shape[0], x.dtype))
    if method == "rk45":
        (z, delta), nfe = odeint_rk45(aug, state0, eps, 1.0, rtol, atol, last_tol=delta_tol)
    else:
        (z, delta), nfe = odeint_fixed(aug, state0, eps, 1.0, n_steps, method)
    return -(sde.prior_logp(z) + delta), nfe


def bits_per_dim(nll, dim, n_bins=256):
    """bits/dim of data dequantised to [0, 1] from n_bins levels: nll / (D ln 2) + log2(n_bins)."""
    return nll / (dim * np.log(2.0)) + np.log2(n_bins)


# ----------------------------------------------------------------------------- the same solvers, looped on the host
# `ode_sample_host`, `ode_nll_host` (and `pc_sample_host` above) take the steps of `ode_sample`, `ode_nll` (and
# `pc_sample`) from a Python loop, one jitted program per step, as scipy's solve_ivp drives the official code.
# Why: XLA:CPU rewrites a convolution into the form of its fast (Eigen) kernel only in a program's entry
# computation (its ConvCanonicalization pass), so inside lax.while_loop / fori_loop / scan the input-gradient
# convolutions of an energy U-Net's score s = -grad_x E run as naive loops, ~4x slower per evaluation (README, "Why
# CSBM's score is 3.6x slower inside the loops"). A direct-score U-Net (USBM / QCSBM) has only forward
# convolutions, already in that form; there the host loop is 20-30 % slower (a dispatch per step).
# A step builds its ODE as field(score_fn, sde, extra): field is `_pf_field` or `nll_drift` (static), score_fn a
# pytree (e.g. Partial(model.score, params)), extra None or the Hutchinson noise.


def _pf_field(score_fn, sde, extra):
    return probability_flow_drift(score_fn, sde)


@functools.partial(jax.jit, static_argnames=("field", "sde"))
def _rk45_start_jit(field, score_fn, sde, extra, y0, t0, t1, rtol, atol):
    return _rk45_start(field(score_fn, sde, extra), y0, t0, t1, rtol, atol)


@functools.partial(jax.jit, static_argnames=("field", "sde"))
def _rk45_attempt_jit(field, score_fn, sde, extra, state, t0, t1, rtol, atol, last_tol=None):
    return _rk45_attempt(field(score_fn, sde, extra), state, t0, t1, rtol, atol, last_tol)


@functools.partial(jax.jit, static_argnames=("field", "sde", "method"))
def _fixed_step_jit(field, score_fn, sde, extra, method, t0, t1, n_steps, i, y):
    return _fixed_step(field(score_fn, sde, extra), method, t0, (t1 - t0) / n_steps, i, y)


def odeint_host(field, score_fn, sde, extra, y0, t0, t1, method="rk45", n_steps=100, rtol=1e-3, atol=1e-5,
                max_steps=2000, last_tol=None):
    """`odeint_rk45` (method "rk45") or `odeint_fixed` ("euler", "rk4") of field(score_fn, sde, extra) with the
    loop on the host. Returns (y(t1), nfe, t reached)."""
    if method == "rk45":
        state = _rk45_start_jit(field, score_fn, sde, extra, y0, t0, t1, rtol, atol)
        while bool(_rk45_running(state, t0, t1, max_steps)):
            state = _rk45_attempt_jit(field, score_fn, sde, extra, state, t0, t1, rtol, atol, last_tol)
        return state[1], state[6], state[0]
    if method not in ("euler", "rk4"):
        raise ValueError(f"unknown ODE method {method!r}; choose rk45, rk4 or euler")
    y = y0
    for i in range(n_steps):
        y = _fixed_step_jit(field, score_fn, sde, extra, method, t0, t1, n_steps, i, y)
    return y, n_steps * (1 if method == "euler" else 4), jnp.asarray(t1, _float())


_denoise_step = jax.jit(denoise_step, static_argnames=("sde",))


def ode_sample_host(score_fn, sde, key, shape, method="rk45", n_steps=100, rtol=1e-3, atol=1e-5, eps=SAMPLING_EPS,
                    denoise=False, x_init=None, max_steps=2000, return_t=False):
    """`ode_sample` (same arguments and results) with the solver's loop on the host."""
    x = sde.sigma_max * jax.random.normal(key, shape) if x_init is None else x_init
    x, nfe, t_end = odeint_host(_pf_field, score_fn, sde, None, x, 1.0, eps, method, n_steps, rtol, atol, max_steps)
    x = _denoise_step(score_fn, sde, x, eps) if denoise else x
    return (x, nfe, t_end) if return_t else (x, nfe)


def ode_nll_host(score_fn, sde, x, key, exact=True, method="rk45", n_steps=100, rtol=1e-3, atol=1e-5,
                 eps=SAMPLING_EPS, noise=None, delta_tol=None):
    """`ode_nll` (same arguments and results) with the solver's loop on the host."""
    if exact:
        noise = None
    elif noise is None:
        noise = jax.random.rademacher(key, x.shape, dtype=x.dtype)
    state0 = (x, jnp.zeros(x.shape[0], x.dtype))
    (z, delta), nfe, _ = odeint_host(nll_drift, score_fn, sde, noise, state0, eps, 1.0, method, n_steps, rtol, atol,
                                     last_tol=delta_tol)
    return -(sde.prior_logp(z) + delta), nfe


def _x64_mode():
    """jax's x64 mode as a context manager (jax.enable_x64 in newer jax, jax.experimental.enable_x64 in older)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()


def ode_nll_float64(nll_fn, score_fn, sde, x, key, exact=True, **kwargs):
    """nll_fn (`ode_nll`, jitted or not, or `ode_nll_host`) in float64: jax's x64 mode on for this call only, x and
    the floating leaves of score_fn (a pytree, e.g. Partial(model.score, params): the parameters) cast to float64,
    the solver's time too. Hutchinson's noise is drawn before, in float32 mode, so it is the float32 call's (x64
    mode draws other bits from the same key). Returns (nll, nfe) as numpy arrays, nll in float64.
    Why: CSBM's Hutchinson NLL (the energy U-Net) moves by up to ~10 nats per image with float32 rounding, so its
    host loop and jitted loop disagree by that much in float32. In float64 they agreed to ~1e-8 nats on one
    checkpoint but still differ by up to 2.7 nats (and in NFE) on a re-trained one. Cause (measured): at these
    tolerances that NLL is that sensitive to its input: scaling x by (1 + 1e-15) moves one loop's float64 NLL by
    up to 11.7 nats, so the two loops' last-bit differences grow through the step controller (README, "Where each
    sampler runs", "CSBM's NLL in float64")."""
    noise = None if exact else jax.random.rademacher(key, x.shape, dtype=jnp.float32)
    with _x64_mode():
        to64 = lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
        score_fn, x, noise = jax.tree.map(to64, (score_fn, jnp.asarray(x), noise))
        return jax.tree.map(np.asarray, nll_fn(score_fn, sde, x, key, exact=exact, noise=noise, **kwargs))
