"""The learner: one gradient step on a batch of episodes (PyMARL's QLearner; DFAC's distributional one).

Expected value (IQL, VDN, QMIX, QPLEX): TD loss with double Q, RMSProp.
Distributional (DIQL, DDN, DMIX, DPLEX): quantile Huber loss between the mixed quantiles Z_jt(tau_k)
and r + gamma (1 - term) Z_jt^target(tau'_j), target action = argmax of the target network's mean
(no double Q), Adam.
"""
import copy

import torch
import torch.nn.functional as F

from .controller import build_inputs
from .mixers import ALGORITHMS, mixer_aux_loss
from .quantile import quantile_huber_loss, sample_taus


def unroll(agent, batch, n_actions: int, taus=None):
    """Runs the agent over the whole episode batch. taus [B, T, n, N] or None.
    -> [B, T, n, A] (expected) or [B, T, n, A, N] (distributional)."""
    obs, actions = batch["obs"], batch["actions"]
    B, T, n = obs.shape[:3]
    last = torch.cat([torch.full_like(actions[:, :1], -1), actions[:, :-1]], 1)
    last = torch.where(torch.cat([torch.zeros_like(batch["filled"][:, :1]), batch["filled"][:, :-1]], 1).unsqueeze(-1) > 0, last, -1)
    x = build_inputs(obs, last, n_actions)
    h = agent.init_hidden(B * n)
    outs = []
    for t in range(T):
        tt = None if taus is None else taus[:, t].reshape(B * n, -1)
        out, h = agent(x[:, t].reshape(B * n, -1), h, tt)
        outs.append(out.view(B, n, *out.shape[1:]))
    return torch.stack(outs, 1)


