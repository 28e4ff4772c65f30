"""The distributional target's greedy action a* = argmax_a E[Z'(a)] (IQN's Algorithm 1, the DFAC target).

A stand-in target network whose two actions' quantile functions cross: Z(tau, 0) = 1 (mean 1) and
Z(tau, 1) = 0.8 + 2 (tau - 0.5) (mean 0.8, but above action 0 for tau > 0.6). The greedy action on the mean is 0.
Picking a* from the mean of N' = 1 target sample (the official DFAC code's DDN, `n_greedy_quantiles` 0) takes
action 1 whenever that one fraction exceeds 0.6, i.e. 40% of the time, and its target is then the upper
envelope max_a Z(tau', a), which overestimates E[Z'(a*)]. K = 32 fresh fractions pick action 0 almost always.
"""

import torch
import torch.nn as nn

from dfac.learner import Learner
from dfac.mixers import DDNMixer


class CrossingQuantiles(nn.Module):
    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def init_hidden(self, batch):
        return self.dummy.new_zeros(batch, 1)

    def forward(self, inputs, h, taus):  # taus [M, N] -> z [M, A = 2, N]
        return torch.stack([torch.ones_like(taus), 0.8 + 2 * (taus - 0.5)], 1) + 0 * self.dummy, h


def _batch(B=64, T1=6, n=3):
    return {"obs": torch.zeros(B, T1, n, 2), "actions": torch.zeros(B, T1, n, dtype=torch.long),
            "filled": torch.ones(B, T1), "avail": torch.ones(B, T1, n, 2)}


def _share_greedy_on_mean(K):
    torch.manual_seed(0)
    learner = Learner("ddn", CrossingQuantiles(), DDNMixer(), n_actions=2, n_quantiles=1, n_target_quantiles=1,
                      n_greedy_quantiles=K)
    tz, t_mean, next_a = learner.target_quantiles(_batch())
    assert tz.shape == (64, 6, 3, 2, 1) and next_a.shape == (64, 5, 3)
    return (next_a == 0).float().mean().item()


def test_target_action_is_greedy_on_the_mean_with_k_fractions():
    assert _share_greedy_on_mean(32) > 0.95  # a wrong pick needs the mean of 32 fractions above 0.6: P ~ 2.5%


def test_one_target_sample_picks_the_upper_envelope():
    share = _share_greedy_on_mean(0)  # the official code's choice with N' = 1
    assert 0.5 < share < 0.7  # ~ P(tau' < 0.6) = 0.6


def test_default_is_the_official_choice():
    from dfac.config import Config
    from dfac.run import JobSettings

    assert Config().n_greedy_quantiles == JobSettings(t_max=1).n_greedy_quantiles == 0  # official iqn_learner


class ConstantUtilities(nn.Module):
    """Z(tau, a) = values[a] for every tau: the mean picks argmax(values)."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values)
        self.dummy = nn.Parameter(torch.zeros(()))

    def init_hidden(self, batch):
        return self.dummy.new_zeros(batch, 1)

    def forward(self, inputs, h, taus):  # taus [M, N] -> z [M, A, N]
        return self.values[None, :, None].expand(taus.shape[0], -1, taus.shape[1]) + 0 * self.dummy, h


class RecordingMixer(DDNMixer):
    def forward(self, agent_zs, states=None, actions_onehot=None, max_qs=None):
        self.actions = actions_onehot.argmax(-1)
        return super().forward(agent_zs)


def _target_actions(dfac_double_q: bool):
    torch.manual_seed(0)
    learner = Learner("ddn", ConstantUtilities([0.0, 1.0]), RecordingMixer(), n_actions=2, n_quantiles=4, n_target_quantiles=4,
                      dfac_double_q=dfac_double_q)
    learner.target_agent = ConstantUtilities([1.0, 0.0])  # the target network prefers action 0, the online network 1
    batch = {**_batch(B=4), "reward": torch.zeros(4, 6), "terminated": torch.zeros(4, 6), "state": torch.zeros(4, 6, 1)}
    learner.loss(batch)
    return learner.target_mixer.actions


def test_dfac_double_q_takes_the_target_action_from_the_online_mean():
    assert (_target_actions(False) == 0).all()  # official DFAC default: a* from the target network's mean
    assert (_target_actions(True) == 1).all()  # --dfac_double_q true: a* from the online network's mean


def test_dfac_double_q_reaches_the_learner_from_the_command_line(load_script):
    from dfac.config import Config, parse_args
    from dfac.envs.matrix_game import TwoStepMatrixGame
    from dfac.run import build
    train = load_script("train")

    assert Config().dfac_double_q is False  # official dmix.yaml / ddn.yaml: double_q False
    cfg = parse_args(["--dfac_double_q", "true"])
    env = TwoStepMatrixGame(n_envs=1)
    learner, _ = build("dmix", env, train.settings(cfg, "dmix", 10, env))
    assert learner.dfac_double_q is True
