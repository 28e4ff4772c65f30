"""The Brax/MJX path. Without brax (the default `make test` install): a clear error, and the adapter
(meow_rl.envs.brax_env) driven by a stand-in `brax.envs` module (conftest.py: fake_brax) with Brax's interface
(get_environment(name, backend=...), reset(key) / step(state, action) -> State(obs, reward, done),
observation_size, action_size) through the vectorised jit'd training loop. With brax (`make setup-full`,
then `make test-full`): the same adapter on real Brax (inverted_pendulum, generalized pipeline) against
Brax's own step, and through the training loop and its evaluation. Those tests skip only when brax is
absent."""
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meow_rl.envs import brax_env, make_jax_env
from meow_rl.loop import JaxTrainer
from meow_rl.meow import MEowHParams, make_meow

HAVE_BRAX = importlib.util.find_spec("brax") is not None


@pytest.mark.skipif(HAVE_BRAX, reason="brax is installed")
def test_missing_brax_is_a_clear_error(tmp_path):
    with pytest.raises(ImportError, match=r"pip install -e '\.\[full\]'"):
        make_jax_env("ant", "brax")
    import train

    with pytest.raises(ImportError, match="optional package brax"):
        train.main(["--config", "brax-ant", "--no-progress", "--out-dir", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # nothing written


def test_brax_adapter_maps_state_to_jaxenv(fake_brax):
    env = brax_env("point", backend="generalized", max_steps=50)
    assert fake_brax == [("point", "generalized")]
    assert (env.name, env.obs_dim, env.act_dim, env.max_steps) == ("brax-point", 3, 2, 50)
    st, obs = env.reset(jax.random.PRNGKey(0))
    st, obs, r, term = env.step(st, jnp.array([1.0, 0.0]))
    assert obs.shape == (3,) and r.shape == () and term.dtype == jnp.bool_ and not bool(term)
    for _ in range(12):
        st, obs, r, term = env.step(st, jnp.array([1.0, 0.0]))
    assert bool(term)  # Brax's float done becomes the trainer's boolean termination


def test_brax_backend_runs_the_vectorised_loop(fake_brax):
    # the shapes of test_train_py_brax_backend_end_to_end[meow] (pipeline, 20-step episodes, buffer 128, 2 seeds):
    # the same programs, so the session's compilation cache compiles them once for both tests
    env = make_jax_env("point", "brax", "positional", 20)
    tr = JaxTrainer(make_meow(MEowHParams(hidden=16, shift_hidden=16), env.obs_dim, env.act_dim), env, num_envs=4,
                    batch_size=8, buffer_size=128, warmup=16, updates_per_step=2, chunk=10, eval_episodes=2)
    carry = tr.init(jax.random.split(jax.random.PRNGKey(0), 2))
    carry, metrics = tr.run_chunk(carry)
    assert int(carry["env_steps"]) == 40 and np.all(np.asarray(carry["buffer"]["size"]) == 40)
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    assert np.all(np.isfinite(np.asarray(tr.evaluate(carry["agent"], jax.random.split(jax.random.PRNGKey(1), 2), True))))


@pytest.mark.parametrize("algo", ["meow", "sac"])
def test_train_py_brax_backend_end_to_end(fake_brax, tmp_path, algo):
    """`train.py --backend brax` for both agents (SAC trained and evaluated like MEow), on the stand-in."""
    import train

    h = train.main(["--backend", "brax", "--env-id", "point", "--brax-pipeline", "positional", "--max-episode-steps", "20",
                    "--algos", algo, "--seeds", "1", "2", "--num-envs", "4", "--updates-per-step", "2", "--total-steps", "80",
                    "--warmup", "16", "--eval-every", "40", "--eval-episodes", "2", "--batch-size", "8", "--buffer-size", "128",
                    "--meow.hidden", "16", "--meow.shift-hidden", "16", "--sac.hidden", "16", "--multigoal.no-enabled",
                    "--no-progress", "--no-tensorboard", "--no-stochastic-eval", "--out-dir", str(tmp_path)])
    assert fake_brax == [("point", "positional")]
    rows = h[algo]
    assert [(r["seed"], r["env_steps"]) for r in rows] == [(1, 40), (2, 40), (1, 80), (2, 80)]
    assert np.isfinite(rows[-1]["loss"]) and np.isfinite(rows[-2]["loss"])
    assert all(-20 * 8.0 <= r["eval_return"] <= 0 for r in rows)  # reward -|pos|^2 <= 0; 20 steps, |pos|^2 < 8
    run = tmp_path / os.listdir(tmp_path)[0]
    assert {f"ckpt_{algo}.pkl", "results.md", "learning_curves.png"} <= set(os.listdir(run))

# ---------------------------------------------------------------------------------------------
# Real Brax (skipped only when the optional [full] extra is not installed)
needs_brax = pytest.mark.skipif(not HAVE_BRAX, reason="brax not installed (make setup-full)")


@needs_brax
def test_real_brax_adapter_matches_brax_step():
    from brax import envs as real_envs

    ref = real_envs.get_environment("inverted_pendulum", backend="generalized")
    env = make_jax_env("inverted_pendulum", "brax", "generalized", 30)
    assert (env.name, env.obs_dim, env.act_dim, env.max_steps) == ("brax-inverted_pendulum", ref.observation_size,
                                                                   ref.action_size, 30)
    key = jax.random.PRNGKey(3)
    st, obs = jax.jit(env.reset)(key)
    ref_st = jax.jit(ref.reset)(key)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(ref_st.obs))
    step, ref_step = jax.jit(env.step), jax.jit(ref.step)
    a = jnp.ones(env.act_dim)  # push the cart one way until the pole falls (Brax: done = 1.0)
    for t in range(100):
        st, obs, r, term = step(st, a)
        ref_st = ref_step(ref_st, a)
        np.testing.assert_allclose(np.asarray(obs), np.asarray(ref_st.obs), rtol=1e-5, atol=1e-6)
        assert float(r) == float(ref_st.reward) and bool(term) == bool(ref_st.done > 0.5)
        if bool(term):
            break
    assert bool(term) and t > 0  # the float done became a boolean termination, not at the first step


@needs_brax
def test_real_brax_runs_the_vectorised_loop():
    env = make_jax_env("inverted_pendulum", "brax", "generalized", 20)
    tr = JaxTrainer(make_meow(MEowHParams(hidden=16, shift_hidden=16), env.obs_dim, env.act_dim), env, num_envs=4,
                    batch_size=8, buffer_size=256, warmup=16, updates_per_step=1, chunk=10, eval_episodes=2)
    carry = tr.init(jax.random.split(jax.random.PRNGKey(0), 2))
    carry, metrics = tr.run_chunk(carry)
    assert int(carry["env_steps"]) == 40 and np.all(np.asarray(carry["buffer"]["size"]) == 40)
    buf = jax.device_get(carry["buffer"])
    assert np.all(np.isfinite(buf["obs"][:, :40])) and np.all(np.abs(buf["action"][:, :40]) <= 1.0)
    assert np.all(buf["reward"][:, :40] == 1.0)  # inverted_pendulum: +1 per step alive
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    ret = np.asarray(tr.evaluate(carry["agent"], jax.random.split(jax.random.PRNGKey(1), 2), True))
    assert np.all((ret >= 1.0) & (ret <= 20.0))  # +1 per step until termination or the 20-step cut


@needs_brax
def test_real_brax_cpu_config_trains_through_train_py(tmp_path):
    """`train.py --config brax-inverted-pendulum-cpu` on real Brax, shrunk (tiny nets, 20-step episodes):
    MEow trains and evaluates; returns are episode lengths (+1 per step upright), so within [1, 20]."""
    import train

    h = train.main(["--config", "brax-inverted-pendulum-cpu", "--algos", "meow", "--total-steps", "96", "--warmup", "32",
                    "--eval-every", "48", "--eval-episodes", "2", "--batch-size", "8", "--buffer-size", "96",
                    "--max-episode-steps", "20", "--meow.hidden", "16", "--meow.shift-hidden", "16", "--no-progress",
                    "--no-tensorboard", "--no-stochastic-eval", "--out-dir", str(tmp_path)])
    rows = h["meow"]
    assert [r["env_steps"] for r in rows] == [48, 96] and np.isfinite(rows[-1]["loss"])
    assert all(1.0 <= r["eval_return"] <= 20.0 for r in rows)