class Learner:
    def __init__(self, alg: str, agent, mixer, n_actions: int, gamma: float = 0.99, lr: float = 5e-4,
                 grad_clip: float = 10.0, n_quantiles: int = 8, n_target_quantiles: int = 8, kappa: float = 1.0,
                 double_q: bool = True, optimizer: str = "auto", n_greedy_quantiles: int = 0, dfac_double_q: bool = False,
                 reward_scale: float = 1.0):
        if alg not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {alg!r}; choose from {sorted(ALGORITHMS)}")
        self.alg, self.distributional = alg, ALGORITHMS[alg][0]
        self.agent, self.mixer, self.n_actions = agent, mixer, n_actions
        self.target_agent = copy.deepcopy(agent)
        self.target_mixer = copy.deepcopy(mixer) if mixer is not None else None
        self.gamma, self.grad_clip, self.kappa = gamma, grad_clip, kappa
        self.reward_scale = reward_scale  # r is multiplied by this in the targets (SMAX: 10 = SMAC's scale, by default)
        self.N, self.N_target, self.double_q = n_quantiles, n_target_quantiles, double_q
        # distributional learners: a* = argmax_a of the online network's mean over its N fractions (official iqn_learner
        # double_q branch) instead of the target network's; off by default (official DFAC yaml: double_q False)
        self.dfac_double_q = dfac_double_q
        # K of IQN's Algorithm 1: the target's greedy action a* = argmax_a (1/K) sum_k Z'(tau~_k, a) on K fresh
        # fractions; 0 = the mean of the N' target samples themselves (official DFAC iqn_learner)
        self.K = n_greedy_quantiles
        self.params = list(agent.parameters()) + (list(mixer.parameters()) if mixer is not None else [])
        if optimizer == "auto":  # official DFAC yaml: Adam; the expected-value baselines (PyMARL, QPLEX): RMSProp
            optimizer = "adam" if self.distributional else "rmsprop"
        if optimizer == "adam":
            self.opt = torch.optim.Adam(self.params, lr=lr, eps=1e-5)
        elif optimizer == "rmsprop":
            self.opt = torch.optim.RMSprop(self.params, lr=lr, alpha=0.99, eps=1e-5)
        else:
            raise ValueError(f"optimizer must be auto, adam or rmsprop, got {optimizer!r}")

    def update_targets(self):
        self.target_agent.load_state_dict(self.agent.state_dict())
        if self.mixer is not None:
            self.target_mixer.load_state_dict(self.mixer.state_dict())

    @property
    def device(self):
        return next(self.agent.parameters()).device

    def _taus(self, B, T, n, N):
        if self.alg == "diql":  # independent learners: each agent draws its own fractions
            return sample_taus((B, T, n, N), self.device)
        return sample_taus((B, T, 1, N), self.device).expand(B, T, n, N)  # one tau vector shared by the agents

    def loss(self, batch):
        batch = {k: v.to(self.device) for k, v in batch.items()}
        r, term = batch["reward"][:, :-1] * self.reward_scale, batch["terminated"][:, :-1]
        mask = batch["filled"][:, :-1].clone()
        mask[:, 1:] = mask[:, 1:] * (1 - term[:, :-1])
        avail, actions, state = batch["avail"], batch["actions"], batch["state"]
        loss, info = (self._dist_loss if self.distributional else self._td_loss)(batch, r, term, mask, avail, actions, state)
        return loss + mixer_aux_loss(self.mixer), info  # + Qatten's attention regulariser (QPLEX / DPLEX), else + 0

    def utilities(self, agent, batch, N=None):
        """Q_i [B, T+1, n, A] for the expected-value learners: the RNN agent's output, or (`--agent iqn`) the IQN agent's
        mean over N fractions (N = the learner's N), one tau vector shared by a sample's agents."""
        if not getattr(agent, "quantile_input", False):
            return unroll(agent, batch, self.n_actions)
        B, T1, n = batch["obs"].shape[:3]
        return unroll(agent, batch, self.n_actions, self._taus(B, T1, n, N or self.N)).mean(-1)

    def _td_loss(self, batch, r, term, mask, avail, actions, state):
        q = self.utilities(self.agent, batch)  # [B, T+1, n, A]
        with torch.no_grad():
            tq = self.utilities(self.target_agent, batch, self.N_target)
        chosen = q[:, :-1].gather(-1, actions[:, :-1, :, None]).squeeze(-1)  # Q_i(tau_i, a_i)
        q_masked = q.detach().masked_fill(avail == 0, -1e10)
        tq_masked = tq.masked_fill(avail == 0, -1e10)
        next_a = q_masked[:, 1:].argmax(-1) if self.double_q else tq_masked[:, 1:].argmax(-1)
        target_chosen = tq[:, 1:].gather(-1, next_a[..., None]).squeeze(-1)
        if self.mixer is None:  # IQL: every agent regresses on the team reward
            q_tot, target = chosen, target_chosen
            y = r.unsqueeze(-1) + self.gamma * (1 - term.unsqueeze(-1)) * target
            m = mask.unsqueeze(-1).expand_as(q_tot)
        else:
            onehot = F.one_hot(actions[:, :-1], self.n_actions).float()
            q_tot = self.mixer(chosen, state[:, :-1], onehot, q_masked[:, :-1].max(-1).values)
            with torch.no_grad():
                target = self.target_mixer(target_chosen, state[:, 1:], F.one_hot(next_a, self.n_actions).float(),
                                           tq_masked[:, 1:].max(-1).values)
            y = r + self.gamma * (1 - term) * target  # Bellman target
            m = mask
        td = (q_tot - y.detach()) * m
        return td.pow(2).sum() / m.sum(), {"q_taken_mean": (q_tot * m).sum().item() / m.sum().item()}

    @torch.no_grad()
    def target_quantiles(self, batch):
        """The target network's N' quantile samples Z_i'(tau'_j, .) [B, T+1, n, A, N'], its mean estimate E[Z_i'] over the
        available actions (unavailable: -1e10) and the greedy target action a* = argmax_a E[Z_i'(a)] (no double Q).
        E[Z_i'] is the mean over K fresh fractions (IQN's Algorithm 1) or, with K = 0, over the N' target samples."""
        B, T1, n = batch["obs"].shape[:3]
        target_taus = self._taus(B, T1, n, self.N_target)
        if self.K:  # one unroll evaluates the N' target fractions and the K greedy fractions
            tz = unroll(self.target_agent, batch, self.n_actions, torch.cat([target_taus, self._taus(B, T1, n, self.K)], -1))
            tz, t_mean = tz[..., : self.N_target], tz[..., self.N_target:].mean(-1)
        else:
            tz = unroll(self.target_agent, batch, self.n_actions, target_taus)
            t_mean = tz.mean(-1)
        t_mean = t_mean.masked_fill(batch["avail"] == 0, -1e10)
        return tz, t_mean, t_mean[:, 1:].argmax(-1)

    def _dist_loss(self, batch, r, term, mask, avail, actions, state):
        B, T1, n = batch["obs"].shape[:3]
        taus = self._taus(B, T1, n, self.N)
        z = unroll(self.agent, batch, self.n_actions, taus)  # [B, T+1, n, A, N]
        tz, t_mean, next_a = self.target_quantiles(batch)
        if self.dfac_double_q:  # a* from the online network's mean E[Z_i] over its N fractions (official double_q branch)
            next_a = z.detach().mean(-1).masked_fill(avail == 0, -1e10)[:, 1:].argmax(-1)
        a = actions[:, :-1]
        chosen = z[:, :-1].gather(3, a[..., None, None].expand(B, T1 - 1, n, 1, self.N)).squeeze(3)  # Z_i(tau_i, a_i)
        target_chosen = tz[:, 1:].gather(3, next_a[..., None, None].expand(B, T1 - 1, n, 1, self.N_target)).squeeze(3)
        if self.mixer is None:  # DIQL: per-agent quantile regression on the team reward
            y = r[..., None, None] + self.gamma * (1 - term[..., None, None]) * target_chosen
            l = quantile_huber_loss(chosen, taus[:, :-1], y, self.kappa)  # [B, T, n]
            m = mask.unsqueeze(-1).expand_as(l)
            z_tot = chosen
        else:
            max_q = z.detach().mean(-1).masked_fill(avail == 0, -1e10).max(-1).values
            z_tot = self.mixer(chosen, state[:, :-1], F.one_hot(a, self.n_actions).float(), max_q[:, :-1])  # [B, T, N]
            with torch.no_grad():
                tz_tot = self.target_mixer(target_chosen, state[:, 1:], F.one_hot(next_a, self.n_actions).float(),
                                           t_mean[:, 1:].max(-1).values)  # [B, T, N']
            y = r[..., None] + self.gamma * (1 - term[..., None]) * tz_tot  # distributional Bellman target
            l = quantile_huber_loss(z_tot, taus[:, :-1, 0], y, self.kappa)  # [B, T]
            m = mask
        mean = z_tot.detach().mean(-1)
        return (l * m).sum() / m.sum(), {"q_taken_mean": (mean * m).sum().item() / m.sum().item()}

    def train_step(self, batch) -> dict:
        loss, info = self.loss(batch)
        self.opt.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.opt.step()
        return {"loss": loss.item(), "grad_norm": float(grad_norm), **info}

    def state_dict(self):
        return {"agent": self.agent.state_dict(), "mixer": None if self.mixer is None else self.mixer.state_dict(),
                "target_agent": self.target_agent.state_dict(),
                "target_mixer": None if self.mixer is None else self.target_mixer.state_dict(),
                "opt": self.opt.state_dict()}

    def load_state_dict(self, sd):
        self.agent.load_state_dict(sd["agent"])
        self.target_agent.load_state_dict(sd["target_agent"])
        if self.mixer is not None:
            self.mixer.load_state_dict(sd["mixer"])
            self.target_mixer.load_state_dict(sd["target_mixer"])
        self.opt.load_state_dict(sd["opt"])
