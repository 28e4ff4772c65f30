"""The QCSBM objective: denoising score matching plus the asymmetry regulariser.

    L(theta) = E_t E_x E_z [ ||sigma s(x~, t) + z||^2 + lambda sigma^2 (tr(J J^T) - tr(J J)) ],   (the QCSBM objective)
    x~ = x + sigma(t) z,  J = d s(x~, t) / d x~.

tr(JJ^T) - tr(JJ) = 1/2 ||J - J^T||_F^2 >= 0 is zero exactly when J is symmetric (a conservative
score). The DSM term is summed over dimensions without the 1/2, as in the official code, so the
paper's lambda (0.1 on the 2-D toys) keeps its meaning.

Two estimates of the traces:
- exact: all D columns of J from D batched jvps (small D: the 2-D toys);
- Hutchinson (1989), v with E[v v^T] = I (Rademacher): tr(JJ^T) = E ||J^T v||^2 and
  tr(JJ) = E (J^T v) . (J v); one jvp and one vjp per slice, K slices averaged (Hutchinson, 1989).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("usbm", "qcsbm_exact", "qcsbm_hutch", "csbm")


def per_sample_sum(a):
    return jnp.sum(a.reshape(a.shape[0], -1), axis=1)


def _bcast(sigma, x):
    return sigma.reshape((-1,) + (1,) * (x.ndim - 1))


def dsm_loss(score, z, sigma):
    """Denoising score matching per sample: ||sigma s(x + sigma z) + z||^2   (VE weighting sigma^2)."""
    return per_sample_sum((_bcast(sigma, score) * score + z) ** 2)


def jacobian_traces_exact(f, x):
    """Per-sample (tr(J J^T), tr(J J)) of a batched map f whose samples do not interact.

    Column i of every sample's J is one jvp with the i-th basis vector (a Python loop of D jvps:
    on CPU it is ~6x faster than vmapping the jvp). Returns (f(x), trJJt, trJJ)."""
    b = x.shape[0]
    d = int(np.prod(x.shape[1:]))
    s, f_jvp = jax.linearize(f, x)
    eye = np.eye(d, dtype=x.dtype)
    cols = [f_jvp(jnp.broadcast_to(eye[i].reshape(x.shape[1:]), x.shape)).reshape(b, d) for i in range(d)]
    jac = jnp.stack(cols, axis=2)  # jac[b, i, j] = d s_i / d x_j
    tr_jjt = jnp.sum(jac**2, axis=(1, 2))
    tr_jj = jnp.einsum("bij,bji->b", jac, jac)
    return s, tr_jjt, tr_jj


def jacobian_traces_hutchinson(f, x, v):
    """Hutchinson estimates of (tr(J J^T), tr(J J)) per sample with probe vectors v of shape (K,) + x.shape.

    ||J^T v||^2 estimates tr(J J^T); (J^T v) . (J v) = v^T J J v estimates tr(J J)   (Hutchinson).
    Returns (f(x), trJJt, trJJ), each trace averaged over the K slices."""
    s, f_jvp = jax.linearize(f, x)
    f_vjp = jax.linear_transpose(f_jvp, x)

    tr_jjt, tr_jj = 0.0, 0.0
    for k in range(v.shape[0]):
        jv = f_jvp(v[k])
        (jtv,) = f_vjp(v[k])
        tr_jjt = tr_jjt + per_sample_sum(jtv**2)
        tr_jj = tr_jj + per_sample_sum(jtv * jv)
    return s, tr_jjt / v.shape[0], tr_jj / v.shape[0]


def rademacher(key, shape, dtype=jnp.float32):
    return jax.random.rademacher(key, shape, dtype=dtype)


def make_loss_fn(model, sde, method: str, lam: float = 0.1, n_slices: int = 1):
    """loss_fn(params, x, key) -> (loss, aux) for one of METHODS.

    usbm: DSM only. qcsbm_exact / qcsbm_hutch: DSM + lambda sigma^2 (tr(JJ^T) - tr(JJ)).
    csbm: DSM only, with an energy model (s = -grad E), conservative by construction."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if (method == "csbm") != (model.kind == "energy"):
        raise ValueError(f"method {method!r} needs a {'energy' if method == 'csbm' else 'score'} model, "
                         f"got kind {model.kind!r}")
    if n_slices < 1:
        raise ValueError(f"n_slices must be >= 1, got {n_slices}")

    def loss_fn(params, x, key):
        kt, kz, kv = jax.random.split(key, 3)
        t = jax.random.uniform(kt, (x.shape[0],), dtype=x.dtype)
        sigma = sde.sigma(t)
        z = jax.random.normal(kz, x.shape, x.dtype)
        xt = x + _bcast(sigma, x) * z
        f = lambda y: model.score(params, y, t)  # noqa: E731
        if method == "qcsbm_exact":
            s, tr_jjt, tr_jj = jacobian_traces_exact(f, xt)
        elif method == "qcsbm_hutch":
            v = rademacher(kv, (n_slices,) + x.shape, x.dtype)
            s, tr_jjt, tr_jj = jacobian_traces_hutchinson(f, xt, v)
        else:
            s = f(xt)
            tr_jjt = tr_jj = jnp.zeros(x.shape[0], x.dtype)
        dsm = dsm_loss(s, z, sigma)
        asym = tr_jjt - tr_jj
        reg = sigma**2 * asym
        use_reg = method.startswith("qcsbm")
        loss = jnp.mean(dsm + (lam * reg if use_reg else 0.0))  # DSM + lambda * L_QC
        return loss, {"loss": loss, "dsm": jnp.mean(dsm), "reg": jnp.mean(reg)}

    return loss_fn
