"""Value-function factorizations.

Expected-value mixers  f(Q_1..Q_n, s) -> Q_jt              (VDN, QMIX, QPLEX)
DFAC quantile mixtures  Z_1..Z_n, s   -> Z_jt(tau)          (DDN, DMIX, DPLEX)

Shapes: agent_qs [B, T, n], states [B, T, S], actions_onehot [B, T, n, A], max_qs [B, T, n];
agent_zs [B, T, n, N] are the utilities' quantile samples at a shared tau vector.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class VDNMixer(nn.Module):
    """Q_jt = sum_i Q_i   (VDN, Sunehag et al. 2018)."""

    def forward(self, agent_qs, states=None, actions_onehot=None, max_qs=None):
        return agent_qs.sum(-1)


class QMixer(nn.Module):
    """QMIX (Rashid et al. 2018): a monotonic two-layer mixing network whose weights come from
    hypernetworks of the state, |W| >= 0 so dQ_jt/dQ_i >= 0 (QMIX monotonicity constraint), ELU hidden, state bias V(s).
    `state_value` False drops the V(s) term (an ablation; V's parameters then get no gradient)."""

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_embed: int = 64, state_value: bool = True):
        super().__init__()
        self.n_agents, self.embed_dim, self.state_value = n_agents, embed_dim, state_value
        self.hyper_w_1 = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim * n_agents))
        self.hyper_w_final = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim))
        self.hyper_b_1 = nn.Linear(state_dim, embed_dim)
        self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, agent_qs, states, actions_onehot=None, max_qs=None):
        lead = agent_qs.shape[:-1]
        qs = agent_qs.reshape(-1, 1, self.n_agents)
        s = states.reshape(-1, states.shape[-1])
        w1 = self.hyper_w_1(s).abs().view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b_1(s).view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(qs, w1) + b1)
        w_final = self.hyper_w_final(s).abs().view(-1, self.embed_dim, 1)
        q = torch.bmm(hidden, w_final)
        return (q + self.V(s).view(-1, 1, 1) if self.state_value else q).view(lead)


class QattenWeight(nn.Module):
    """Qatten's multi-head attention weights (Yang et al. 2020), as QPLEX / DPLEX use them for the
    transformation's w_i(s) (official `Qatten_Weight`, defaults of dplex.yaml: no weighted heads, linear keys):

    lambda_{h,i}(s) = softmax_i( e_h(s)^T k_h(u_i) / sqrt(d) ),   w_i(s) = sum_h lambda_{h,i}(s),   b(s) = V(s)
    e_h: selector (query) hypernetwork of the state; k_h: key of agent i's own features u_i in the state.
    The regulariser attend_reg_coef * sum_h mean(logits_h^2) keeps the attention logits small; it is left in
    `aux_loss` after each forward pass and added to the loss by the learner.
    """

    def __init__(self, n_agents: int, state_dim: int, unit_dim: int, embed_dim: int = 32, hypernet_embed: int = 64,
                 n_head: int = 4, attend_reg_coef: float = 1e-3):
        super().__init__()
        if unit_dim * n_agents > state_dim:
            raise ValueError(f"unit_dim {unit_dim} x {n_agents} agents exceeds the state size {state_dim}")
        self.n_agents, self.unit_dim, self.embed_dim, self.attend_reg_coef = n_agents, unit_dim, embed_dim, attend_reg_coef
        self.selectors = nn.ModuleList(nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(),
                                                     nn.Linear(hypernet_embed, embed_dim, bias=False)) for _ in range(n_head))
        self.keys = nn.ModuleList(nn.Linear(unit_dim, embed_dim, bias=False) for _ in range(n_head))
        self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, s):
        """s [M, S] -> w [M, n] (> 0), b [M, 1], attention regulariser (scalar)."""
        units = s[:, : self.unit_dim * self.n_agents].reshape(-1, self.n_agents, self.unit_dim)  # agents' own features
        w, reg = 0, 0
        for selector, key in zip(self.selectors, self.keys):
            logits = torch.einsum("me,mne->mn", selector(s), key(units))  # e_h(s)^T k_h(u_i)
            w = w + torch.softmax(logits / self.embed_dim ** 0.5, -1)
            reg = reg + logits.pow(2).mean()
        return w + 1e-10, self.V(s), self.attend_reg_coef * reg


