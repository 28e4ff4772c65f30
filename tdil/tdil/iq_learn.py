"""IQ-Learn: inverse soft-Q learning for imitation (Garg et al., NeurIPS 2021), online, continuous actions.

IQ-Learn learns ONE soft Q-function instead of a reward and a policy. Its reward is implicit, recovered
from Q through the inverse soft Bellman operator:

    r(s, a) = Q(s, a) - gamma E_{s'}[V^pi(s')],    V^pi(s) = E_{a~pi}[Q(s, a) - alpha log pi(a|s)]

The critic maximises the inverse-RL objective (paper Eq. 10 with the online value term)

    J(Q) = E_{rho_E}[phi(Q(s, a) - gamma V^pi(s'))] - E_{rho}[V^pi(s) - gamma V^pi(s')]

and with the chi^2 divergence phi(x) = x - x^2 / (4 alpha_chi) this is

    -L(Q) = E_E[r] - E_rho[V(s) - gamma V(s')] - 1/(4 alpha_chi) E[r^2]

(the "regularize" variant of the official MuJoCo commands takes the chi^2 term over expert pairs AND
policy samples r = Q(s, a~pi) - gamma V(s') at the replay states). The actor is a SAC actor on Q:
min E[alpha log pi(a|s) - Q(s, a)] over policy and expert states, with a FIXED temperature.

Facts taken from the official code (github Div99/IQ-Learn: iq.py `iq_loss`, train_iq.py `iq_update`,
conf/): online batches are 256 replay + 256 expert transitions; V(s') comes from the target critic
(`use_target: true`, Polyak tau 0.005); the value term is `value` = E_{rho}[V(s) - gamma V(s')] over both
halves (HalfCheetah, Ant) or `v0` = (1 - gamma) E[V(s)] over the expert states of the batch (Hopper,
Walker2d, Humanoid); alpha_chi = 0.5 (`method.alpha`, so 1/(4 alpha_chi) = 0.5); actor lr 3e-5, critic lr
3e-4; temperature fixed at 0.01 (`init_temp`, `learn_temp: false`); a single Q network for MuJoCo
(`SingleQCritic`); V(s) (`getV`) and the chi^2 term's Q(s, a~pi) (`sampleQ`) use two independent action
samples; orthogonal weight init (`orthogonal_init_`) and a tanh-squashed log sigma in [-5, 2]
(`DiagGaussianActor`), both `official_networks` here. Only the loss terms and settings above were taken from it.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .networks import Actor, mlp, orthogonal_init, polyak

VALUE_LOSSES = ("value", "v0", "value_expert")


@dataclass
class IQConfig:
    hidden: int = 256
    layers: int = 3
    critic_lr: float = 3e-4
    actor_lr: float = 3e-5  # official MuJoCo commands (agent.actor_lr=3e-05)
    gamma: float = 0.99
    tau: float = 5e-3  # official critic_tau, soft target update every step
    log_alpha: float = math.log(0.01)  # fixed SAC temperature (official init_temp 1e-2, learn_temp false)
    chi2_alpha: float = 0.5  # chi^2 divergence: phi(x) = x - x^2 / (4 chi2_alpha)
    value_loss: str = "value"  # value | v0 | value_expert (official method.loss)
    regularize: bool = True  # chi^2 term on expert pairs and policy samples (official method.regularize=True)
    use_target: bool = True  # V(s') from the target critic, no gradient (official train.use_target)
    official_networks: bool = True  # orthogonal init of actor and critic, tanh-squashed log sigma (official models)


class SoftQ(nn.Module):
    """Q(s, a): one MLP (the official MuJoCo configs use a single Q network, `SingleQCritic`)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1, hidden, layers)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], -1)).squeeze(-1)


