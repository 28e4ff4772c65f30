import numpy as np
import pytest
import torch

from dfac.buffer import EpisodeBuffer
from dfac.envs.matrix_game import TwoStepMatrixGame
from dfac.matrix_eval import joint_values
from dfac.run import JobSettings, build, train_job
from dfac.runner import run_episodes


def test_runner_and_buffer_masks():
    env = TwoStepMatrixGame(n_envs=5, noise="none")
    s = JobSettings(t_max=100)
    learner, controller = build("dmix", env, s)
    ep, st = run_episodes(env, controller, 1.0, np.random.default_rng(0))
    assert ep["filled"].sum(1).tolist() == [2.0] * 5 and st["length"].tolist() == [2] * 5
    assert (ep["terminated"][:, 1] == 1).all() and (ep["terminated"][:, 0] == 0).all()
    # the second state is 2A / 2B as agent 1's first action says
    assert (ep["state"][:, 1].argmax(-1) == 1 + ep["actions"][:, 0, 0]).all()
    buf = EpisodeBuffer(8, env.episode_limit, 2, 3, 3, 2)
    buf.insert(ep)
    buf.insert(ep)
    assert buf.size == 8 and buf.pos == 2
    b = buf.sample(4, np.random.default_rng(0))
    assert b["obs"].shape == (4, 3, 2, 3)


@pytest.mark.parametrize("alg", ["iql", "vdn", "qmix", "qplex", "diql", "ddn", "dmix", "dplex"])
def test_every_algorithm_fits_a_fixed_batch(alg):
    torch.manual_seed(0)
    env = TwoStepMatrixGame(n_envs=32, noise="none", seed=0)
    s = JobSettings(t_max=100, n_quantiles=8, lr=3e-3)
    learner, controller = build(alg, env, s)
    ep, _ = run_episodes(env, controller, 1.0, np.random.default_rng(0))
    batch = {k: torch.as_tensor(v) for k, v in ep.items()}
    first = learner.loss(batch)[0].item()
    for _ in range(150):
        info = learner.train_step(batch)
    assert np.isfinite(info["loss"]) and info["loss"] < 0.3 * first


def test_dmix_learns_the_return_distribution_of_state_2a():
    """A short DMIX run with +-2 reward noise: the joint quantiles at state 2A approach the two atoms 5 and 9."""
    torch.manual_seed(0)
    env = TwoStepMatrixGame(n_envs=8, noise="plusminus", noise_scale=2.0, seed=0)
    s = JobSettings(t_max=2 * 1200, epsilon_start=1.0, epsilon_finish=1.0, buffer_size=500, target_update_interval=100,
                    n_quantiles=8, lr=2e-3, test_interval=10**9, test_episodes=8)
    learner, _, _ = train_job("dmix", 0, env, s, progress=False)
    z = joint_values(learner, [0, 0], [0, 0], K=8)[1].numpy()  # Z_jt(2A, (0, 0)) at tau = 1/16 .. 15/16
    assert abs(z.mean() - 7.0) < 1.0
    assert z[:3].mean() < 6.2 and z[-3:].mean() > 7.8  # a spread distribution, lower / upper quantiles apart


def test_checkpoint_resume_continues(tmp_path):
    env = TwoStepMatrixGame(n_envs=8, noise="none", seed=0)
    s = JobSettings(t_max=160, epsilon_start=1.0, epsilon_finish=1.0, buffer_size=64, batch_size=8, test_interval=80,
                    test_episodes=8, save_interval=0)
    ck = tmp_path / "ck.pt"
    learner, _, hist = train_job("ddn", 0, env, s, ckpt_path=ck, progress=False)
    assert ck.exists() and [h["t_env"] for h in hist] == [0, 80, 160]
    s2 = JobSettings(**{**s.__dict__, "t_max": 240, "timing": {}})
    learner2, _, hist2 = train_job("ddn", 0, env, s2, ckpt_path=ck, resume=True, progress=False)
    assert [h["t_env"] for h in hist2] == [0, 80, 160, 240]
    # resumed from the saved parameters: a zero-length continuation reproduces them exactly
    learner3, _, _ = train_job("ddn", 0, env, JobSettings(**{**s2.__dict__, "timing": {}}), ckpt_path=ck, resume=True, progress=False)
    for p, q in zip(learner2.agent.parameters(), learner3.agent.parameters()):
        assert torch.equal(p, q)
