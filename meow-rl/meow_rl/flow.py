"""MEow's state-conditioned energy-based normalizing flow (Chao et al., NeurIPS 2024, Sec. 3).

Generative direction (sampling), for a state s:
    z0 ~ N(0, diag sigma(s)^2)                      prior, mean fixed at 0
    z_{l+1} = m_l * z_l + (1 - m_l) * (z_l + t_l(m_l * z_l, s))   additive coupling, log|det| = 0
    a = tanh(z_L)                                   squashing to the action box [-1, 1]^A
Inverting a -> z0 gives the exact density (Eq. 9 / 10 of the paper, written per term):
    Q(s,a)/alpha = -1/2 ||z0 / sigma(s)||^2 - sum log(1 - a^2) + b(s)         (energy: soft Q)
    V(s)/alpha   =  sum log sigma(s) + (A/2) log(2 pi) + b(s)                 (normaliser: soft V)
so that log pi(a|s) = (Q(s,a) - V(s)) / alpha holds exactly, and V = alpha log int exp(Q/alpha) da
needs no Monte Carlo estimate. b_1, b_2 are the learnable reward shifts (LRS, Sec. 4.1); using the
two shifts gives the shifting-based clipped double Q (SCDQ, Sec. 4.2). This module returns the
energies divided by alpha; the agent multiplies by alpha.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from .networks import MLP, squash_log_det

ACTION_CLIP = 1.0 - 1e-5  # actions are clipped to +-(1 - 1e-5) before atanh


def coupling_masks(action_dim: int, num_couplings: int) -> np.ndarray:
    """Alternating binary masks b, 1-b, b, 1-b, ... with b = [1, 0, 1, 0, ...]."""
    b = np.array([1.0 if i % 2 == 0 else 0.0 for i in range(action_dim)], dtype=np.float32)
    return np.stack([b if l % 2 == 0 else 1.0 - b for l in range(num_couplings)])


class MEowFlow(nn.Module):
    action_dim: int
    sigma_min: float = -5.0  # bounds of log sigma(s)
    sigma_max: float = -0.3
    num_couplings: int = 4
    hidden: int = 64
    shift_hidden: int = 256
    dropout: float = 0.1
    init_scheme: str = "flax"  # "flax" or "official" (the official PyTorch code's initialisation, networks.MLP)

    def setup(self):
        A, init = self.action_dim, self.init_scheme
        self.log_scale_net = MLP((self.hidden, self.hidden, A), zero_init=True, init_scheme=init)
        self.translations = [
            MLP((self.hidden, self.hidden, A), layer_norm=True, dropout=self.dropout, init_scheme=init)
            for _ in range(self.num_couplings)
        ]
        self.shift1 = MLP((self.shift_hidden, self.shift_hidden, 1), zero_init=True, init_scheme=init)
        self.shift2 = MLP((self.shift_hidden, self.shift_hidden, 1), zero_init=True, init_scheme=init)
        self.masks = coupling_masks(A, self.num_couplings)

    # -- prior ---------------------------------------------------------------------------------
    def log_sigma(self, s):
        """log sigma = s_min + (s_max - s_min)/2 * (tanh(MLP(s)) + 1)."""
        h = self.log_scale_net(s)
        return self.sigma_min + 0.5 * (self.sigma_max - self.sigma_min) * (jnp.tanh(h) + 1.0)

    # -- flow ----------------------------------------------------------------------------------
    def _translation(self, l, z, s, deterministic):
        m = self.masks[l]
        return self.translations[l](jnp.concatenate([m * z, s], axis=-1), deterministic=deterministic)

    def forward(self, s, z0, deterministic: bool = True):
        """z0 -> a (generative direction): couplings in order, then tanh."""
        z = z0
        for l in range(self.num_couplings):
            m = self.masks[l]
            z = m * z + (1.0 - m) * (z + self._translation(l, z, s, deterministic))
        return jnp.tanh(z)

    def inverse(self, s, a, deterministic: bool = True):
        """a -> z0: atanh, then the couplings inverted in reverse order (masked part is unchanged)."""
        z = jnp.arctanh(jnp.clip(a, -ACTION_CLIP, ACTION_CLIP))
        for l in reversed(range(self.num_couplings)):
            m = self.masks[l]
            z = m * z + (1.0 - m) * (z - self._translation(l, z, s, deterministic))
        return z

    def shifts(self, s):
        """Learnable reward shifts b_1(s), b_2(s) (LRS)."""
        return self.shift1(s)[..., 0], self.shift2(s)[..., 0]

    # -- energies ------------------------------------------------------------------------------
    def v_over_alpha(self, s):
        """V_k(s)/alpha = sum log sigma(s) + A/2 log 2 pi + b_k(s), k = 1, 2. No action needed."""
        base = jnp.sum(self.log_sigma(s), axis=-1) + 0.5 * self.action_dim * math.log(2.0 * math.pi)
        b1, b2 = self.shifts(s)
        return base + b1, base + b2

    def q_over_alpha(self, s, a, deterministic: bool = True):
        """Q_k(s,a)/alpha = -1/2 ||z0/sigma||^2 - sum log(1 - a^2) + b_k(s), k = 1, 2."""
        z0 = self.inverse(s, a, deterministic)
        sigma = jnp.exp(self.log_sigma(s))
        a_c = jnp.clip(a, -ACTION_CLIP, ACTION_CLIP)
        base = -0.5 * jnp.sum((z0 / sigma) ** 2, axis=-1) - squash_log_det(a_c)
        b1, b2 = self.shifts(s)
        return base + b1, base + b2

    def log_prob(self, s, a, deterministic: bool = True):
        """log pi(a|s) = Q/alpha - V/alpha (the shift cancels)."""
        q1, _ = self.q_over_alpha(s, a, deterministic)
        v1, _ = self.v_over_alpha(s)
        return q1 - v1

    def sample(self, s, eps, deterministic_action: bool = False):
        """Exact sampling by pushing z0 = sigma(s) * eps through the flow; the deterministic action
        is the image of the prior's mode z0 = 0 (the official implementation's choice)."""
        z0 = jnp.where(deterministic_action, 0.0, 1.0) * jnp.exp(self.log_sigma(s)) * eps
        return self.forward(s, z0, deterministic=True)

    def __call__(self, s, a):  # touches every parameter (used by init)
        return self.q_over_alpha(s, a), self.v_over_alpha(s), self.sample(s, jnp.zeros_like(a))
