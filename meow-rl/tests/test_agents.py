"""MEow and SAC updates: one step lowers the Bellman error on a fixed batch; shapes and bounds."""
import jax
import jax.numpy as jnp
import numpy as np

from meow_rl.buffer import buffer_init, buffer_insert, buffer_sample
from meow_rl.meow import MEowHParams, bellman_error, make_meow
from meow_rl.sac import SACHParams, make_sac

OBS, ACT, B = 3, 2, 64


def _batch(seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    return {"obs": jax.random.normal(k[0], (B, OBS)), "action": jnp.tanh(jax.random.normal(k[1], (B, ACT))),
            "reward": jax.random.normal(k[2], (B,)), "next_obs": jax.random.normal(k[3], (B, OBS)),
            "done": (jnp.arange(B) % 7 == 0).astype(jnp.float32)}


def test_meow_update_lowers_bellman_error():
    hp = MEowHParams(dropout=0.0, hidden=32, shift_hidden=32, lr=1e-3)
    agent = make_meow(hp, OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch()
    update = jax.jit(agent.update)
    before = float(bellman_error(hp, OBS, ACT, state, batch))
    state1, metrics = update(state, batch, jax.random.PRNGKey(1))
    after = float(bellman_error(hp, OBS, ACT, state1, batch))
    assert np.isfinite(before) and after < before
    np.testing.assert_allclose(float(metrics["loss"]), before, rtol=1e-4)  # loss = error at the old params
    # the target network moved by tau towards the online one, and only by that
    p0, p1, t1 = (jax.tree_util.tree_leaves(x) for x in (state["params"], state1["params"], state1["target"]))
    for a, b, t in zip(p0, p1, t1):
        np.testing.assert_allclose(t, (1 - hp.tau) * a + hp.tau * b, atol=1e-6)


def test_meow_with_dropout_trains_on_fixed_batch():
    hp = MEowHParams(hidden=32, shift_hidden=32)  # paper's dropout 0.1 in the coupling nets
    agent = make_meow(hp, OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch(1)
    update = jax.jit(agent.update)
    before = float(bellman_error(hp, OBS, ACT, state, batch))
    for i in range(20):
        state, _ = update(state, batch, jax.random.PRNGKey(i))
    assert float(bellman_error(hp, OBS, ACT, state, batch)) < 0.8 * before


def test_sac_update_lowers_critic_error_and_tunes_alpha():
    hp = SACHParams(hidden=32)
    agent = make_sac(hp, OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch(2)
    update = jax.jit(agent.update)
    losses = []
    for i in range(5):
        state, m = update(state, batch, jax.random.PRNGKey(i))
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0]
    assert float(jnp.exp(state["log_alpha"])) != hp.alpha  # autotune moved the temperature


def test_actions_in_box_and_deterministic_is_repeatable():
    for agent in (make_meow(MEowHParams(hidden=16, shift_hidden=16), OBS, ACT), make_sac(SACHParams(hidden=16), OBS, ACT)):
        state = agent.init(jax.random.PRNGKey(0))
        obs = 50.0 * jax.random.normal(jax.random.PRNGKey(1), (128, OBS))
        a = agent.act(state, obs, jax.random.PRNGKey(2), False)
        assert a.shape == (128, ACT) and float(jnp.abs(a).max()) <= 1.0
        d1 = agent.act(state, obs, jax.random.PRNGKey(3), True)
        d2 = agent.act(state, obs, jax.random.PRNGKey(4), True)
        np.testing.assert_array_equal(d1, d2)


def test_buffer_ring_and_sample():
    buf = buffer_init(5, 2, 1)
    for i in range(7):  # wraps around: rows 5, 6 overwrite 0, 1
        tr = {"obs": jnp.full((1, 2), i, jnp.float32), "action": jnp.zeros((1, 1)), "reward": jnp.array([i], jnp.float32),
              "next_obs": jnp.full((1, 2), i + 1, jnp.float32), "done": jnp.zeros(1)}
        buf = buffer_insert(buf, tr)
    assert int(buf["size"]) == 5 and int(buf["ptr"]) == 2
    assert sorted(np.asarray(buf["reward"]).tolist()) == [2, 3, 4, 5, 6]
    s = buffer_sample(buf, jax.random.PRNGKey(0), 100)
    np.testing.assert_array_equal(s["next_obs"][:, 0], s["reward"] + 1)  # rows stay aligned
    assert set(np.asarray(s["reward"]).tolist()) <= {2, 3, 4, 5, 6}
