import numpy as np
import pytest

from dfac.envs.matrix_game import TwoStepMatrixGame, true_quantiles


def test_matrix_game_transitions_and_rewards():
    env = TwoStepMatrixGame(n_envs=4, noise="none")
    o = env.reset()
    assert o.obs.shape == (4, 2, 3) and o.state.shape == (4, 3) and o.avail.shape == (4, 2, 2)
    assert (o.state.argmax(-1) == 0).all()
    # agent 1's action picks 2A (0) or 2B (1); agent 2's first action does not matter
    o, r, term, done, won = env.step(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert (r == 0).all() and not done.any() and not term.any()
    assert o.state.argmax(-1).tolist() == [1, 1, 2, 2]
    assert np.allclose(o.obs[:, 0], o.state) and np.allclose(o.obs[:, 1], o.state)
    o, r, term, done, won = env.step(np.array([[1, 1], [0, 1], [0, 1], [1, 1]]))
    assert r.tolist() == [7, 7, 1, 8]  # 2A pays 7 everywhere; 2B pays [[0, 1], [1, 8]]
    assert done.all() and term.all() and won.tolist() == [False, False, False, True]
    assert (o.state.argmax(-1) == 0).all()  # auto-reset


@pytest.mark.parametrize("noise", ["plusminus", "gaussian", "bernoulli"])
def test_stochastic_rewards_keep_the_mean(noise):
    env = TwoStepMatrixGame(n_envs=20000, noise=noise, noise_scale=2.0, seed=1)
    env.reset()
    env.step(np.tile([1, 0], (20000, 1)))
    _, r, *_ = env.step(np.tile([1, 1], (20000, 1)))
    assert abs(r.mean() - 8.0) < 0.1
    assert r.std() > 1.0
    emp = np.quantile(r, [0.25, 0.75])
    tq = true_quantiles(8.0, noise, 2.0, np.array([0.25, 0.75]))
    assert np.allclose(emp, tq, atol=0.1)


def test_first_step_pays_nothing_even_with_noise():
    env = TwoStepMatrixGame(n_envs=100, noise="gaussian", noise_scale=5.0)
    env.reset()
    _, r, *_ = env.step(np.ones((100, 2), dtype=np.int64))
    assert (r == 0).all()


def test_matrix_game_rejects_bad_input():
    with pytest.raises(ValueError):
        TwoStepMatrixGame(noise="laplace")
    env = TwoStepMatrixGame(n_envs=2)
    env.reset()
    with pytest.raises(ValueError):
        env.step(np.array([[0, 2], [0, 0]]))
    with pytest.raises(ValueError):
        env.step(np.array([0, 1]))
    with pytest.raises(TypeError):
        env.step(np.array([[0.0, 1.0], [1.0, 0.0]]))


def test_smax_adapter_contract():
    pytest.importorskip("jaxmarl")
    from dfac.envs.smax import SMAXEnv

    env = SMAXEnv("3m", n_envs=2, seed=0)
    assert (env.n_agents, env.n_actions) == (3, 8)
    o = env.reset()
    assert o.obs.shape == (2, 3, env.obs_dim) and o.state.shape == (2, env.state_dim)
    assert o.avail.shape == (2, 3, 8) and set(np.unique(o.avail)) <= {0.0, 1.0}
    assert o.obs.dtype == np.float32 and np.abs(o.state).max() <= 1.5  # the state is normalised
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.array([[rng.choice(np.flatnonzero(av)) for av in env_av] for env_av in o.avail])
        o, r, term, done, won = env.step(a)
        assert r.shape == (2,) and term.dtype == bool and done.shape == (2,) and won.shape == (2,)
        assert (r >= 0).all()
        assert env.last_final_obs.obs.shape == o.obs.shape
    key = env.get_rng_state()  # the checkpointed random state replays the same episodes
    o1 = env.reset()
    env.set_rng_state(key)
    assert np.array_equal(env.reset().obs, o1.obs)
    with pytest.raises(ValueError):
        env.step(np.full((2, 3), 8))
    with pytest.raises(ValueError):
        SMAXEnv("no_such_map", n_envs=1)
