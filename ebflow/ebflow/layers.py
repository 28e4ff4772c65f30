"""Flow layers with exact inverses, split the way EBFlow needs them.

Every layer maps a batch ``x`` of shape ``(B, *in_shape)`` to ``y`` and reports its
log|det J| in two parts:

* ``forward(p, x) -> (y, data_logdet)``: the data-dependent part, shape ``(B,)``.
  It is non-zero only for the nonlinear layers (set S_n in the paper) and goes into the
  energy E(x).
* ``const_logdet(p, in_shape) -> scalar``: the data-independent part, non-zero only for the
  linear layers (set S_l: fully connected, convolution, actnorm). Its sum is -log Z(theta),
  the normalising constant that score matching never needs. It costs O(D^3) for a dense
  D x D matrix and is only called by maximum likelihood and at evaluation.

Params are plain pytrees (dicts of arrays); layers are frozen dataclasses holding only static
hyper-parameters, so a whole flow is a hashable, jit-friendly description.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp

Params = Any


def _flat_dim(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


def _sum_except_batch(x: jnp.ndarray) -> jnp.ndarray:
    return x.reshape(x.shape[0], -1).sum(axis=1)


@jax.custom_vjp
def logabsdet(w: jnp.ndarray) -> jnp.ndarray:
    """log|det W| from one LU factorisation; its gradient W^{-T} reuses the same factors.

    The fastest maximum-likelihood baseline we could build on CPU (see benchmarks/): jnp.linalg.slogdet
    under autodiff factorises again in the backward pass.
    """
    lu, _, _ = jax.lax.linalg.lu(w)
    return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(lu))))


def _logabsdet_fwd(w):
    lu, _, perm = jax.lax.linalg.lu(w)
    return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(lu)))), (lu, perm)


def _logabsdet_bwd(res, g):
    lu, perm = res
    d = lu.shape[0]
    # W^{-T} = P^T L^{-T} U^{-T}: solve U^T Y = I, then L^T X = Y, then undo the row permutation
    eye = jnp.eye(d, dtype=lu.dtype)
    y = jax.lax.linalg.triangular_solve(lu, eye, left_side=True, lower=False, transpose_a=True)
    x = jax.lax.linalg.triangular_solve(lu, y, left_side=True, lower=True, transpose_a=True, unit_diagonal=True)
    inv_t = jnp.zeros_like(x).at[perm].set(x)
    return (g * inv_t,)


logabsdet.defvjp(_logabsdet_fwd, _logabsdet_bwd)


SN_EPS = 1e-12  # torch.nn.utils.spectral_norm's eps (official EBFlow CNN: default n_power_iterations=1, eps=1e-12)


def _normalize(x: jnp.ndarray, eps: float = SN_EPS) -> jnp.ndarray:
    """x / max(||x||, eps), as torch.nn.functional.normalize."""
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


def kernel_matrix(kernel: jnp.ndarray) -> jnp.ndarray:
    """The HWIO kernel as the (C_out, k*k*C_in) matrix that spectral norm normalises (torch: weight.reshape(C_out, -1);
    our columns are ordered (kh, kw, C_in) instead of (C_in, kh, kw): a column permutation, same singular values)."""
    return kernel.reshape(-1, kernel.shape[-1]).T


def power_iteration(w: jnp.ndarray, u: jnp.ndarray, eps: float = SN_EPS):
    """One step of torch.nn.utils.spectral_norm's power iteration on W (Miyato et al. 2018):

        v <- W^T u / ||W^T u||,   u <- W v / ||W v||

    Returns (u, v) without gradient. Repeated over training steps, u^T W v converges to sigma_max(W).
    """
    v = _normalize(w.T @ u, eps)
    u = _normalize(w @ v, eps)
    return jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)


def spectral_sigma(w: jnp.ndarray, u: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """sigma(W) = u^T W v with u, v constants, so d sigma / dW = u v^T (torch.nn.utils.spectral_norm)."""
    return jax.lax.stop_gradient(u) @ w @ jax.lax.stop_gradient(v)


def _net_init(key, sizes: Sequence[int], kernel_size: int = 1) -> list[dict]:
    """Coupling / prior net: dense (or 1x1-conv) layers of ``sizes``; with ``kernel_size`` k > 1 the first
    and last layers are k x k convolutions ('SAME'), as Glow's 3x3 conv -> 1x1 conv -> 3x3 conv. The last
    layer starts at zero, so the net's output starts at 0."""
    keys = jax.random.split(key, len(sizes) - 1)
    net = []
    for i, (k, m, n) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        ks = kernel_size if (i == 0 or last) else 1
        shape = (m, n) if ks == 1 else (ks, ks, m, n)
        w = jnp.zeros(shape) if last else jax.random.normal(k, shape) * math.sqrt(2.0 / (m * ks * ks))
        net.append({"w": w, "b": jnp.zeros(n)})
    return net


