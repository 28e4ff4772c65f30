"""Baselines from the same single demonstration, in the same code base and evaluation:
  * BC   — behaviour cloning, MSE(tanh mu(s_E), a_E) on the 1 demo (no environment interaction).
  * GAIL — adversarial IL (Ho & Ermon 2016) with D(s, a) on agent vs expert pairs, trained here
           off-policy on SAC's replay buffer (as DAC, Kostrikov et al. 2019) with a gradient penalty;
           reward r = -log(1 - D(s, a)). Its D is also the "IRL" half of TDIL+IRL.
  * AIRL — adversarial IRL (Fu et al. 2018): D(s, a, s') = exp f / (exp f + pi(a|s)) with
           f(s, a, s') = g(s) + gamma h(s') - h(s) (state-only reward g, shaping potential h); trained
           off-policy on the replay buffer like GAIL here; SAC is trained on the learned reward f (SAC's
           own -alpha log pi term stands in for the -log pi of AIRL's log D - log(1 - D) = f - log pi).
  * PWIL — primal Wasserstein IL (Dadashi et al. 2021): a greedy coupling of the agent's episode
           with the demonstration gives r = alpha exp(-beta T c_t / sqrt(|S|+|A|)) per step.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .networks import Actor, mlp


class GAILDiscriminator(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1, hidden, layers)

    def logits(self, obs, act):
        return self.net(torch.cat([obs, act], -1)).squeeze(-1)

    def loss(self, exp_obs, exp_act, ag_obs, ag_act, grad_penalty: float = 10.0) -> torch.Tensor:
        """max E_E[log D] + E_agent[log(1 - D)]  (GAIL), plus a WGAN-GP style penalty on interpolates."""
        le, la = self.logits(exp_obs, exp_act), self.logits(ag_obs, ag_act)
        loss = F.binary_cross_entropy_with_logits(le, torch.ones_like(le)) + F.binary_cross_entropy_with_logits(
            la, torch.zeros_like(la)
        )
        if grad_penalty > 0:
            eps = torch.rand(len(exp_obs), 1)
            x = (eps * torch.cat([exp_obs, exp_act], -1) + (1 - eps) * torch.cat([ag_obs, ag_act], -1)).requires_grad_(True)
            g = torch.autograd.grad(self.net(x).sum(), x, create_graph=True)[0]
            loss = loss + grad_penalty * ((g.norm(dim=-1) - 1) ** 2).mean()
        return loss

    @torch.no_grad()
    def prob(self, obs, act) -> torch.Tensor:
        return torch.sigmoid(self.logits(obs, act))

    @torch.no_grad()
    def reward(self, obs, act) -> torch.Tensor:
        """r = -log(1 - D(s, a)) = softplus(logit)."""
        return F.softplus(self.logits(obs, act))


class AIRLDiscriminator(nn.Module):
    def __init__(self, obs_dim: int, gamma: float, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.g, self.h, self.gamma = mlp(obs_dim, 1, hidden, layers), mlp(obs_dim, 1, hidden, layers), gamma

    def f(self, obs, next_obs, done) -> torch.Tensor:
        """f(s, a, s') = g(s) + gamma (1 - d) h(s') - h(s)   (AIRL's disentangled reward + shaping)."""
        return (self.g(obs) + self.gamma * (1 - done[:, None]) * self.h(next_obs) - self.h(obs)).squeeze(-1)

    def loss(self, exp: tuple, agent: tuple) -> torch.Tensor:
        """BCE with logit D = f - log pi(a|s): expert (s, s', d, log pi(a_E|s)) -> 1, agent -> 0."""
        (es, es2, ed, elogp), (as_, as2, ad, alogp) = exp, agent
        le, la = self.f(es, es2, ed) - elogp, self.f(as_, as2, ad) - alogp
        return F.binary_cross_entropy_with_logits(le, torch.ones_like(le)) + F.binary_cross_entropy_with_logits(
            la, torch.zeros_like(la)
        )

    @torch.no_grad()
    def reward(self, obs, next_obs, done) -> torch.Tensor:
        return self.f(obs, next_obs, done)


class PWILReward:
    """Greedy primal Wasserstein coupling of one episode with the demonstration (PWIL, Alg. 1)."""

    def __init__(self, demo_obs: np.ndarray, demo_act: np.ndarray, episode_len: int, alpha: float = 5.0, beta: float = 5.0):
        x = np.concatenate([demo_obs, demo_act], 1).astype(np.float64)
        self.scale = x.std(0) + 1e-6  # standardised Euclidean cost, as in PWIL
        self.expert = x / self.scale
        self.T, self.alpha, self.beta = episode_len, alpha, beta
        self.reset()

    def reset(self) -> None:
        self.weights = np.full(len(self.expert), 1.0 / len(self.expert))

    def __call__(self, obs: np.ndarray, act: np.ndarray) -> float:
        x = np.concatenate([obs, act]) / self.scale
        dist = np.linalg.norm(self.expert - x, axis=1)
        w, cost = 1.0 / self.T, 0.0
        for j in np.argsort(dist):  # pour the agent's mass 1/T into the nearest expert atoms left
            if w <= 1e-12:
                break
            take = min(w, self.weights[j])
            if take <= 0:
                continue
            cost += take * dist[j]
            self.weights[j] -= take
            w -= take
        return float(self.alpha * np.exp(-self.beta * self.T * cost / np.sqrt(self.expert.shape[1])))


def behaviour_cloning(actor: Actor, obs: torch.Tensor, act: torch.Tensor, steps: int, lr: float = 3e-4, batch: int = 256, seed: int = 0, callback=None) -> list[float]:
    """BC on the demonstration: minimise MSE(tanh mu(s_E), a_E), minibatches drawn with replacement."""
    opt = torch.optim.Adam(actor.parameters(), lr=lr, foreach=True)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(obs), (batch,), generator=g)
        loss = F.mse_loss(actor.deterministic(obs[idx]), act[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step)
    return losses
