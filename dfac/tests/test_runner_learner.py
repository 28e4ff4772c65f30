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


def _resume_settings(t_max, **kw):
    return JobSettings(t_max=t_max, epsilon_start=1.0, epsilon_finish=0.05, epsilon_anneal_time=200, buffer_size=64, batch_size=8,
                       test_interval=80, test_episodes=8, target_update_interval=16, n_quantiles=4, save_interval=0, **kw)


@pytest.mark.parametrize("alg", ["ddn", "qmix"])
def test_resume_continues_identically(tmp_path, alg):
    """Stopping at 160 steps and resuming to 320 gives the run that never stopped: the same parameters, the same
    replay buffer and the same test returns. The checkpoint holds the networks, the optimiser, the counters,
    the replay buffer and every random stream (numpy, torch, the environment's reward noise)."""
    env = TwoStepMatrixGame(n_envs=8, noise="plusminus", seed=0)
    full, _, hist_full = train_job(alg, 0, env, _resume_settings(320), ckpt_path=tmp_path / "full.pt", progress=False)
    env = TwoStepMatrixGame(n_envs=8, noise="plusminus", seed=0)
    ck = tmp_path / "split.pt"
    _, _, hist_half = train_job(alg, 0, env, _resume_settings(160), ckpt_path=ck, progress=False)
    assert ck.exists() and (tmp_path / "split.buffer.npz").exists() and [h["t_env"] for h in hist_half] == [0, 80, 160]
    env = TwoStepMatrixGame(n_envs=8, noise="plusminus", seed=123)  # another seed: its random state comes from ck
    resumed, _, hist_res = train_job(alg, 0, env, _resume_settings(320), ckpt_path=ck, resume=True, progress=False)
    assert [h["t_env"] for h in hist_res] == [0, 80, 160, 240, 320]
    assert hist_res == hist_full  # every test return and logged loss, to the last digit
    for p, q in zip(full.params, resumed.params):  # agent and mixer
        assert torch.equal(p, q)
    b_full, b_res = np.load(tmp_path / "full.buffer.npz"), np.load(tmp_path / "split.buffer.npz")
    assert all(np.array_equal(b_full[k], b_res[k]) for k in b_full.files)


def test_resume_without_saved_buffer_warns_and_refills(tmp_path):
    env = TwoStepMatrixGame(n_envs=8, noise="none", seed=0)
    ck = tmp_path / "ck.pt"
    train_job("ddn", 0, env, _resume_settings(160, save_buffer=False), ckpt_path=ck, progress=False)
    assert not (tmp_path / "ck.buffer.npz").exists()
    with pytest.warns(UserWarning, match="replay buffer starts empty"):
        _, _, hist = train_job("ddn", 0, env, _resume_settings(240, save_buffer=False), ckpt_path=ck, resume=True, progress=False)
    assert [h["t_env"] for h in hist] == [0, 80, 160, 240]


def test_buffer_state_dict_round_trip():
    env = TwoStepMatrixGame(n_envs=5, noise="plusminus", seed=0)
    learner, controller = build("ddn", env, JobSettings(t_max=100))
    buf = EpisodeBuffer(12, env.episode_limit, 2, 3, 3, 2)
    rng = np.random.default_rng(0)
    for _ in range(3):  # 15 episodes into 12 slots: wraps around
        buf.insert(run_episodes(env, controller, 1.0, rng)[0])
    sd = buf.state_dict()
    assert sd["obs"].shape == (12 * 3, 2, 3)  # 2 steps + the final observation per episode, no padding
    new = EpisodeBuffer(12, env.episode_limit, 2, 3, 3, 2)
    new.load_state_dict(sd)
    assert (new.size, new.pos) == (buf.size, buf.pos)
    assert all(np.array_equal(new.data[k], buf.data[k]) for k in buf.data)
    with pytest.raises(ValueError):
        EpisodeBuffer(8, env.episode_limit, 2, 3, 3, 2).load_state_dict(sd)
