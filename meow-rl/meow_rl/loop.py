"""Training loops. The agent update is always one jit-compiled function.

* `JaxTrainer`: for JAX environments (Pendulum, MultiGoal, Brax). Acting, the environment step,
  the buffer insert and the update for `chunk` environment steps are ONE loop inside ONE `jax.jit`
  (PureJaxRL style), vmapped over seeds and over `num_envs` environments.
* `GymTrainer`: for Gymnasium/MuJoCo, one environment, update-to-data 1 (the paper's protocol);
  per step the Python side calls env.step, one jit'd insert into the donated replay buffer (in
  place, not a copy of the up-to-1M-transition buffer) and one jit'd update + act that reads it.
Both evaluate with deterministic actions by default (z = 0 pushed through the flow / tanh(mean)).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .buffer import buffer_init, buffer_insert, buffer_sample
from .envs import JaxEnv


_PROGRAMS: dict = {}


def shared_program(key, make):
    """The compiled-program cache of this package: the jit-wrapped function stored under `key`, made by
    `make()` the first time `key` is seen in this process.

    Use it for a `jax.jit` whose traced program depends only on what `key` names, so that everything built
    with the same key shares one jit-wrapped function and so traces and compiles each program once per
    process (e.g. when train.main() runs again: the tests, `--resume` in the same process). `key` must name
    every Python-side input the program closes over (the agent's and environment's pure functions, static
    sizes, static arguments); make_meow / make_sac / pendulum / multigoal return one object per
    configuration, so their objects are usable in keys. Users: JaxTrainer (init, run_chunk, evaluate) and
    `jit_act` (GymTrainer, train.py's Gymnasium check). A key that is not hashable is not shared: `make()` is
    called every time."""
    try:
        hash(key)
    except TypeError:
        return make()
    if key not in _PROGRAMS:
        _PROGRAMS[key] = make()
    return _PROGRAMS[key]


def jit_act(agent):
    """agent.act jit'd with `deterministic` (argument 3) static, one per agent in the process (`shared_program`)."""
    return shared_program(("act", agent.act, 3), lambda: jax.jit(agent.act, static_argnums=(3,)))


def _tree_where(cond, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(jnp.reshape(cond, cond.shape + (1,) * (x.ndim - cond.ndim)), x, y), a, b)


def fresh_copy(tree):
    """Distinct buffers for every leaf (the agent's target starts as the same arrays as its
    parameters; a donated argument must not appear twice)."""
    return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), tree)


def _update_n(agent, batch_size, state, buf, key, n_updates: int):
    """`n_updates` gradient updates on minibatches drawn uniformly from the replay buffer."""

    def one(st, k):
        kb, ku = jax.random.split(k)
        return agent.update(st, buffer_sample(buf, kb, batch_size), ku)

    if n_updates == 1:
        return one(state, key)
    state, metrics = jax.lax.scan(one, state, jax.random.split(key, n_updates))
    return state, jax.tree_util.tree_map(lambda x: x[-1], metrics)