# hidden-layer nonlinearity of the coupling / prior nets. Official Glow (models/mnist/glow.py, layers/coupling.py):
# LeakyReLU(0.1) in the couplings, ReLU in the split prior's coupling (its constructor passes no activation).
NET_ACTIVATIONS = {
    "silu": jax.nn.silu,
    "leaky_relu": lambda h: jax.nn.leaky_relu(h, negative_slope=0.1),
    "relu": jax.nn.relu,
}
OUT_LOGSCALE_FACTOR = 3.0  # official Conv2dZero: output * exp(3 logs), logs learned per output channel from 0
LOG_SCALES = ("scale_tanh", "2tanh")


def _check_activation(name: str) -> None:
    if name not in NET_ACTIVATIONS:
        raise ValueError(f"unknown coupling-net activation {name!r}; choose one of {tuple(NET_ACTIVATIONS)}")


def _net_apply(net: list[dict], h: jnp.ndarray, activation: str = "silu", out_logs=None) -> jnp.ndarray:
    """Apply the net; ``out_logs`` (optional, per output) rescales the output by exp(3 out_logs) (Conv2dZero)."""
    act = NET_ACTIVATIONS[activation]
    for i, lyr in enumerate(net):
        if lyr["w"].ndim == 4:  # k x k convolution over (B, H, W, C)
            h = jax.lax.conv_general_dilated(h, lyr["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + lyr["b"]
        else:
            h = h @ lyr["w"] + lyr["b"]
        if i < len(net) - 1:
            h = act(h)
    if out_logs is not None:
        h = h * jnp.exp(OUT_LOGSCALE_FACTOR * out_logs)
    return h


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base class; the identity map."""

    linear = False  # member of S_l (log-det constant in x) or S_n (log-det depends on x)
    factors_out = False  # True for SplitPrior: part of the input leaves the flow (see flow.Flow)

    def init(self, key, in_shape: tuple[int, ...]) -> Params:
        return {}

    def data_init(self, p: Params, x: jnp.ndarray) -> Params:
        """Data-dependent initialisation from a batch ``x`` of this layer's inputs (default: none)."""
        return p

    def init_stats(self, key, in_shape: tuple[int, ...]) -> Params:
        """Non-trainable state (the ``stats`` collection, like flax's ``batch_stats``); default: none."""
        return {}

    def update_stats(self, p: Params, s: Params) -> Params:
        """One training-step update of the state from the current params (default: none)."""
        return s

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(in_shape)

    def forward(self, p: Params, x: jnp.ndarray):
        return x, jnp.zeros(x.shape[0], x.dtype)

    def inverse(self, p: Params, y: jnp.ndarray) -> jnp.ndarray:
        return y

    def const_logdet(self, p: Params, in_shape: tuple[int, ...]) -> jnp.ndarray:
        return jnp.zeros(())


# --------------------------------------------------------------------------- linear (S_l)
@dataclasses.dataclass(frozen=True)
class FullyConnected(Layer):
    """y = x W^T + b on flat (B, D) inputs. log|det J| = log|det W| (constant in x)."""

    bias: bool = True
    neg_init: bool = False  # the official MNIST FC configs start from W = -I
    init_noise: float = 0.0

    linear = True

    def init(self, key, in_shape):
        if len(in_shape) != 1:
            raise ValueError(f"FullyConnected expects flat inputs (D,), got shape {in_shape}; add Flatten() first")
        d = in_shape[0]
        w = (-1.0 if self.neg_init else 1.0) * jnp.eye(d)
        w = w + self.init_noise * jax.random.normal(key, (d, d)) / math.sqrt(d)
        p = {"w": w}
        if self.bias:
            p["b"] = jnp.zeros(d)
        return p

    def forward(self, p, x):
        y = x @ p["w"].T
        if self.bias:
            y = y + p["b"]
        return y, jnp.zeros(x.shape[0], x.dtype)

    def inverse(self, p, y):
        if self.bias:
            y = y - p["b"]
        return jnp.linalg.solve(p["w"], y.T).T

    def const_logdet(self, p, in_shape):
        return logabsdet(p["w"])  # O(D^3): the cost EBFlow avoids in training


@dataclasses.dataclass(frozen=True)
class Conv2d(Layer):
    """'SAME'-padded k x k convolution on (B, H, W, C), C -> C channels.

    Its Jacobian is the dense (HWC) x (HWC) Toeplitz-block matrix T(kernel). It is linear, so
    log|det T| is constant in x; we build T once by applying the convolution to the identity
    basis and take its slogdet (O(D^3), evaluation / ML only). The inverse solves T x = y - b.

    Init: ``neg_init=False`` (ours) Dirac kernel + ``init_noise`` N(0, 1), zero bias; ``neg_init=True`` (the
    official CNN, ``Convolution(neg_init=True)``) exactly minus the Dirac kernel (T = -I, log|det| = 0) and a
    bias drawn from N(0, s^2), s = 0.01 sqrt(2 / (2 k^2 C)) (the std of torch's xavier_normal_(gain=0.01) that
    the official code draws only to size the bias).

    ``spectral_norm=True`` (the official CIFAR CNN, torch.nn.utils.spectral_norm with its defaults) uses
    kernel / sigma everywhere (forward, inverse, log-det), sigma = u^T W v with W = ``kernel_matrix``. The
    vectors u, v are **state**, not parameters: ``init_stats`` draws them (normalised N(0, I), as torch),
    ``update_stats`` runs one power iteration from the current kernel (once per training step, as torch's
    forward hook in training mode), and evaluation uses the stored u, v without iterating (torch's eval
    mode). The layer reads them from ``p["u"], p["v"]``: call it with ``Flow.bind(params, stats)``.
    """

    kernel_size: int = 3
    bias: bool = True
    init_noise: float = 1e-3
    neg_init: bool = False  # official CNN: kernel = -Dirac, bias ~ N(0, (0.01 sqrt(2 / (2 k^2 C)))^2)
    spectral_norm: bool = False  # official CIFAR CNN: kernel / sigma, sigma by a stateful power iteration

    linear = True

    def init(self, key, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"Conv2d expects (H, W, C) inputs, got shape {in_shape}")
        k, c = self.kernel_size, in_shape[-1]
        dirac = jnp.zeros((k, k, c, c)).at[k // 2, k // 2].set(jnp.eye(c))
        if self.neg_init:
            p = {"kernel": -dirac}
            bias = 0.01 * math.sqrt(2.0 / (2 * k * k * c)) * jax.random.normal(key, (c,))
        else:
            p = {"kernel": dirac + self.init_noise * jax.random.normal(key, (k, k, c, c))}
            bias = jnp.zeros(c)
        if self.bias:
            p["b"] = bias
        return p

    def init_stats(self, key, in_shape):
        if not self.spectral_norm:
            return {}
        k, c = self.kernel_size, in_shape[-1]
        ku, kv = jax.random.split(key)
        return {"u": _normalize(jax.random.normal(ku, (c,))), "v": _normalize(jax.random.normal(kv, (k * k * c,)))}

    def update_stats(self, p, s):
        if not self.spectral_norm:
            return s
        u, v = power_iteration(kernel_matrix(p["kernel"]), s["u"])
        return {"u": u, "v": v}

    def sigma(self, p):
        """The spectral-norm divisor u^T W v from the stored (bound) u, v."""
        if "u" not in p or "v" not in p:
            raise ValueError("a spectral-norm Conv2d needs its power-iteration vectors u, v: call the flow with "
                             "flow.bind(params, stats) (training.eval_params(flow, state) for a TrainState)")
        return spectral_sigma(kernel_matrix(p["kernel"]), p["u"], p["v"])

    def kernel(self, p):
        return p["kernel"] / self.sigma(p) if self.spectral_norm else p["kernel"]

    def _conv(self, kernel, x):
        return jax.lax.conv_general_dilated(
            x, kernel, window_strides=(1, 1), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def forward(self, p, x):
        y = self._conv(self.kernel(p), x)
        if self.bias:
            y = y + p["b"]
        return y, jnp.zeros(x.shape[0], x.dtype)

    def dense_matrix(self, p, in_shape):
        """T with conv(x).flatten() = T @ x.flatten()."""
        d = _flat_dim(in_shape)
        basis = jnp.eye(d, dtype=p["kernel"].dtype).reshape((d,) + tuple(in_shape))
        return self._conv(self.kernel(p), basis).reshape(d, d).T

    def inverse(self, p, y):
        in_shape = y.shape[1:]
        if self.bias:
            y = y - p["b"]
        t = self.dense_matrix(p, in_shape)
        x = jnp.linalg.solve(t, y.reshape(y.shape[0], -1).T).T
        return x.reshape(y.shape)

    def const_logdet(self, p, in_shape):
        return jnp.linalg.slogdet(self.dense_matrix(p, in_shape))[1]


@dataclasses.dataclass(frozen=True)
class ActNorm(Layer):
    """Per-channel affine y = (x + b) * exp(s) (Glow). Linear: log|det| = (#pixels) * sum(s).

    ``data_dependent=True`` (Glow, the official EBFlow Glow): ``data_init`` sets b = -mean and
    s = -log(std + 1e-6) of the first batch per channel (over batch and pixels), so that batch leaves the
    layer with zero mean and unit variance per channel. Afterwards b and s are ordinary parameters, so
    the log-det stays constant in x (S_l). ``False`` keeps the identity start (our toy flow).

    ``trainable=False`` is what the official EBFlow Glow actually ran: its ActNorm assigns
    ``Parameter(...).to('cuda')``, a plain tensor that torch does not register, so b and s keep their
    data-init values (no optimiser, EMA or checkpoint sees them). Here b, s stay in the params but enter
    through stop_gradient, so their gradient is exactly zero.

    Why S_l: the paper puts in S_l the layers whose Jacobian does not depend on x (linear maps Wx + b);
    ActNorm is one, with Jacobian diag(exp(s)) repeated over the pixels for every x, so its log-det
    H W sum(s) is a function of the parameters only and belongs to -log Z, not to the energy E. (The
    official code keeps this constant in its energy, see ``glow_flow``; that changes no score.)
    """

    data_dependent: bool = True
    trainable: bool = True

    linear = True

    def _p(self, p):
        return p if self.trainable else jax.lax.stop_gradient(p)

    def init(self, key, in_shape):
        c = in_shape[-1]
        return {"b": jnp.zeros(c), "s": jnp.zeros(c)}

    def data_init(self, p, x):
        if not self.data_dependent:
            return p
        axes = tuple(range(x.ndim - 1))
        mean, std = jnp.mean(x, axis=axes), jnp.std(x, axis=axes)
        return {"b": (-mean).astype(p["b"].dtype), "s": (-jnp.log(std + 1e-6)).astype(p["s"].dtype)}

    def forward(self, p, x):
        p = self._p(p)
        return (x + p["b"]) * jnp.exp(p["s"]), jnp.zeros(x.shape[0], x.dtype)

    def inverse(self, p, y):
        p = self._p(p)
        return y * jnp.exp(-p["s"]) - p["b"]

    def const_logdet(self, p, in_shape):
        return _flat_dim(in_shape[:-1]) * self._p(p)["s"].sum()


@dataclasses.dataclass(frozen=True)
class Invertible1x1Conv(Layer):
    """Glow's invertible 1x1 convolution y[h, w] = W x[h, w] on (B, H, W, C), W a C x C matrix.

    Linear: log|det J| = H * W * log|det W| (constant in x, so it belongs to -log Z, not to E).
    Initialised to a random rotation (QR of a Gaussian), as Glow and the official EBFlow Glow.
    """

    linear = True

    def init(self, key, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"Invertible1x1Conv expects (H, W, C) inputs, got shape {in_shape}")
        c = in_shape[-1]
        q, _ = jnp.linalg.qr(jax.random.normal(key, (c, c)))
        return {"w": q}

    def forward(self, p, x):
        return jnp.einsum("bhwc,dc->bhwd", x, p["w"]), jnp.zeros(x.shape[0], x.dtype)

    def inverse(self, p, y):
        return jnp.einsum("bhwc,dc->bhwd", y, jnp.linalg.inv(p["w"]))

    def const_logdet(self, p, in_shape):
        return _flat_dim(in_shape[:-1]) * logabsdet(p["w"])


# --------------------------------------------------------------------- nonlinear (S_n)
@dataclasses.dataclass(frozen=True)
class SmoothLeakyReLU(Layer):
    """y = alpha x + (1 - alpha) softplus(x); dy/dx = alpha + (1 - alpha) sigmoid(x) in (alpha, 1).

    Strictly increasing and convex, so Newton's method from y converges; the inverse runs a
    fixed number of Newton steps. With ``residual=True`` the layer is y = (x + slrelu(x)) / 2
    (the paper's residual SLReLU for CIFAR), also monotone.
    """

    alpha: float = 0.3
    residual: bool = False
    newton_steps: int = 30

    def _f(self, x):
        a = self.alpha
        y = a * x + (1.0 - a) * jax.nn.softplus(x)
        return 0.5 * (x + y) if self.residual else y

    def _df(self, x):
        a = self.alpha
        d = a + (1.0 - a) * jax.nn.sigmoid(x)
        return 0.5 * (1.0 + d) if self.residual else d

    def forward(self, p, x):
        return self._f(x), _sum_except_batch(jnp.log(self._df(x)))

    def inverse(self, p, y):
        def step(_, x):
            return x - (self._f(x) - y) / self._df(x)

        # softplus(x) >= x, so y >= x for x >= 0 and x0 = y - (1 - a) log 2 is close on both sides
        x0 = jnp.where(y > 0, y - (1.0 - self.alpha) * math.log(2.0), y / self.alpha)
        return jax.lax.fori_loop(0, self.newton_steps, step, x0)


@dataclasses.dataclass(frozen=True)
class AffineCoupling(Layer):
    """RealNVP/Glow affine coupling on the last axis.

    x = [x_a, x_b] (halves of the last axis, swapped when ``parity``); y_a = x_a,
    y_b = x_b * exp(s(x_a)) + t(x_a). log|det J| = sum s(x_a) depends on x, so it belongs to the energy.
    s, t come from an MLP of ``hidden`` units (a 1x1-conv net on images); with ``kernel_size=k > 1`` on
    (H, W, C) inputs the first and last layers of that net are k x k convolutions ('SAME'), as in Glow's
    coupling net (3x3 conv, 1x1 conv, zero-initialised 3x3 conv).

    Options (defaults = our toy / smoke-run choice; the official Glow's choice after the bar):
      ``log_scale``   "scale_tanh": s = scale * tanh(raw), a learned per-dim scale starting at 1
                      | "2tanh": s = 2 tanh(raw / 2) (official ``Coupling``, logs_range = 2)
      ``activation``  "silu" | "leaky_relu" (slope 0.1, official) | "relu"
      ``out_scale``   False | True: the last layer's output times exp(3 logs), logs learned from 0 (official
                      ``Conv2dZero``)
    The official coupling also never swaps halves (``parity=False`` everywhere; the 1x1 convolutions mix the
    channels) and takes s, t from the even / odd output channels where we take the two halves: a fixed
    permutation of a zero-initialised last layer, so the same family of maps from the same start.
    """

    hidden: tuple[int, ...] = (64, 64)
    parity: bool = False
    kernel_size: int = 1
    log_scale: str = "scale_tanh"
    activation: str = "silu"
    out_scale: bool = False

    def _split(self, x):
        c = x.shape[-1]
        h = c // 2
        a, b = x[..., :h], x[..., h:]
        return (b, a) if self.parity else (a, b)

    def _join(self, a, b):
        return jnp.concatenate([b, a] if self.parity else [a, b], axis=-1)

    def init(self, key, in_shape):
        c = in_shape[-1]
        if c < 2:
            raise ValueError(f"AffineCoupling needs at least 2 features on the last axis, got {in_shape}")
        if self.log_scale not in LOG_SCALES:
            raise ValueError(f"unknown coupling log_scale {self.log_scale!r}; choose one of {LOG_SCALES}")
        _check_activation(self.activation)
        na = c // 2 if not self.parity else c - c // 2
        nb = c - na
        if self.kernel_size > 1 and len(in_shape) != 3:
            raise ValueError(f"AffineCoupling with kernel_size {self.kernel_size} expects (H, W, C) inputs, got {in_shape}")
        p = {"net": _net_init(key, (na,) + tuple(self.hidden) + (2 * nb,), self.kernel_size)}
        if self.log_scale == "scale_tanh":
            p["scale"] = jnp.ones(nb)
        if self.out_scale:
            p["out_logs"] = jnp.zeros(2 * nb)
        return p

    def _st(self, p, a):
        h = _net_apply(p["net"], a, self.activation, p.get("out_logs"))
        raw_s, t = jnp.split(h, 2, axis=-1)
        if self.log_scale == "2tanh":
            return 2.0 * jnp.tanh(raw_s / 2.0), t
        return p["scale"] * jnp.tanh(raw_s), t

    def forward(self, p, x):
        a, b = self._split(x)
        s, t = self._st(p, a)
        return self._join(a, b * jnp.exp(s) + t), _sum_except_batch(s)

    def inverse(self, p, y):
        a, yb = self._split(y)
        s, t = self._st(p, a)
        return self._join(a, (yb - t) * jnp.exp(-s))


@dataclasses.dataclass(frozen=True)
class SplitPrior(Layer):
    """Glow's multi-scale split: factor out half the channels under a learned conditional Gaussian prior.

    x = [x1, x2] on the channel axis (x1 the first C//2 channels). x1 goes on through the flow; x2 leaves
    it with density p(x2 | x1) = N(x2; mu(x1), diag sigma(x1)^2), (mu, log sigma) from a Glow coupling-style
    net of x1 whose last layer starts at zero (so the prior starts at N(0, I)). log sigma =
    2 tanh(raw / 2), the bound the official coupling puts on its log-scale.

    In EBFlow terms log p(x2 | x1) depends on x (through x1 and x2), so it is part of the **energy**, never
    of -log Z. For invertibility the layer is the bijection x -> (x1, eps2), eps2 = (x2 - mu(x1)) / sigma(x1),
    with eps2 a standard-normal block of the latent z; that standardisation is an affine coupling (S_n) with
    log|det J| = -sum log sigma(x1), and log N(eps2; 0, I) - sum log sigma(x1) = log N(x2; mu(x1), sigma(x1)).
    The official code writes the same prior as a Coupling on [x1, x2] followed by a standard normal on x2.
    """

    hidden: tuple[int, ...] = (512, 512)
    kernel_size: int = 3
    activation: str = "silu"  # official: "relu" (the split prior's Coupling is built without an activation)
    out_scale: bool = False  # official: True (Conv2dZero's exp(3 logs) on the net's output)

    factors_out = True

    def _halves(self, in_shape):
        c = in_shape[-1]
        if c < 2:
            raise ValueError(f"SplitPrior needs at least 2 channels, got shape {in_shape}")
        return c // 2, c - c // 2

    def init(self, key, in_shape):
        if self.kernel_size > 1 and len(in_shape) != 3:
            raise ValueError(f"SplitPrior with kernel_size {self.kernel_size} expects (H, W, C) inputs, got {in_shape}")
        _check_activation(self.activation)
        c1, c2 = self._halves(in_shape)
        p = {"net": _net_init(key, (c1,) + tuple(self.hidden) + (2 * c2,), self.kernel_size)}
        if self.out_scale:
            p["out_logs"] = jnp.zeros(2 * c2)
        return p

    def output_shape(self, in_shape):
        return tuple(in_shape[:-1]) + (self._halves(in_shape)[0],)

    def factored_shape(self, in_shape):
        return tuple(in_shape[:-1]) + (self._halves(in_shape)[1],)

    def prior(self, p, x1):
        """(mu(x1), log sigma(x1)) of the conditional Gaussian p(x2 | x1)."""
        mu, raw = jnp.split(_net_apply(p["net"], x1, self.activation, p.get("out_logs")), 2, axis=-1)
        return mu, 2.0 * jnp.tanh(raw / 2.0)

    def split(self, p, x):
        """x -> (x1, x2, eps2, log N(x2; mu(x1), sigma(x1))) per sample."""
        c1 = x.shape[-1] // 2
        x1, x2 = x[..., :c1], x[..., c1:]
        mu, log_sigma = self.prior(p, x1)
        eps2 = (x2 - mu) * jnp.exp(-log_sigma)
        log_prior = _sum_except_batch(-0.5 * eps2**2 - 0.5 * math.log(2.0 * math.pi) - log_sigma)
        return x1, x2, eps2, log_prior

    def merge(self, p, x1, eps2):
        """Inverse: x2 = mu(x1) + sigma(x1) eps2 (eps2 ~ N(0, I) draws x2 from the prior)."""
        mu, log_sigma = self.prior(p, x1)
        return jnp.concatenate([x1, mu + jnp.exp(log_sigma) * eps2], axis=-1)

    def bijection(self, p, x):
        """x -> [x1, eps2] (same shape as x) and its log|det J| = -sum log sigma(x1) (for tests)."""
        x1, _, eps2, _ = self.split(p, x)
        _, log_sigma = self.prior(p, x1)
        return jnp.concatenate([x1, eps2], axis=-1), -_sum_except_batch(log_sigma)

    def bijection_inverse(self, p, y):
        c1 = y.shape[-1] // 2
        return self.merge(p, y[..., :c1], y[..., c1:])

    def forward(self, p, x):
        raise TypeError("SplitPrior changes the shape that flows on; Flow applies it through split() / merge()")

    inverse = forward


# ------------------------------------------------------------------------- reshapes
@dataclasses.dataclass(frozen=True)
class Squeeze(Layer):
    """(H, W, C) -> (H/2, W/2, 4C) space-to-depth; a permutation, log|det| = 0."""

    def output_shape(self, in_shape):
        h, w, c = in_shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even height and width, got {in_shape}")
        return (h // 2, w // 2, 4 * c)

    def forward(self, p, x):
        b, h, w, c = x.shape
        y = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)
        return y, jnp.zeros(b, x.dtype)

    def inverse(self, p, y):
        b, h, w, c4 = y.shape
        c = c4 // 4
        return y.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """(H, W, C) -> (HWC,); log|det| = 0. Remembers the shape to invert."""

    in_shape: tuple[int, ...] = ()

    def output_shape(self, in_shape):
        return (_flat_dim(in_shape),)

    def forward(self, p, x):
        return x.reshape(x.shape[0], -1), jnp.zeros(x.shape[0], x.dtype)

    def inverse(self, p, y):
        return y.reshape((y.shape[0],) + tuple(self.in_shape))


@dataclasses.dataclass(frozen=True)
class Logit(Layer):
    """The data preprocessing as a flow layer: u in (0,1) -> y = logit(shift + (1 - 2 shift) u) / smoothness.

    log|det J| = sum [log(1 - 2 shift) - log(smoothness) - log u' - log(1 - u')] depends on u (S_n).
    With MaP (``preprocess.py``) it runs outside the trained model and score matching sees y;
    without MaP it is the model's first layer and score matching sees u (paper Table 4 ablation).
    """

    smoothness: float = 0.5
    shift: float = 1e-6

    def forward(self, p, u):
        up = self.shift + (1.0 - 2.0 * self.shift) * u
        y = (jnp.log(up) - jnp.log1p(-up)) / self.smoothness
        ld = math.log(1.0 - 2.0 * self.shift) - math.log(self.smoothness) - jnp.log(up) - jnp.log1p(-up)
        return y, _sum_except_batch(ld)

    def inverse(self, p, y):
        up = jax.nn.sigmoid(y * self.smoothness)
        return (up - self.shift) / (1.0 - 2.0 * self.shift)
