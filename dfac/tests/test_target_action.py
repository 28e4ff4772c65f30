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
