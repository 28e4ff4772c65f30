"""The training loops compile once: the carry a chunk returns has exactly the types it was given
(a weak-typed leaf in the initial carry once made the second chunk recompile the whole loop)."""
import jax
import numpy as np
import pytest

from meow_rl.envs import make_gym_env, make_jax_env, pendulum
from meow_rl.loop import GymTrainer, JaxTrainer
from meow_rl.meow import MEowHParams, make_meow
from meow_rl.sac import SACHParams, make_sac

AGENTS = {"meow": lambda o, a: make_meow(MEowHParams(hidden=16, shift_hidden=16), o, a),
          "sac": lambda o, a: make_sac(SACHParams(hidden=16), o, a)}


def _avals(tree):
    return [(x.shape, x.dtype, getattr(x, "weak_type", False)) for x in jax.tree_util.tree_leaves(jax.tree_util.tree_map(jax.typeof, tree))]


@pytest.mark.parametrize("algo", ["meow", "sac"])
def test_jax_loop_carry_types_are_stable_and_compile_once(algo, fake_brax):
    # Checks: three chunks return a carry with exactly the types they were given, and run_chunk holds ONE program
    # after them (the second and third calls compile nothing). run_chunk is shared by every trainer with the same
    # key (loop.shared_program), so the count would include programs of earlier trainers with this key; none
    # precedes this test, run alone or in the suite: for meow only test_train.py builds this key (it runs later and
    # reuses this program), and for sac the Brax stand-in env is built anew per call, so its key is this test's own.
    # The sizes are those of other tests only for speed, not for correctness: meow = test_train.py's TINY run
    # (Pendulum, 1 env, batch 16, buffer 256, warm-up 50, chunk = eval_every 100), sac = test_brax_adapter.py's
    # end_to_end[sac] (Brax stand-in, 4 envs, 2 updates per step, chunk 10, batch 8), so each program is compiled
    # once per session (meow: test_train.py finds this shared run_chunk; sac: conftest.py's compilation cache).
    if algo == "meow":
        tr = JaxTrainer(AGENTS[algo](3, 1), pendulum(), num_envs=1, batch_size=16, buffer_size=256, warmup=50, chunk=100)
    else:
        env = make_jax_env("point", "brax", "positional", 20)
        tr = JaxTrainer(AGENTS[algo](env.obs_dim, env.act_dim), env, num_envs=4, batch_size=8, buffer_size=128, warmup=16,
                        updates_per_step=2, eval_episodes=2, chunk=10)
    carry = tr.init(jax.random.split(jax.random.PRNGKey(0), 2))
    given = _avals(carry)
    for _ in range(3):  # the carry each chunk returns (not an extra trace by eval_shape) has the types it was given
        carry, _ = tr.run_chunk(carry)
        assert _avals(carry) == given
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
