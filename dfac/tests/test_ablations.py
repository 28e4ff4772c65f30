"""The ablation options used to isolate DMIX's failure on SMAX 3m: `--agent rnn|iqn`, `--reward_scale`,
`--qmix_state_value false`. Defaults are the official algorithms (the reward scale's own tests: test_reward_scale.py)."""

import numpy as np
import torch

from dfac.agents import IQNRNNAgent, RNNAgent
from dfac.config import parse_args
from dfac.envs.matrix_game import TwoStepMatrixGame
from dfac.mixers import QMixer
from dfac.run import JobSettings, build
from dfac.runner import run_episodes


def _batch(env, controller, seed=0):
    ep, _ = run_episodes(env, controller, 1.0, np.random.default_rng(seed))
    return {k: torch.as_tensor(v) for k, v in ep.items()}


def test_options_reach_the_learner_from_the_command_line(load_script):
    train = load_script("train")
    env = TwoStepMatrixGame(n_envs=2)
    learner, _ = build("dmix", env, train.settings(parse_args([]), "dmix", 10, env))  # defaults: the official DMIX
    assert isinstance(learner.agent, IQNRNNAgent) and learner.reward_scale == 1.0 and learner.mixer.mean_mixer.state_value
    cfg = parse_args(["--agent", "rnn", "--reward_scale", "10", "--qmix_state_value", "false"])
    learner, controller = build("dmix", env, train.settings(cfg, "dmix", 10, env))
    assert isinstance(learner.agent, RNNAgent) and learner.reward_scale == 10.0
    assert learner.mixer.mean_mixer.state_value is False and controller.distributional is False
    learner, controller = build("qmix", env, train.settings(parse_args(["--agent", "iqn"]), "qmix", 10, env))
    assert isinstance(learner.agent, IQNRNNAgent) and controller.distributional  # acts on the mean over N^ fractions


def test_rnn_agent_under_dmix_has_no_shape_term():
    torch.manual_seed(0)
    env = TwoStepMatrixGame(n_envs=8, seed=0)
    learner, controller = build("dmix", env, JobSettings(t_max=1, agent="rnn", n_quantiles=6))
    b = _batch(env, controller)
    taus = torch.rand(8, 3, 1, 6).expand(8, 3, 2, 6)
    z = learner_unroll(learner, b, taus)  # [B, T, n, A, N]: Q_i at every tau
    assert z.shape == (8, 3, 2, 2, 6) and torch.equal(z, z[..., :1].expand_as(z))
    chosen = z[:, :-1].gather(3, b["actions"][:, :-1, :, None, None].expand(8, 2, 2, 1, 6)).squeeze(3)
    z_tot = learner.mixer(chosen, b["state"][:, :-1])
    assert torch.allclose(z_tot, z_tot[..., :1].expand_as(z_tot))  # Z_jt(tau) = QMIX(Q_1..n, s) for every tau
    assert learner.loss(b)[0].isfinite()


def learner_unroll(learner, b, taus):
    from dfac.learner import unroll

    return unroll(learner.agent, b, learner.n_actions, taus)


def test_iqn_agent_under_qmix_uses_the_mean_over_fractions():
    torch.manual_seed(0)
    env = TwoStepMatrixGame(n_envs=8, seed=0)
    learner, controller = build("qmix", env, JobSettings(t_max=1, agent="iqn", n_quantiles=5))
    b = _batch(env, controller)
    torch.manual_seed(3)
    q = learner.utilities(learner.agent, b)
    torch.manual_seed(3)
    taus = torch.rand(8, 3, 1, 5).expand(8, 3, 2, 5)  # what learner._taus draws: one vector per (sample, step)
    assert torch.allclose(q, learner_unroll(learner, b, taus).mean(-1))


def test_qmix_without_state_value_drops_v():
    torch.manual_seed(0)
    with_v = QMixer(3, 5)
    without = QMixer(3, 5, state_value=False)
    without.load_state_dict(with_v.state_dict())
    qs, s = torch.randn(4, 7, 3), torch.randn(4, 7, 5)
    assert torch.allclose(with_v(qs, s), without(qs, s) + with_v.V(s).squeeze(-1))
    without(qs, s).sum().backward()
    assert all(p.grad is None for p in without.V.parameters())
    assert all(p.grad is not None for p in without.hyper_w_1.parameters())


def test_swapped_agents_fit_a_fixed_batch():
    for alg, agent in (("dmix", "rnn"), ("qmix", "iqn")):
        torch.manual_seed(0)
        env = TwoStepMatrixGame(n_envs=32, noise="none", seed=0)
        learner, controller = build(alg, env, JobSettings(t_max=1, n_quantiles=8, lr=3e-3, agent=agent))
        b = _batch(env, controller)
        first = learner.loss(b)[0].item()
        for _ in range(150):
            info = learner.train_step(b)
        assert np.isfinite(info["loss"]) and info["loss"] < 0.3 * first, (alg, agent)