class QPLEXMixer(nn.Module):
    """QPLEX duplex dueling (Wang et al. 2021), in the form of PyMARL's `dmaq_general` mixer:

    transformation  Q_i' = w_i(s) Q_i + b(s)/n,   V_i' = w_i(s) max_a Q_i + b(s)/n,   w_i > 0
    Q_jt = sum_i Q_i' + sum_i (lambda_i(s, a) - 1) (Q_i' - V_i')       (QPLEX duplex dueling, PyMARL "is_minus_one")
    lambda_i(s, a) = sum_k |key_k(s)| * sigmoid(agents_k(s))_i * sigmoid(action_k(s, a))_i  (num_kernel heads)

    The advantage term is detached as in the official code. With `attention` (official `dmaq_qatten` / DPLEX),
    w_i(s) and b(s) come from QattenWeight instead of |hyper_w_final(s)| and V(s), and its attention
    regulariser is left in `aux_loss`.
    """

    def __init__(self, n_agents: int, state_dim: int, n_actions: int, embed_dim: int = 64, num_kernel: int = 4,
                 attention: bool = False, unit_dim: int = 0, n_head: int = 4, attend_reg_coef: float = 1e-3,
                 mixing_embed_dim: int = 32, hypernet_embed: int = 64):
        super().__init__()
        self.n_agents = n_agents
        self.aux_loss = torch.zeros(())
        if attention:
            self.attention = QattenWeight(n_agents, state_dim, unit_dim, mixing_embed_dim, hypernet_embed, n_head, attend_reg_coef)
        else:
            self.attention = None
            self.hyper_w_final = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, n_agents))
            self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))
        self.key = nn.ModuleList(nn.Linear(state_dim, 1) for _ in range(num_kernel))
        self.agents = nn.ModuleList(nn.Linear(state_dim, n_agents) for _ in range(num_kernel))
        self.action = nn.ModuleList(nn.Linear(state_dim + n_agents * n_actions, n_agents) for _ in range(num_kernel))

    def weights(self, s):
        """w_i(s) > 0 and b(s) of the transformation; sets aux_loss (the attention regulariser, or 0)."""
        if self.attention is not None:
            w, b, self.aux_loss = self.attention(s)
            return w, b
        self.aux_loss = torch.zeros((), device=s.device)
        return self.hyper_w_final(s).abs() + 1e-10, self.V(s)

    def lambdas(self, s, a):
        sa = torch.cat([s, a], -1)
        lam = 0
        for key, agents, action in zip(self.key, self.agents, self.action):
            lam = lam + (key(s).abs() + 1e-10) * torch.sigmoid(agents(s)) * torch.sigmoid(action(sa))
        return lam

    def forward(self, agent_qs, states, actions_onehot, max_qs):
        lead = agent_qs.shape[:-1]
        s = states.reshape(-1, states.shape[-1])
        w, b = self.weights(s)
        qs = w * agent_qs.reshape(-1, self.n_agents) + b / self.n_agents  # Q_i' = w_i Q_i + b / n
        vs = w * max_qs.reshape(-1, self.n_agents) + b / self.n_agents  # V_i' = w_i max_a Q_i + b / n
        v_tot = qs.sum(-1)
        adv = (qs - vs).detach()
        lam = self.lambdas(s, actions_onehot.reshape(s.shape[0], -1))
        return (v_tot + (adv * (lam - 1.0)).sum(-1)).view(lead)


class MeanShapeMixer(nn.Module):
    """DFAC quantile mixture with the mean-shape decomposition (DFAC, "mean-shape decomposition" section;
    equation numbers of the paper were not retrieved):

    Z_jt(tau) = f(E[Z_1], ..., E[Z_n] | s)  +  sum_i (Z_i(tau) - E[Z_i])
                `------ mean: expected-value mixer f` `------ shape: sum of centred quantile functions

    E[Z_i] is the sample mean over the N drawn fractions, so the mean of Z_jt over those same
    fractions is exactly f(E[Z]) and the greedy joint action is the one of f (IGM is kept).
    With f = VDN this is DDN (Z_jt = sum_i Z_i), with f = QMIX DMIX, with f = QPLEX DPLEX.
    """

    def __init__(self, mean_mixer: nn.Module):
        super().__init__()
        self.mean_mixer = mean_mixer

    def forward(self, agent_zs, states, actions_onehot=None, max_qs=None):
        means = agent_zs.mean(-1)  # E[Z_i]  [B, T, n]
        q_jt = self.mean_mixer(means, states, actions_onehot, max_qs)  # mean part
        shape = (agent_zs - means.unsqueeze(-1)).sum(-2)  # shape part [B, T, N]
        return q_jt.unsqueeze(-1) + shape


class DDNMixer(nn.Module):
    """DDN: Z_jt = sum_i Z_i (DFAC, DDN), identical to MeanShapeMixer(VDNMixer())."""

    def forward(self, agent_zs, states=None, actions_onehot=None, max_qs=None):
        return agent_zs.sum(-2)


ALGORITHMS = {
    # name: (distributional, mixer kind)
    "iql": (False, None), "vdn": (False, "vdn"), "qmix": (False, "qmix"), "qplex": (False, "qplex"),
    "diql": (True, None), "ddn": (True, "vdn"), "dmix": (True, "qmix"), "dplex": (True, "qplex"),
}


def mixer_aux_loss(mixer) -> torch.Tensor | float:
    """The attention regulariser of the last forward pass of a Qatten-weighted QPLEX / DPLEX mixer, else 0."""
    inner = getattr(mixer, "mean_mixer", mixer)
    return getattr(inner, "aux_loss", 0.0) if getattr(inner, "attention", None) is not None else 0.0


def build_mixer(alg: str, n_agents: int, state_dim: int, n_actions: int, mixing_embed_dim: int = 32, hypernet_embed: int = 64,
                qplex_attention: bool = False, unit_dim: int = 0, n_head: int = 4, attend_reg_coef: float = 1e-3,
                qmix_state_value: bool = True):
    distributional, kind = ALGORITHMS[alg]
    if kind is None:
        return None
    if kind == "vdn":
        return DDNMixer() if distributional else VDNMixer()
    if kind == "qmix":
        mean = QMixer(n_agents, state_dim, mixing_embed_dim, hypernet_embed, state_value=qmix_state_value)
    else:
        mean = QPLEXMixer(n_agents, state_dim, n_actions, attention=qplex_attention, unit_dim=unit_dim, n_head=n_head,
                          attend_reg_coef=attend_reg_coef, mixing_embed_dim=mixing_embed_dim, hypernet_embed=hypernet_embed)
    return MeanShapeMixer(mean) if distributional else mean
