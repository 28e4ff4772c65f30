"""The multi-agent controller (PyMARL's BasicMAC): builds the agents' inputs, keeps the GRU state,
and acts epsilon-greedily on E[Z_i] (the mean over N^ sampled quantiles) or on Q_i."""
import numpy as np
import torch
import torch.nn.functional as F

from .agents import IQNRNNAgent, RNNAgent
from .quantile import sample_taus


def input_dim(obs_dim: int, n_actions: int, n_agents: int) -> int:
    return obs_dim + n_actions + n_agents  # observation + last action one-hot + agent one-hot


def build_inputs(obs: torch.Tensor, last_actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """obs [..., n, o], last_actions [..., n] (long, -1 = none) -> [..., n, o + A + n]."""
    n = obs.shape[-2]
    last = F.one_hot(last_actions.clamp(min=0), n_actions).to(obs.dtype) * (last_actions >= 0).unsqueeze(-1).to(obs.dtype)
    ids = torch.eye(n, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-2], n, n)
    return torch.cat([obs, last, ids], -1)


def make_agent(distributional: bool, obs_dim: int, n_actions: int, n_agents: int, hidden: int, kind: str = "auto"):
    """kind: auto (IQN-RNN for the DFAC learners, RNN for the expected-value ones), rnn or iqn (ablations)."""
    if kind not in ("auto", "rnn", "iqn"):
        raise ValueError(f"agent must be auto, rnn or iqn, got {kind!r}")
    iqn = distributional if kind == "auto" else kind == "iqn"
    return (IQNRNNAgent if iqn else RNNAgent)(input_dim(obs_dim, n_actions, n_agents), n_actions, hidden)


class Controller:
    def __init__(self, agent, n_agents: int, n_actions: int, n_act_quantiles: int = 32):
        self.agent, self.n_agents, self.n_actions = agent, n_agents, n_actions
        self.distributional, self.n_act_quantiles = agent.quantile_input, n_act_quantiles  # IQN agent: act on E[Z_i]
        self.h = None

    def init_hidden(self, n_envs: int):
        self.h = self.agent.init_hidden(n_envs * self.n_agents)
        self.device = self.h.device
        self.last = torch.full((n_envs, self.n_agents), -1, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def utilities(self, obs: np.ndarray) -> torch.Tensor:
        """E[Z_i(tau_i, .)] or Q_i(tau_i, .) for the current step; advances the GRU. -> [B, n, A]"""
        x = build_inputs(torch.as_tensor(obs, device=self.device), self.last, self.n_actions)
        B = x.shape[0]
        x = x.reshape(B * self.n_agents, -1)
        taus = sample_taus((B * self.n_agents, self.n_act_quantiles), self.device) if self.distributional else None
        out, self.h = self.agent(x, self.h, taus)
        if self.distributional:
            out = out.mean(-1)  # acting on the mean over N^ quantiles
        return out.view(B, self.n_agents, self.n_actions)

    def select_actions(self, obs, avail, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        q = self.utilities(obs).cpu().numpy()
        q = np.where(avail > 0, q, -np.inf)
        greedy = q.argmax(-1)
        # epsilon-greedy over the available actions
        rand = np.array([[rng.choice(np.flatnonzero(av)) for av in env_av] for env_av in avail]) if epsilon > 0 else greedy
        explore = rng.random(greedy.shape) < epsilon
        actions = np.where(explore, rand, greedy)
        self.last = torch.as_tensor(actions, dtype=torch.long, device=self.device)
        return actions
