"""What the two-step game must show (README, section 1), as short runs with +-2 reward noise.

DDN's mean is VDN's: E[Z_jt] = sum_i E[Z_i] is additive. Under uniform exploration the additive fit of
2B's payoff [[0, 1], [1, 8]] (each joint action weighted 1/4) is [[-1.5, 2.5], [2.5, 6.5]], whose best entry
6.5 is below 2A's 7, so DDN, like VDN in the QMIX paper, must take 2A. Under PyMARL's annealed epsilon
the data concentrate on the greedy joint action, and DDN must find the optimum (2B, then (1, 1)) and its
two-atom return distribution gamma * {6, 10}. A bug in the quantile mixture, the mean-shape split or the
target breaks one of these."""
import numpy as np
import torch

from dfac.envs.matrix_game import TwoStepMatrixGame
from dfac.matrix_eval import matrix_report
from dfac.run import JobSettings, train_job

ADDITIVE_FIT_2B = np.array([[-1.5, 2.5], [2.5, 6.5]])  # least-squares q_1(a_1) + q_2(a_2) of [[0, 1], [1, 8]]


def _matrix_job(alg, episodes, epsilon_finish, seed=0):
    torch.manual_seed(seed)
    env = TwoStepMatrixGame(n_envs=8, noise="plusminus", noise_scale=2.0, seed=seed)
    s = JobSettings(t_max=2 * episodes, epsilon_start=1.0, epsilon_finish=epsilon_finish, epsilon_anneal_time=episodes,
                    buffer_size=500, target_update_interval=100, n_quantiles=8, lr=2e-3, test_interval=10**9, test_episodes=8)
    learner, _, _ = train_job(alg, seed, env, s, progress=False)
    return matrix_report(learner, "plusminus", 2.0, 0.99)


def test_additive_fit_of_2b_is_below_2a():
    # the projection the test below expects: row/column means of 2B minus the grand mean
    P = np.array([[0.0, 1.0], [1.0, 8.0]])
    fit = P.mean(1, keepdims=True) + P.mean(0, keepdims=True) - P.mean()
    assert np.allclose(fit, ADDITIVE_FIT_2B) and fit.max() < 7.0


def test_ddn_mean_is_the_additive_fit_under_uniform_exploration():
    r = _matrix_job("ddn", 4000, epsilon_finish=1.0)
    assert np.abs(r["q_jt_2B"] - ADDITIVE_FIT_2B).max() < 0.6, r["q_jt_2B"]
    assert r["first"][0] == 0 and not r["optimal"]  # 2A, as VDN in QMIX's study


def test_ddn_finds_the_optimum_and_its_distribution_with_annealed_exploration():
    r = _matrix_job("ddn", 1500, epsilon_finish=0.05)
    assert r["first"][0] == 1 and r["second"] == [1, 1] and r["optimal"]
    z = r["z_state1"]  # 32 quantiles of Z_jt at state 1; true: 0.99 * 6 below tau = 0.5, 0.99 * 10 above
    assert abs(z.mean() - 0.99 * 8) < 0.5
    assert z[:8].mean() < 7.0 and z[-8:].mean() > 9.0