class IQLearn:
    def __init__(self, obs_dim: int, act_dim: int, cfg: IQConfig):
        if cfg.value_loss not in VALUE_LOSSES:
            raise ValueError(f"unknown IQ-Learn value loss {cfg.value_loss!r}; expected one of {VALUE_LOSSES}")
        self.cfg = cfg
        self.actor = Actor(obs_dim, act_dim, cfg.hidden, cfg.layers, squash_log_std=cfg.official_networks)
        self.critic = SoftQ(obs_dim, act_dim, cfg.hidden, cfg.layers)
        if cfg.official_networks:
            self.actor.apply(orthogonal_init)
            self.critic.apply(orthogonal_init)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(cfg.log_alpha)  # fixed, not learned
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, foreach=True)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def to(self, device) -> "IQLearn":
        for m in (self.actor, self.critic, self.critic_target):
            m.to(device)
        self.log_alpha = self.log_alpha.to(device)
        return self

    def value(self, critic: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """V^pi(s) = Q(s, a) - alpha log pi(a|s) with one a ~ pi(.|s) (official `getV`).
        The action is sampled without a gradient to the actor (the critic loss only updates Q)."""
        with torch.no_grad():
            a, logp = self.actor.sample(obs)
        return critic(obs, a) - self.alpha * logp

    def sample_q(self, critic: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, a) with a fresh a ~ pi(.|s), independent of the one in V(s) (official `sampleQ`)."""
        with torch.no_grad():
            a, _ = self.actor.sample(obs)
        return critic(obs, a)

    def recovered_reward(self, obs, act, next_obs, done) -> torch.Tensor:
        """The implicit reward r(s, a) = Q(s, a) - gamma (1 - d) V^pi(s') (inverse soft Bellman operator)."""
        with torch.no_grad():
            v_next = self.value(self.critic_target if self.cfg.use_target else self.critic, next_obs)
            return self.critic(obs, act) - self.cfg.gamma * (1 - done) * v_next

    def iq_loss(self, policy: tuple, expert: tuple) -> tuple[torch.Tensor, dict]:
        """-J(Q) on a batch of replay (policy) and expert transitions, each (obs, act, next_obs, done)."""
        cfg = self.cfg
        obs, act, next_obs, done = (torch.cat([p, e], 0) for p, e in zip(policy, expert))
        is_expert = torch.cat([torch.zeros(len(policy[0]), dtype=torch.bool, device=obs.device),
                               torch.ones(len(expert[0]), dtype=torch.bool, device=obs.device)])
        if cfg.use_target:
            with torch.no_grad():
                v_next = self.value(self.critic_target, next_obs)
        else:
            v_next = self.value(self.critic, next_obs)
        y = cfg.gamma * (1 - done) * v_next
        v = self.value(self.critic, obs)
        r = self.critic(obs, act) - y  # recovered reward of the batch's own (s, a)
        # 1st term: -E_{rho_E}[Q(s, a) - gamma V(s')]
        expert_term = -r[is_expert].mean()
        # 2nd term: the value of the policy's state distribution
        if cfg.value_loss == "value":  # E_{rho}[V(s) - gamma V(s')], replay and expert states
            value_term = (v - y).mean()
        elif cfg.value_loss == "value_expert":  # the same over expert states only (works offline)
            value_term = (v - y)[is_expert].mean()
        else:  # v0: (1 - gamma) E[V(s_0)], the batch's expert states standing in for initial states
            value_term = (1 - cfg.gamma) * v[is_expert].mean()
        # chi^2 regulariser 1/(4 alpha_chi) E[r^2]: expert pairs (+ policy samples Q(s, a~pi) - gamma V(s'))
        if cfg.regularize:
            q_pi = self.sample_q(self.critic, obs[~is_expert])
            r_reg = torch.cat([r[is_expert], q_pi - y[~is_expert]])
        else:
            r_reg = r[is_expert]
        chi2_term = (r_reg**2).mean() / (4 * cfg.chi2_alpha)
        loss = expert_term + value_term + chi2_term
        logs = {"iq_loss": loss.item(), "iq_expert_term": expert_term.item(), "iq_value_term": value_term.item(),
                "iq_chi2_term": chi2_term.item(), "iq_reward_expert": r[is_expert].mean().item(),
                "iq_reward_policy": r[~is_expert].mean().item()}
        return loss, logs

    def update_critic(self, policy: tuple, expert: tuple) -> dict:
        loss, logs = self.iq_loss(policy, expert)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return logs

    def update_actor(self, obs: torch.Tensor) -> float:
        """SAC actor on the learned Q with the fixed temperature: min E[alpha log pi(a|s) - Q(s, a)]."""
        a, logp = self.actor.sample(obs)
        loss = (self.alpha * logp - self.critic(obs, a)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        return loss.item()

    def update(self, policy: tuple, expert: tuple) -> dict:
        """One online IQ-Learn step (official `iq_update`): critic on replay + expert batches, actor on the
        states of both, then the soft target update."""
        logs = self.update_critic(policy, expert)
        logs["actor_loss"] = self.update_actor(torch.cat([policy[0], expert[0]], 0))
        polyak(self.critic_target, self.critic, self.cfg.tau)
        return logs

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.critic.load_state_dict(d["critic"])
        self.critic_target.load_state_dict(d["critic_target"])
        self.actor_opt.load_state_dict(d["actor_opt"])
        self.critic_opt.load_state_dict(d["critic_opt"])
