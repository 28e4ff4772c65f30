"""Environments: the JAX Pendulum is Gymnasium's Pendulum-v1; MultiGoal terminates at goals; bad ids fail."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meow_rl.envs import make_gym_env, make_jax_env, multigoal, pendulum


def test_jax_pendulum_matches_gymnasium():
    gym_env = make_gym_env("Pendulum-v1")
    obs, _ = gym_env.reset(seed=0)
    th, thdot = gym_env.unwrapped.state
    env = pendulum()
    state = {"th": jnp.float32(th), "thdot": jnp.float32(thdot)}
    rng = np.random.default_rng(0)
    for _ in range(100):
        a = rng.uniform(-1, 1, size=1).astype(np.float32)
        obs_g, r_g, term, trunc, _ = gym_env.step(a)
        state, obs_j, r_j, term_j = env.step(state, jnp.asarray(a))
        np.testing.assert_allclose(obs_j, obs_g, atol=1e-3)
        np.testing.assert_allclose(float(r_j), r_g, atol=1e-3)
        assert not bool(term_j) and not term


def test_multigoal_terminates_at_goal():
    env = multigoal()
    state, obs = env.reset(jax.random.PRNGKey(0))
    done = False
    for _ in range(6):
        state, obs, r, done = env.step(state, jnp.array([1.0, 0.0]))
        if bool(done):
            break
    assert bool(done) and float(obs[0]) > 4.0
    dist = np.linalg.norm(np.asarray(obs) - np.array([5.0, 0.0]))
    np.testing.assert_allclose(float(r), -1.0 * 1.0 - dist + 10.0, atol=1e-5)  # action cost, distance, goal bonus


def test_bad_env_ids():
    with pytest.raises(ValueError, match="no JAX version"):
        make_jax_env("Hopper-v5", "jax")
    with pytest.raises(ValueError, match="Box"):
        make_gym_env("CartPole-v1")


def test_mujoco_env_steps_with_rescaled_actions():
    env = make_gym_env("InvertedPendulum-v5")
    obs, _ = env.reset(seed=0)
    assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0
    obs, r, term, trunc, _ = env.step(np.ones(1, np.float32))
    assert np.isfinite(obs).all()
