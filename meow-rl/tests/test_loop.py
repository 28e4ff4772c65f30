"""The training loops compile once: the carry a chunk returns has exactly the types it was given
(a weak-typed leaf in the initial carry once made the second chunk recompile the whole loop)."""
import jax
import numpy as np
import pytest

from meow_rl.envs import make_gym_env, pendulum
from meow_rl.loop import GymTrainer, JaxTrainer
from meow_rl.meow import MEowHParams, make_meow
from meow_rl.sac import SACHParams, make_sac

AGENTS = {"meow": lambda o, a: make_meow(MEowHParams(hidden=16, shift_hidden=16), o, a),
          "sac": lambda o, a: make_sac(SACHParams(hidden=16), o, a)}


def _avals(tree):
    return [(x.shape, x.dtype, getattr(x, "weak_type", False)) for x in jax.tree_util.tree_leaves(jax.tree_util.tree_map(jax.typeof, tree))]


@pytest.mark.parametrize("algo", ["meow", "sac"])
def test_jax_loop_carry_types_are_stable_and_compile_once(algo):
    # test_train.py's TINY run (Pendulum, 1 env, batch 16, buffer 256, warm-up 50, chunk = eval_every 100): for
    # meow the very program train.py compiles there, so the session's compilation cache compiles it once
    tr = JaxTrainer(AGENTS[algo](3, 1), pendulum(), num_envs=1, batch_size=16, buffer_size=256, warmup=50, chunk=100)
    carry = tr.init(jax.random.split(jax.random.PRNGKey(0), 2))
    out, _ = jax.eval_shape(tr._run_chunk, carry)
    assert _avals(out) == _avals(carry)
    for _ in range(3):
        carry, _ = tr.run_chunk(carry)
    assert tr.run_chunk._cache_size() == 1


def test_gym_steps_return_the_types_they_are_given():
    tr = GymTrainer(AGENTS["meow"](3, 1), lambda: make_gym_env("Pendulum-v1"), batch_size=8, buffer_size=64, warmup=4)
    c = tr.init(jax.random.PRNGKey(0), 0)
    c, _ = tr.run_chunk(c, 6)
    transition = {"obs": np.zeros(3, np.float32), "action": np.zeros(1, np.float32), "reward": np.float32(0.0),
                  "next_obs": np.zeros(3, np.float32), "done": np.float32(0.0)}
    buf = jax.eval_shape(lambda b: tr.insert(b, transition), c["buffer"])
    agent, *_ = jax.eval_shape(lambda a: tr.learn_step(a, c["buffer"], transition["obs"], c["key"]), c["agent"])
    assert _avals(agent) == _avals(c["agent"]) and _avals(buf) == _avals(c["buffer"])
