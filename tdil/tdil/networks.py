"""MLPs of the paper: actor, twin critic, discriminators are all 3 x 256 ReLU MLPs (paper App. B)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def mlp(inp: int, out: int, hidden: int = 256, layers: int = 3) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = inp
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, out))
    return nn.Sequential(*mods)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy; actions live in [-1, 1]^A (rescaled to the env's box outside).
    log sigma is clamped to [LOG_STD_MIN, LOG_STD_MAX]; `squash_log_std` maps it smoothly into that range
    instead, log sigma = min + (max - min) (tanh(x) + 1) / 2 (IQ-Learn's official `DiagGaussianActor`)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3, squash_log_std: bool = False):
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, hidden, layers)
        self.squash_log_std = squash_log_std

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        if self.squash_log_std:
            return mu, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised a = tanh(mu + sigma * eps) and log pi(a|s) with the tanh Jacobian."""
        mu, log_std = self(obs)
        std = log_std.exp()
        u = mu + std * torch.randn_like(mu)
        return torch.tanh(u), _tanh_gaussian_log_prob(mu, log_std, u)

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        """log pi(a|s) of given actions in [-1, 1] (clipped to 1 - eps so that atanh stays finite)."""
        mu, log_std = self(obs)
        return _tanh_gaussian_log_prob(mu, log_std, torch.atanh(act.clamp(-1 + eps, 1 - eps)))

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


def _tanh_gaussian_log_prob(mu: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """log N(u; mu, sigma) - sum log(1 - tanh(u)^2): the density of a = tanh(u)."""
    logp = (-0.5 * ((u - mu) / log_std.exp()) ** 2 - log_std - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)
    return logp - (2 * (torch.log(torch.tensor(2.0)) - u - F.softplus(-2 * u))).sum(-1)


class TwinCritic(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1, hidden, layers)
        self.q2 = mlp(obs_dim + act_dim, 1, hidden, layers)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, act], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


def orthogonal_init(m: nn.Module) -> None:
    """Orthogonal weights, zero biases for every Linear layer (`module.apply(orthogonal_init)`)."""
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight)
        nn.init.zeros_(m.bias)


@torch.no_grad()
def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta_target <- (1 - tau) theta_target + tau theta."""
    tp, sp = list(target.parameters()), list(source.parameters())
    torch._foreach_mul_(tp, 1 - tau)
    torch._foreach_add_(tp, sp, alpha=tau)
