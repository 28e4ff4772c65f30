"""Quantile machinery of DFAC: tau sampling, cosine embedding (IQN) and the quantile Huber loss."""
import math

import torch


def sample_taus(shape, device=None) -> torch.Tensor:
    """tau ~ U(0, 1), the quantile fractions at which the utilities Z_i(tau) are evaluated."""
    return torch.rand(shape, device=device)


def cosine_embedding(taus: torch.Tensor, n_cos: int = 64) -> torch.Tensor:
    """IQN embedding cos(pi * i * tau), i = 0..n_cos-1 (IQN, Dabney et al. 2018).  [..., N] -> [..., N, n_cos]"""
    i = torch.arange(n_cos, device=taus.device, dtype=taus.dtype)
    return torch.cos(math.pi * i * taus.unsqueeze(-1))


def huber(u: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """Huber loss L_kappa(u): u^2/2 inside |u| <= kappa, kappa(|u| - kappa/2) outside."""
    a = u.abs()
    return torch.where(a <= kappa, 0.5 * u.pow(2), kappa * (a - 0.5 * kappa))


def quantile_huber_loss(z: torch.Tensor, taus: torch.Tensor, target: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """Quantile Huber loss of DFAC (IQN, Dabney et al. 2018; DFAC loss).

    z:      [..., N]   online quantile samples Z(tau_k)
    taus:   [..., N]   their fractions tau_k
    target: [..., N']  target samples r + gamma (1 - term) Z'(tau'_j)   (no gradient)
    returns [...]: sum over k of the mean over j of |tau_k - 1{u_kj < 0}| L_kappa(u_kj) / kappa,
    u_kj = target_j - z_k.
    """
    u = target.detach().unsqueeze(-2) - z.unsqueeze(-1)  # [..., N, N']
    weight = (taus.unsqueeze(-1) - (u < 0).to(z.dtype)).abs()
    return (weight * huber(u, kappa) / kappa).mean(-1).sum(-1)
