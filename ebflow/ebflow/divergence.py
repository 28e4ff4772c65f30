"""The paper's toy metrics (Table 1): KL divergence and Fisher divergence of the model q to the data p.

Both are expectations under the data density p, estimated on samples x_i ~ p:

    KL(p || q) = E_p[ log p(x) - log q(x) ]
    F(p || q)  = 1/2 E_p[ || grad_x log p(x) - grad_x log q(x) ||^2 ]     (Fisher divergence)

The official code takes the same 1/2 in F. Its KL line computes mean(-log q(x_i) + p(x_i) log p(x_i))
(a density times its log, not log p); we use the textbook estimator above, so our KL values are
not on the same scale as the paper's. Functions take arrays, so they are pure and testable.
"""
from __future__ import annotations

import numpy as np


def kl_divergence(log_p: np.ndarray, log_q: np.ndarray) -> tuple[float, float]:
    """Monte Carlo KL(p || q) from log p and log q at the same samples of p: (estimate, standard error)."""
    d = np.asarray(log_p, np.float64) - np.asarray(log_q, np.float64)
    if d.ndim != 1:
        raise ValueError(f"expected per-sample log densities of shape (N,), got {d.shape}")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def fisher_divergence(score_p: np.ndarray, score_q: np.ndarray) -> tuple[float, float]:
    """Monte Carlo 1/2 E_p ||s_p - s_q||^2 from both scores at the same samples of p: (estimate, standard error)."""
    sp, sq = np.asarray(score_p, np.float64), np.asarray(score_q, np.float64)
    if sp.shape != sq.shape or sp.ndim != 2:
        raise ValueError(f"scores must both have shape (N, D), got {sp.shape} and {sq.shape}")
    f = 0.5 * np.sum((sp - sq) ** 2, axis=1)
    return float(f.mean()), float(f.std(ddof=1) / np.sqrt(len(f)))


# ---------------------------------------------------------- closed forms (Gaussians), for tests
def gaussian_kl(m1, c1, m2, c2) -> float:
    """KL(N(m1, c1) || N(m2, c2))."""
    m1, c1, m2, c2 = map(lambda a: np.asarray(a, np.float64), (m1, c1, m2, c2))
    d = len(m1)
    c2i = np.linalg.inv(c2)
    dm = m2 - m1
    return 0.5 * float(np.trace(c2i @ c1) + dm @ c2i @ dm - d + np.linalg.slogdet(c2)[1] - np.linalg.slogdet(c1)[1])


def gaussian_fisher(m1, c1, m2, c2) -> float:
    """1/2 E_{N(m1, c1)} || s_1(x) - s_2(x) ||^2 with s_i(x) = -c_i^{-1}(x - m_i).

    s_1 - s_2 = A x + b, A = c2^{-1} - c1^{-1}, b = c1^{-1} m1 - c2^{-1} m2, and
    E||A x + b||^2 = tr(A c1 A^T) + ||A m1 + b||^2.
    """
    m1, c1, m2, c2 = map(lambda a: np.asarray(a, np.float64), (m1, c1, m2, c2))
    c1i, c2i = np.linalg.inv(c1), np.linalg.inv(c2)
    a = c2i - c1i
    b = c1i @ m1 - c2i @ m2
    r = a @ m1 + b
    return 0.5 * float(np.trace(a @ c1 @ a.T) + r @ r)
