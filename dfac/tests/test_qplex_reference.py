"""QPLEX's TD loss against an independent reference that follows the official learner's order of operations
(wjh720/QPLEX, also used by the DFAC repository for its QPLEX baseline): `DMAQ_qattenLearner.sub_train` with the
`dmaq_qatten` mixer (`Qatten_Weight` + `DMAQ_SI_Weight`), defaults of `qplex_qatten_sc2.yaml` (double_q,
is_minus_one, no weighted heads, linear keys, state bias, attend_reg_coef 0.001). The reference is written here
against our modules' parameters (no code is taken from that repository); it reads the official code only for
facts: which network picks the argmax, where the advantage is detached, the is_minus_one convention.

The reference recomputes everything from the mixer's parameters, step by step (two mixer calls, is_v=True for
the value and is_v=False for the advantage; unavailable actions set to -9999999), on a padded batch with
unavailable actions and an online network that differs from the target network. Our learner must give the
same loss and the same gradients.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfac.learner import unroll
from dfac.run import JobSettings, build

B, T1, N_AGENTS, N_ACTIONS, OBS, UNIT = 4, 7, 3, 6, 5, 4
STATE = UNIT * N_AGENTS + 5


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = [6, 3, 6, 1]  # episode lengths (the batch holds T1 = max + 1 steps)
    filled = torch.zeros(B, T1)
    term = torch.zeros(B, T1)
    avail = torch.zeros(B, T1, N_AGENTS, N_ACTIONS)
    for b, L in enumerate(lengths):
        filled[b, :L] = 1
        if b != 2:  # episode 2 ends by the time limit, the others terminate
            term[b, L - 1] = 1
        a = (torch.rand(L + 1, N_AGENTS, N_ACTIONS, generator=g) < 0.5).float()
        a[..., 4] = 1  # "stop" is always available, as in SMAX
        avail[b, : L + 1] = a  # real steps and the final observation; padding stays all-zero
    logits = torch.randn(B, T1, N_AGENTS, N_ACTIONS, generator=g).masked_fill(avail == 0, -1e9)
    actions = logits.argmax(-1) * (filled[..., None] > 0)
    return {"obs": torch.randn(B, T1, N_AGENTS, OBS, generator=g) * filled[..., None, None],
            "state": torch.rand(B, T1, STATE, generator=g), "avail": avail, "actions": actions.long(),
            "reward": torch.rand(B, T1, generator=g) * filled, "terminated": term, "filled": filled}


def _qatten_official(att, states):
    """Qatten_Weight.forward (weighted_head False, nonlinear False, mask_dead False, state_bias True)."""
    states = states.reshape(-1, STATE)
    unit_states = states[:, : UNIT * N_AGENTS].reshape(-1, N_AGENTS, UNIT).permute(1, 0, 2)
    selectors = [sel(states) for sel in att.selectors]
    keys = [[k(enc) for enc in unit_states] for k in att.keys]
    logits, weights = [], []
    for head_keys, selector in zip(keys, selectors):
        attend_logits = torch.matmul(selector.view(-1, 1, att.embed_dim), torch.stack(head_keys).permute(1, 2, 0))
        weights.append(F.softmax(attend_logits / np.sqrt(att.embed_dim), dim=2))
        logits.append(attend_logits)
    head_attend = torch.stack(weights, 1).view(-1, len(att.keys), N_AGENTS).sum(1)
    regs = att.attend_reg_coef * sum((lg ** 2).mean() for lg in logits)
    return head_attend, att.V(states).view(-1, 1), regs


def _si_weight_official(mixer, states, actions):
    """DMAQ_SI_Weight.forward (adv_hypernet_layers 1, num_kernel heads)."""
    states, actions = states.reshape(-1, STATE), actions.reshape(-1, N_AGENTS * N_ACTIONS)
    data = torch.cat([states, actions], 1)
    heads = []
    for key, agents, action in zip(mixer.key, mixer.agents, mixer.action):
        x_key = torch.abs(key(states)).repeat(1, N_AGENTS) + 1e-10
        heads.append(x_key * torch.sigmoid(agents(states)) * torch.sigmoid(action(data)))
    return torch.stack(heads, 1).sum(1)


def _mixer_official(mixer, agent_qs, states, actions=None, max_q_i=None, is_v=False):
    """DMAQ_QattenMixer.forward with is_minus_one True."""
    bs = agent_qs.size(0)
    w_final, v, regs = _qatten_official(mixer.attention, states)
    w_final = w_final.view(-1, N_AGENTS) + 1e-10
    v = v.view(-1, 1).repeat(1, N_AGENTS) / N_AGENTS
    agent_qs = w_final * agent_qs.view(-1, N_AGENTS) + v
    if is_v:
        y = agent_qs.sum(-1)
    else:
        max_q_i = w_final * max_q_i.view(-1, N_AGENTS) + v
        adv_q = (agent_qs - max_q_i).detach()
        y = (adv_q * (_si_weight_official(mixer, states, actions).view(-1, N_AGENTS) - 1.0)).sum(1)
    return y.view(bs, -1, 1), regs


def _official_loss(learner, batch, gamma):
    """DMAQ_qattenLearner.sub_train, double_q True, mixer dmaq_qatten."""
    rewards, actions = batch["reward"][:, :-1, None], batch["actions"][:, :-1, :, None]
    terminated = batch["terminated"][:, :-1, None]
    mask = batch["filled"][:, :-1, None].clone()
    mask[:, 1:] = mask[:, 1:] * (1 - terminated[:, :-1])
    avail = batch["avail"]
    actions_onehot = F.one_hot(batch["actions"][:, :-1], N_ACTIONS).float()
    mac_out = unroll(learner.agent, batch, N_ACTIONS)
    chosen = torch.gather(mac_out[:, :-1], 3, actions).squeeze(3)
    x_mac_out = mac_out.clone().detach()
    x_mac_out[avail == 0] = -9999999
    max_action_qvals = x_mac_out[:, :-1].max(3)[0]
    target_mac_out = unroll(learner.target_agent, batch, N_ACTIONS)[:, 1:].detach()
    target_mac_out[avail[:, 1:] == 0] = -9999999
    mac_out_detach = mac_out.clone().detach()
    mac_out_detach[avail == 0] = -9999999
    cur_max_actions = mac_out_detach[:, 1:].max(3, keepdim=True)[1]
    target_chosen_qvals = torch.gather(target_mac_out, 3, cur_max_actions).squeeze(3)
    target_max_qvals = target_mac_out.max(3)[0]
    cur_onehot = torch.zeros(cur_max_actions.squeeze(3).shape + (N_ACTIONS,)).scatter_(3, cur_max_actions, 1)
    ans_chosen, regs = _mixer_official(learner.mixer, chosen, batch["state"][:, :-1], is_v=True)
    ans_adv, _ = _mixer_official(learner.mixer, chosen, batch["state"][:, :-1], actions=actions_onehot,
                                 max_q_i=max_action_qvals, is_v=False)
    q_tot = ans_chosen + ans_adv
    with torch.no_grad():
        t_chosen, _ = _mixer_official(learner.target_mixer, target_chosen_qvals, batch["state"][:, 1:], is_v=True)
        t_adv, _ = _mixer_official(learner.target_mixer, target_chosen_qvals, batch["state"][:, 1:], actions=cur_onehot,
                                   max_q_i=target_max_qvals, is_v=False)
    targets = rewards + gamma * (1 - terminated) * (t_chosen + t_adv)
    masked_td = (q_tot - targets.detach()) * mask
    return (masked_td ** 2).sum() / mask.sum() + regs


@pytest.mark.parametrize("seed", [0, 1])
def test_qplex_loss_and_gradients_match_the_official_learner(seed):
    torch.manual_seed(seed)
    env = SimpleNamespace(obs_dim=OBS, n_actions=N_ACTIONS, n_agents=N_AGENTS, state_dim=STATE, unit_dim=UNIT)
    learner, _ = build("qplex", env, JobSettings(t_max=1, qplex_attention=True))
    with torch.no_grad():  # the online networks move away from the target copies, so double Q matters
        for p in learner.params:
            p.add_(0.3 * torch.randn_like(p))
    batch = _batch(seed)
    ours = learner.loss(batch)[0]
    grads = torch.autograd.grad(ours, learner.params, allow_unused=True)
    ref = _official_loss(learner, batch, learner.gamma)
    ref_grads = torch.autograd.grad(ref, learner.params, allow_unused=True)
    assert torch.isfinite(ours) and ref.item() > 0
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7), (ours.item(), ref.item())
    for g, rg in zip(grads, ref_grads):
        g = torch.zeros(()) if g is None else g
        rg = torch.zeros(()) if rg is None else rg
        assert torch.allclose(g, rg, rtol=1e-4, atol=1e-7)
