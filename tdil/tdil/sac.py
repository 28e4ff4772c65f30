"""Soft Actor-Critic, the base RL of TDIL (Haarnoja et al. 2018), with the paper's extra steps:
a critic update on expert transitions and a behaviour-cloning step on the demonstration.

Everything is written out so that each imitation method can call the pieces in the paper's order.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .networks import Actor, TwinCritic, polyak


@dataclass
class SACConfig:
    hidden: int = 256
    layers: int = 3
    lr: float = 3e-4
    # Separate Adam rates (official sac.py: actor_lr, critic_lr, alpha_lr); None: lr, the single rate used before.
    actor_lr: float | None = None
    critic_lr: float | None = None
    alpha_lr: float | None = None
    gamma: float = 0.99
    tau: float = 1e-4  # paper (official code); 5e-3 is the usual SAC value
    init_log_alpha: float = 0.0
    fixed_log_alpha: float | None = None  # None: auto-tune alpha towards target entropy -|A|

    def lrs(self) -> tuple[float, float, float]:
        """(actor, critic, alpha) learning rates, each falling back to lr."""
        return tuple(self.lr if v is None else v for v in (self.actor_lr, self.critic_lr, self.alpha_lr))


class SAC:
    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig):
        self.cfg = cfg
        self.actor = Actor(obs_dim, act_dim, cfg.hidden, cfg.layers)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden, cfg.layers)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(
            cfg.fixed_log_alpha if cfg.fixed_log_alpha is not None else cfg.init_log_alpha, requires_grad=True
        )
        self.target_entropy = -float(act_dim)
        actor_lr, critic_lr, alpha_lr = cfg.lrs()
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=actor_lr, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=critic_lr, foreach=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=alpha_lr, foreach=True)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False):
        o = torch.as_tensor(obs, dtype=torch.float32)[None]
        a = self.actor.deterministic(o) if deterministic else self.actor.sample(o)[0]
        return a[0].numpy()

    def update_critic(self, obs, act, reward, next_obs, done) -> float:
        """Soft Bellman residual: y = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s'))."""
        with torch.no_grad():
            a2, logp2 = self.actor.sample(next_obs)
            q1t, q2t = self.critic_target(next_obs, a2)
            y = reward + self.cfg.gamma * (1 - done) * (torch.min(q1t, q2t) - self.alpha * logp2)
        q1, q2 = self.critic(obs, act)
        loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return loss.item()

    def update_actor(self, obs) -> float:
        """J_pi = E[alpha log pi(a|s) - min_i Q_i(s, a)]; then alpha towards the target entropy."""
        a, logp = self.actor.sample(obs)
        q1, q2 = self.critic(obs, a)
        loss = (self.alpha * logp - torch.min(q1, q2)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        if self.cfg.fixed_log_alpha is None:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        return loss.item()

    def bc_step(self, obs, act) -> float:
        """Behaviour cloning on the demonstration: MSE(tanh(mu(s_E)), a_E) (TDIL's auxiliary BC loss)."""
        loss = F.mse_loss(self.actor.deterministic(obs), act)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        return loss.item()

    def soft_update(self) -> None:
        polyak(self.critic_target, self.critic, self.cfg.tau)

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
        }

    def load_state_dict(self, d: dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.critic.load_state_dict(d["critic"])
        self.critic_target.load_state_dict(d["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(d["log_alpha"])
        self.actor_opt.load_state_dict(d["actor_opt"])
        self.critic_opt.load_state_dict(d["critic_opt"])
        self.alpha_opt.load_state_dict(d["alpha_opt"])
