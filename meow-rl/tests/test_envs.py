"""Environments: the JAX Pendulum is Gymnasium's Pendulum-v1; MultiGoal terminates at goals; bad ids fail."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meow_rl.envs import make_gym_env, make_jax_env, multigoal, pendulum


def test_jax_pendulum_matches_gymnasium():
    """A whole 200-step episode on random actions: same observations, rewards, and time limit."""
    gym_env = make_gym_env("Pendulum-v1")
    obs, _ = gym_env.reset(seed=0)
    th, thdot = gym_env.unwrapped.state
    env = pendulum()
    assert env.max_steps == 200
    state = {"th": jnp.float32(th), "thdot": jnp.float32(thdot)}
    step = jax.jit(env.step)
    rng = np.random.default_rng(0)
    for i in range(env.max_steps):
        a = rng.uniform(-1, 1, size=1).astype(np.float32)
        obs_g, r_g, term, trunc, _ = gym_env.step(a)
        state, obs_j, r_j, term_j = step(state, jnp.asarray(a))
        np.testing.assert_allclose(obs_j, obs_g, atol=1e-3)
        np.testing.assert_allclose(float(r_j), r_g, atol=1e-3)
        assert not bool(term_j) and not term
        assert trunc == (i + 1 == env.max_steps)  # Gymnasium's TimeLimit = the trainers' max_steps


def test_jax_pendulum_reset_distribution():
    _, obs = jax.vmap(pendulum().reset)(jax.random.split(jax.random.PRNGKey(0), 4000))
    th = np.arctan2(np.asarray(obs[:, 1]), np.asarray(obs[:, 0]))
    assert np.abs(th).max() <= np.pi and np.abs(obs[:, 2]).max() <= 1.0  # U([-pi, pi] x [-1, 1]), as Gymnasium
    assert np.abs(th).mean() > 0.45 * np.pi and np.abs(obs[:, 2]).mean() > 0.45


def test_multigoal_terminates_at_goal():
    env = multigoal()
    state, obs = env.reset(jax.random.PRNGKey(0))
    done = False
    for _ in range(6):
        state, obs, r, done = env.step(state, jnp.array([1.0, 0.0]))
        if bool(done):
            break
    assert bool(done) and float(obs[0]) > 4.0
    sq_dist = np.sum((np.asarray(obs) - np.array([5.0, 0.0])) ** 2)
    np.testing.assert_allclose(float(r), -30.0 * 1.0 - sq_dist + 10.0, atol=1e-4)  # action cost, distance^2, goal bonus


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
