"""The learner's Bellman target and masks, for every algorithm (a defect here would inflate values whatever the agents do).

- a terminal step's target is r, for every target quantile: the loss does not depend on the target networks;
- a step that ended by the time limit (filled, not terminated) bootstraps: the loss depends on the target networks
  and on the stored final state s_{t+1} (the target mixer's input);
- padded steps (and everything after a terminal step) change neither the loss nor any gradient;
- time alignment: y_t = r_t + gamma (1 - term_t) f'(Z'(o_{t+1}), s_{t+1}), checked against stand-in networks whose
  outputs are read off the observation and the state.
"""
import pytest
import torch
import torch.nn as nn

import dfac.learner as learner_mod
from dfac.envs.matrix_game import TwoStepMatrixGame
from dfac.learner import Learner
from dfac.mixers import ALGORITHMS, DDNMixer, MeanShapeMixer, VDNMixer
from dfac.run import JobSettings, build

ALGS = sorted(ALGORITHMS)
N_AGENTS, OBS, STATE, A = 2, 3, 3, 2  # the matrix game's sizes (build() needs an env)


def _learner(alg, **kw):
    torch.manual_seed(0)
    # attend_reg_coef 0: Qatten's regulariser averages over every state of the batch, padded ones included (as the
    # official DMAQ_qattenLearner does), so it is switched off where padding must not matter
    s = JobSettings(t_max=1, n_quantiles=4, attend_reg_coef=0.0, **kw)
    learner, _ = build(alg, TwoStepMatrixGame(n_envs=1), s)
    return learner


def _batch(lengths, terminal, T1=None, seed=0):
    """Episodes of the given lengths; episode b ends terminal (terminal[b]) or by the time limit. Index `len` holds the
    final observation; everything after it is zero padding, as the runner writes it."""
    g = torch.Generator().manual_seed(seed)
    B, T1 = len(lengths), T1 or max(lengths) + 1
    b = {"obs": torch.rand(B, T1, N_AGENTS, OBS, generator=g), "state": torch.rand(B, T1, STATE, generator=g),
         "avail": torch.ones(B, T1, N_AGENTS, A), "actions": torch.randint(0, A, (B, T1, N_AGENTS), generator=g),
         "reward": torch.rand(B, T1, generator=g), "terminated": torch.zeros(B, T1), "filled": torch.zeros(B, T1)}
    for i, (L, term) in enumerate(zip(lengths, terminal)):
        b["filled"][i, :L] = 1
        b["terminated"][i, L - 1] = float(term)
        for k in ("obs", "state", "avail", "actions"):
            b[k][i, L + 1:] = 0
        b["reward"][i, L:] = 0
    return b


def _loss_and_grads(learner, batch, seed=1):
    torch.manual_seed(seed)  # the same fractions tau for every call
    learner.opt.zero_grad()
    loss, _ = learner.loss(batch)
    loss.backward()
    return loss.detach(), [None if p.grad is None else p.grad.clone() for p in learner.params]


def _perturb_targets(learner):
    torch.manual_seed(123)
    for net in (learner.target_agent, learner.target_mixer):
        for p in ([] if net is None else net.parameters()):
            p.data = 3 * torch.randn_like(p)


@pytest.mark.parametrize("alg", ALGS)
def test_terminal_step_does_not_bootstrap(alg):
    learner = _learner(alg)
    batch = _batch([1, 1, 1], [True, True, True])
    before, _ = _loss_and_grads(learner, batch)
    _perturb_targets(learner)
    after, _ = _loss_and_grads(learner, batch)
    assert torch.equal(before, after)


@pytest.mark.parametrize("alg", ALGS)
def test_time_limit_step_bootstraps_from_the_final_state(alg):
    learner = _learner(alg)
    batch = _batch([1, 1, 1], [False, False, False])
    before, _ = _loss_and_grads(learner, batch)
    moved = {**batch, "obs": batch["obs"].clone()}
    moved["obs"][:, 1] += 1.0  # the final observation o_{t+1}
    assert not torch.allclose(before, _loss_and_grads(learner, moved)[0])
    if ALGORITHMS[alg][1] not in (None, "vdn"):  # mixers that read the state: the target mixer sees s_{t+1}
        moved = {**batch, "state": batch["state"].clone()}
        moved["state"][:, 1] += 1.0
        assert not torch.allclose(before, _loss_and_grads(learner, moved)[0])
    _perturb_targets(learner)
    assert not torch.allclose(before, _loss_and_grads(learner, batch)[0])


