"""Training loops. The agent update is always one jit-compiled function.

* `JaxTrainer`: for JAX environments (Pendulum, MultiGoal, Brax). Acting, the environment step,
  the buffer insert and the update for `chunk` environment steps are ONE `jax.lax.scan` inside
  ONE `jax.jit` (PureJaxRL style); vectorised over `num_envs` environments.
* `GymTrainer`: for Gymnasium/MuJoCo, one environment, update-to-data 1 (the paper's protocol);
  per step the Python side only calls env.step and one fused jit function (insert + update + act).
Both evaluate with deterministic actions by default (z = 0 pushed through the flow / tanh(mean)).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .buffer import buffer_init, buffer_insert, buffer_sample
from .envs import JaxEnv


def _tree_where(cond, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(jnp.reshape(cond, cond.shape + (1,) * (x.ndim - cond.ndim)), x, y), a, b)


def _maybe_update(agent, batch_size, state, buf, key, do_update, n_updates):
    """Run `n_updates` updates when do_update, else return the state unchanged (metrics zero)."""

    def one(carry, k):
        st = carry
        kb, ku = jax.random.split(k)
        st, m = agent.update(st, buffer_sample(buf, kb, batch_size), ku)
        return st, m

    def run(st):
        st, m = jax.lax.scan(one, st, jax.random.split(key, n_updates))
        return st, jax.tree_util.tree_map(lambda x: x[-1], m)

    shapes = jax.eval_shape(run, state)[1]
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return jax.lax.cond(do_update, run, lambda st: (st, zeros), state)


class JaxTrainer:
    """Seeds are vmapped: every array in the carry has a leading seed axis, so S seeds train as one
    batched program (one compile, bigger kernels). `chunk` vectorised steps run per call."""

    def __init__(self, agent, env: JaxEnv, *, num_envs=1, batch_size=256, buffer_size=100_000, warmup=1000,
                 updates_per_step=1, eval_episodes=10, chunk=1000):
        self.agent, self.env = agent, env
        self.num_envs, self.batch_size, self.warmup = num_envs, batch_size, warmup
        self.buffer_size, self.updates_per_step, self.eval_episodes = buffer_size, updates_per_step, eval_episodes
        self._init_jit = jax.jit(self._init)
        self.run_chunk = jax.jit(jax.vmap(partial(self._run_chunk, n_iters=chunk)))
        self.evaluate = jax.jit(jax.vmap(self._evaluate, in_axes=(0, 0, None)), static_argnums=(2,))

    def init(self, keys):
        """Per-seed init, stacked along a leading seed axis. (Not vmapped: a vmapped orthogonal
        initialiser -- a batched QR -- hung on the XLA CPU backend here.)"""
        carries = [self._init_jit(k) for k in keys]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *carries)

    def _init(self, key):
        k_agent, k_env, k_loop = jax.random.split(key, 3)
        env_state, obs = jax.vmap(self.env.reset)(jax.random.split(k_env, self.num_envs))
        return {"agent": self.agent.init(k_agent),
                "buffer": buffer_init(self.buffer_size, self.env.obs_dim, self.env.act_dim),
                "env_state": env_state, "obs": obs, "t": jnp.zeros(self.num_envs, jnp.int32),
                "ep_return": jnp.zeros(self.num_envs), "last_return": jnp.full(self.num_envs, jnp.nan),
                "env_steps": jnp.zeros((), jnp.int32), "key": k_loop}

    def _step(self, c, _):
        env, n = self.env, self.num_envs
        key, k_act, k_rand, k_reset, k_upd = jax.random.split(c["key"], 5)
        a_pi = self.agent.act(c["agent"], c["obs"], k_act, False)
        a_rand = jax.random.uniform(k_rand, a_pi.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(c["env_steps"] < self.warmup, a_rand, a_pi)  # uniform warm-up
        env_state, next_obs, reward, term = jax.vmap(env.step)(c["env_state"], action)
        t = c["t"] + 1
        trunc = t >= env.max_steps
        buf = buffer_insert(c["buffer"], {"obs": c["obs"], "action": action, "reward": reward,
                                          "next_obs": next_obs, "done": term.astype(jnp.float32)})
        done = term | trunc
        ep_return = c["ep_return"] + reward
        reset_state, reset_obs = jax.vmap(env.reset)(jax.random.split(k_reset, n))
        env_steps = c["env_steps"] + n
        agent_state, metrics = _maybe_update(self.agent, self.batch_size, c["agent"], buf, k_upd,
                                             env_steps > self.warmup, self.updates_per_step)
        new = {"agent": agent_state, "buffer": buf,
               "env_state": _tree_where(done, reset_state, env_state), "obs": jnp.where(done[:, None], reset_obs, next_obs),
               "t": jnp.where(done, 0, t), "ep_return": jnp.where(done, 0.0, ep_return),
               "last_return": jnp.where(done, ep_return, c["last_return"]), "env_steps": env_steps, "key": key}
        return new, metrics

    def _run_chunk(self, carry, n_iters: int):
        carry, metrics = jax.lax.scan(self._step, carry, None, length=n_iters)
        return carry, jax.tree_util.tree_map(jnp.mean, metrics)

    def _evaluate(self, agent_state, key, deterministic: bool = True):
        """Mean return over eval_episodes full episodes (vmapped), up to the first termination."""
        env = self.env
        k_reset, k_act = jax.random.split(key)
        st, obs = jax.vmap(env.reset)(jax.random.split(k_reset, self.eval_episodes))

        def body(c, k):
            st, obs, alive, ret = c
            a = self.agent.act(agent_state, obs, k, deterministic)
            st, obs, r, term = jax.vmap(env.step)(st, a)
            ret = ret + alive * r
            return (st, obs, alive * (1.0 - term), ret), None

        init = (st, obs, jnp.ones(self.eval_episodes), jnp.zeros(self.eval_episodes))
        (_, _, _, ret), _ = jax.lax.scan(body, init, jax.random.split(k_act, env.max_steps))
        return jnp.mean(ret)


class GymTrainer:
    """One Gymnasium environment, update-to-data 1; the per-step device work is one jit call."""

    def __init__(self, agent, env_fn, *, batch_size=256, buffer_size=1_000_000, warmup=5000, eval_episodes=10):
        self.agent, self.env_fn = agent, env_fn
        self.batch_size, self.buffer_size, self.warmup, self.eval_episodes = batch_size, buffer_size, warmup, eval_episodes
        self.env = env_fn()
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        self.act = jax.jit(agent.act, static_argnums=(3,))

    @partial(jax.jit, static_argnums=(0,))
    def fused_step(self, agent_state, buf, transition, next_obs, key, do_update):
        """insert the last transition, update once (after warm-up), and act on the new observation."""
        k_upd, k_act = jax.random.split(key)
        buf = buffer_insert(buf, jax.tree_util.tree_map(lambda x: x[None], transition))
        agent_state, metrics = _maybe_update(self.agent, self.batch_size, agent_state, buf, k_upd, do_update, 1)
        action = self.agent.act(agent_state, next_obs[None], k_act, False)[0]
        return agent_state, buf, action, metrics

    def init(self, key, seed: int):
        k_agent, k_loop = jax.random.split(key)
        obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        return {"agent": self.agent.init(k_agent), "buffer": buffer_init(self.buffer_size, self.obs_dim, self.act_dim),
                "obs": np.asarray(obs, np.float32), "ep_return": 0.0, "last_return": float("nan"),
                "env_steps": 0, "key": k_loop, "action": None}

    def run_chunk(self, c, n_steps: int):
        metrics = None
        for _ in range(n_steps):
            if c["action"] is None or c["env_steps"] < self.warmup:
                action = self.env.action_space.sample()
            else:
                action = np.asarray(c["action"])
            next_obs, r, term, trunc, _ = self.env.step(action)
            next_obs = np.asarray(next_obs, np.float32)
            c["ep_return"] += float(r)
            c["env_steps"] += 1
            tr = {"obs": c["obs"], "action": np.asarray(action, np.float32), "reward": np.float32(r),
                  "next_obs": next_obs, "done": np.float32(term)}
            if term or trunc:
                c["last_return"], c["ep_return"] = c["ep_return"], 0.0
                next_obs, _ = self.env.reset()
                next_obs = np.asarray(next_obs, np.float32)
            c["key"], k = jax.random.split(c["key"])
            c["agent"], c["buffer"], c["action"], m = self.fused_step(
                c["agent"], c["buffer"], tr, next_obs, k, c["env_steps"] > self.warmup)
            metrics = m if c["env_steps"] > self.warmup else metrics
            c["obs"] = next_obs
        return c, metrics

    def evaluate(self, agent_state, key, deterministic: bool = True, seed0: int = 10_000):
        env = self.env_fn()
        rets = []
        for i in range(self.eval_episodes):
            obs, _ = env.reset(seed=seed0 + i)
            done, ret = False, 0.0
            while not done:
                key, k = jax.random.split(key)
                a = np.asarray(self.act(agent_state, jnp.asarray(obs, jnp.float32)[None], k, deterministic)[0])
                obs, r, term, trunc, _ = env.step(a)
                ret += float(r)
                done = term or trunc
            rets.append(ret)
        env.close()
        return float(np.mean(rets))
