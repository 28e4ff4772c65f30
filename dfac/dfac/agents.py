"""Agent networks, shared by all agents (parameter sharing with an agent one-hot in the input).

RNNAgent    : PyMARL's fc1 -> ReLU -> GRUCell -> fc2, outputs Q_i(tau_i, .)      (VDN / QMIX / QPLEX / IQL)
IQNRNNAgent : DFAC's IQN-RNN, outputs Z_i(tau_i, ., tau) for N quantile fractions (DIQL / DDN / DMIX / DPLEX)

`quantile_input` says whether the agent takes the fractions tau. The pairing above is the default (`--agent auto`);
`--agent rnn|iqn` swaps it for ablations: given fractions, the RNN agent returns Q_i for every tau (a constant quantile
function, so a DFAC mixture's shape term is zero), and an expected-value learner uses the IQN agent's mean over tau.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .quantile import cosine_embedding


class RNNAgent(nn.Module):
    quantile_input = False

    def __init__(self, input_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(input_dim, hidden)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.fc1.weight.new_zeros(batch, self.hidden)

    def forward(self, inputs, h, taus=None):
        """inputs [M, input_dim], h [M, H] -> q [M, A], h'; with taus [M, N]: q expanded to [M, A, N] (Z_i(tau) = Q_i)."""
        h = self.rnn(F.relu(self.fc1(inputs)), h)
        q = self.fc2(h)
        return (q if taus is None else q.unsqueeze(-1).expand(-1, -1, taus.shape[-1])), h


class IQNRNNAgent(nn.Module):
    quantile_input = True

    def __init__(self, input_dim: int, n_actions: int, hidden: int = 64, n_cos: int = 64):
        super().__init__()
        self.hidden, self.n_cos = hidden, n_cos
        self.fc1 = nn.Linear(input_dim, hidden)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.phi = nn.Linear(n_cos, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.fc1.weight.new_zeros(batch, self.hidden)

    def forward(self, inputs, h, taus):
        """inputs [M, input_dim], h [M, H], taus [M, N] -> z [M, A, N] (quantiles of Z_i), h'.

        Z_i(tau) = fc2(h * ReLU(phi(cos(pi i tau))))   (IQN's Hadamard product with the quantile embedding)
        """
        h = self.rnn(F.relu(self.fc1(inputs)), h)
        emb = F.relu(self.phi(cosine_embedding(taus, self.n_cos)))  # [M, N, H]
        z = self.fc2(h.unsqueeze(1) * emb)  # [M, N, A]
        return z.transpose(1, 2), h