class JaxTrainer:
    """The whole training loop of a chunk -- act, env step, replay insert, update -- is one
    `jax.lax.fori_loop` inside one `jax.jit`, vmapped over seeds (PureJaxRL style).

    The carry holds one entry per seed along a leading axis, except `env_steps` (a shared scalar:
    all seeds step in lockstep). The warm-up (uniform actions, no update) and the learning phase
    are two loops with traced trip counts, so no update is computed -- and nothing recompiles --
    while the buffer fills. `chunk` vectorised steps run per call of `run_chunk`."""

    def __init__(self, agent, env: JaxEnv, *, num_envs=1, batch_size=256, buffer_size=100_000, warmup=1000,
                 updates_per_step=1, eval_episodes=10, chunk=1000):
        self.agent, self.env = agent, env
        self.num_envs, self.batch_size, self.warmup = num_envs, batch_size, warmup
        self.buffer_size, self.updates_per_step, self.eval_episodes = buffer_size, updates_per_step, eval_episodes
        self.chunk = chunk
        same = (agent, env, num_envs)  # what every program below depends on, plus its own sizes
        self._init_jit = shared_program(("init", *same, buffer_size), lambda: jax.jit(self._init))
        self.run_chunk = shared_program(("run_chunk", *same, batch_size, warmup, updates_per_step, chunk),
                                         lambda: jax.jit(self._run_chunk, donate_argnums=0))
        self.evaluate = shared_program(("evaluate", *same, eval_episodes),
                                        lambda: jax.jit(jax.vmap(self._evaluate, in_axes=(0, 0, None)), static_argnums=(2,)))

    def init(self, keys):
        """Per-seed init, stacked along a leading seed axis. (Not vmapped: a vmapped orthogonal
        initialiser -- a batched QR -- hung on the XLA CPU backend here.)"""
        carries = [self._init_jit(k) for k in keys]
        carry = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *carries)
        carry["env_steps"] = jnp.zeros((), jnp.int32)
        return carry

    def _init(self, key):
        k_agent, k_env, k_loop = jax.random.split(key, 3)
        env_state, obs = jax.vmap(self.env.reset)(jax.random.split(k_env, self.num_envs))
        return {"agent": self.agent.init(k_agent),
                "buffer": buffer_init(self.buffer_size, self.env.obs_dim, self.env.act_dim),
                "env_state": env_state, "obs": obs, "t": jnp.zeros(self.num_envs, jnp.int32),
                "ep_return": jnp.zeros(self.num_envs, jnp.float32), "key": k_loop,
                # float32, not a weak-typed float: a weak type here made the second `run_chunk` call
                # (whose input is the first call's strongly typed output) compile the whole loop again
                "last_return": jnp.full(self.num_envs, jnp.nan, jnp.float32)}

    def _env_step(self, c, action, key):
        """Step the `num_envs` environments, store the transitions, reset finished episodes.
        Time-limit truncation (t = max_steps) resets without marking `done`: the target still
        bootstraps from V(s'), as in the paper's code."""
        env = self.env
        env_state, next_obs, reward, term = jax.vmap(env.step)(c["env_state"], action)
        buf = buffer_insert(c["buffer"], {"obs": c["obs"], "action": action, "reward": reward,
                                          "next_obs": next_obs, "done": term.astype(jnp.float32)})
        t = c["t"] + 1
        done = term | (t >= env.max_steps)
        ep_return = c["ep_return"] + reward
        reset_state, reset_obs = jax.vmap(env.reset)(jax.random.split(key, self.num_envs))
        return dict(c, buffer=buf, env_state=_tree_where(done, reset_state, env_state),
                    obs=jnp.where(done[:, None], reset_obs, next_obs), t=jnp.where(done, 0, t),
                    ep_return=jnp.where(done, 0.0, ep_return), last_return=jnp.where(done, ep_return, c["last_return"]))

    def _warmup_step(self, c):
        """Uniform random actions, no update (the paper's warm-up)."""
        key, k_act, k_reset = jax.random.split(c["key"], 3)
        action = jax.random.uniform(k_act, (self.num_envs, self.env.act_dim), minval=-1.0, maxval=1.0)
        return self._env_step(dict(c, key=key), action, k_reset)

    def _learn_step(self, c):
        """Act with the stochastic policy, step, insert, then `updates_per_step` updates."""
        key, k_act, k_reset, k_upd = jax.random.split(c["key"], 4)
        action = self.agent.act(c["agent"], c["obs"], k_act, False)
        c = self._env_step(dict(c, key=key), action, k_reset)
        agent_state, metrics = _update_n(self.agent, self.batch_size, c["agent"], c["buffer"], k_upd,
                                         self.updates_per_step)
        return dict(c, agent=agent_state), metrics

    def _run_chunk(self, carry):
        """`chunk` vectorised steps for every seed; returns the carry and the mean update metrics
        (NaN when the chunk was all warm-up)."""
        seeds = {k: v for k, v in carry.items() if k != "env_steps"}
        start = carry["env_steps"]
        n_warm = jnp.clip((self.warmup - start + self.num_envs - 1) // self.num_envs, 0, self.chunk)
        seeds = jax.lax.fori_loop(0, n_warm, lambda i, c: jax.vmap(self._warmup_step)(c), seeds)
        m_shape = jax.eval_shape(jax.vmap(self._learn_step), seeds)[1]
        m0 = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), m_shape)

        def learn(i, cm):
            c, msum = cm
            c, m = jax.vmap(self._learn_step)(c)
            return c, jax.tree_util.tree_map(jnp.add, msum, m)

        seeds, msum = jax.lax.fori_loop(n_warm, self.chunk, learn, (seeds, m0))
        n_learn = self.chunk - n_warm
        metrics = jax.tree_util.tree_map(lambda x: jnp.where(n_learn > 0, x / jnp.maximum(n_learn, 1), jnp.nan), msum)
        return dict(seeds, env_steps=start + self.chunk * self.num_envs), metrics

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
    """One Gymnasium environment, update-to-data 1; the per-step device work is two jit calls."""

    def __init__(self, agent, env_fn, *, batch_size=256, buffer_size=1_000_000, warmup=5000, eval_episodes=10):
        self.agent, self.env_fn = agent, env_fn
        self.batch_size, self.buffer_size, self.warmup, self.eval_episodes = batch_size, buffer_size, warmup, eval_episodes
        self.env = env_fn()
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        self.act = jit_act(agent)

    @partial(jax.jit, static_argnums=0, donate_argnums=1)
    def insert(self, buf, transition):
        """Write the last transition into the (donated) replay buffer in place."""
        return buffer_insert(buf, jax.tree_util.tree_map(lambda x: x[None], transition))

    @partial(jax.jit, static_argnums=0, donate_argnums=1)
    def learn_step(self, agent_state, buf, next_obs, key):
        """One update on a minibatch of the buffer, then act on the new observation. The buffer is
        read-only here (not donated, not returned): when insert and update were one function with a
        donated buffer, XLA copied three of the 1M-row buffer arrays every step (~18 ms of ~24 ms)."""
        k_upd, k_act = jax.random.split(key)
        agent_state, metrics = _update_n(self.agent, self.batch_size, agent_state, buf, k_upd, 1)
        action = self.agent.act(agent_state, next_obs[None], k_act, False)[0]
        return agent_state, action, metrics

    def init(self, key, seed: int):
        k_agent, k_loop = jax.random.split(key)
        obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        return {"agent": fresh_copy(self.agent.init(k_agent)),
                "buffer": fresh_copy(buffer_init(self.buffer_size, self.obs_dim, self.act_dim)),
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
            c["buffer"] = self.insert(c["buffer"], tr)
            if c["env_steps"] >= self.warmup:  # warm-up: the buffer only fills
                c["agent"], c["action"], metrics = self.learn_step(c["agent"], c["buffer"], next_obs, k)
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