@pytest.mark.parametrize("alg", ALGS)
def test_padding_and_steps_after_a_terminal_contribute_nothing(alg):
    learner = _learner(alg)
    lengths, terminal = [1, 3, 5, 2], [True, False, True, False]
    batch = _batch(lengths, terminal)
    loss, grads = _loss_and_grads(learner, batch)
    g = torch.Generator().manual_seed(7)
    noisy = {k: v.clone() for k, v in batch.items()}
    for i, (L, term) in enumerate(zip(lengths, terminal)):
        start = L if term else L + 1  # a terminal episode's final observation is never used either
        noisy["obs"][i, start:] = 5 * torch.rand(noisy["obs"][i, start:].shape, generator=g)
        noisy["state"][i, start:] = 5 * torch.rand(noisy["state"][i, start:].shape, generator=g)
        noisy["actions"][i, start:] = torch.randint(0, A, noisy["actions"][i, start:].shape, generator=g)
        noisy["reward"][i, L:] = 9.0
        noisy["terminated"][i, L:] = 1.0
    loss2, grads2 = _loss_and_grads(learner, noisy)
    assert torch.allclose(loss, loss2, atol=1e-6, rtol=1e-5)
    for a, b in zip(grads, grads2):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


class ReadObs(nn.Module):
    """Stand-in agent: every action's utility (and every quantile) is c * o[0], the first observation feature."""
    quantile_input = True

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.dummy = nn.Parameter(torch.zeros(()))

    def init_hidden(self, batch):
        return self.dummy.new_zeros(batch, 1)

    def forward(self, inputs, h, taus=None):
        q = self.c * inputs[:, :1].expand(-1, A) + self.dummy  # build_inputs puts the observation first
        return (q if taus is None else q.unsqueeze(-1).expand(-1, -1, taus.shape[-1])), h


class StatePlusSum(nn.Module):
    """Stand-in expected-value mixer f(Q, s) = sum_i Q_i + s[0]."""

    def forward(self, agent_qs, states, actions_onehot=None, max_qs=None):
        return agent_qs.sum(-1) + states[..., 0]


@pytest.mark.parametrize("alg", ["diql", "ddn", "dmix", "iql", "vdn", "qmix"])
def test_target_is_r_plus_gamma_the_next_steps_target_mixture(alg, monkeypatch):
    """y_t = r_t + gamma (1 - term_t) f'(Z'(o_{t+1}), s_{t+1}) on a padded batch, with online utilities 0.5 o_t[0] and
    target utilities o_{t+1}[0]; checked for every target quantile (DFAC) or through the TD loss (expected value)."""
    distributional, kind = ALGORITHMS[alg]
    if kind is None:
        mixer = None
    elif kind == "vdn":
        mixer = DDNMixer() if distributional else VDNMixer()
    else:
        mixer = MeanShapeMixer(StatePlusSum()) if distributional else StatePlusSum()
    learner = Learner(alg, ReadObs(0.5), mixer, A, gamma=0.9, n_quantiles=3, n_target_quantiles=5)
    learner.target_agent = ReadObs(1.0)
    batch = _batch([1, 3, 4], [True, False, False])
    r, term, o, s = batch["reward"][:, :-1], batch["terminated"][:, :-1], batch["obs"][..., 0], batch["state"][..., 0]
    mask = batch["filled"][:, :-1]
    if kind is None:  # per agent: y_{t,i} = r_t + gamma (1 - term_t) o_{t+1,i}
        y_ref = r[..., None] + 0.9 * (1 - term[..., None]) * o[:, 1:]
        q_ref = 0.5 * o[:, :-1]
    else:
        nxt = o[:, 1:].sum(-1) + (0 if kind == "vdn" else s[:, 1:])
        y_ref = r + 0.9 * (1 - term) * nxt
        q_ref = 0.5 * o[:, :-1].sum(-1) + (0 if kind == "vdn" else s[:, :-1])
    if distributional:
        seen = {}

        def spy(z, taus, target, kappa=1.0):
            seen["z"], seen["y"] = z.detach(), target.detach()
            return quantile_huber_loss(z, taus, target, kappa)

        quantile_huber_loss = learner_mod.quantile_huber_loss
        monkeypatch.setattr(learner_mod, "quantile_huber_loss", spy)
        learner.loss(batch)
        assert seen["y"].shape[-1] == 5 and seen["z"].shape[-1] == 3  # N' target samples, N online quantiles
        m = (mask > 0)[..., None, None] if kind is None else (mask > 0)[..., None]
        m = m.expand_as(seen["y"])
        assert torch.allclose(seen["y"][m], y_ref[..., None].expand_as(seen["y"])[m], atol=1e-6)
        assert torch.allclose(seen["z"][m[..., :3]], q_ref[..., None].expand_as(seen["z"])[m[..., :3]], atol=1e-6)
    else:
        loss, _ = learner.loss(batch)
        mm = mask[..., None].expand_as(q_ref) if kind is None else mask
        ref = ((q_ref - y_ref) ** 2 * mm).sum() / mm.sum()
        assert torch.allclose(loss, ref, atol=1e-6)
