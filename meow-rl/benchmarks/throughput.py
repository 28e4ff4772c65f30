"""Measured throughput on this machine: env steps/s, gradient updates/s (MEow vs SAC), the cost of
MEow's exact soft V next to SAC's sampled one, and the jit'd vectorised loop (JAX Pendulum; Brax if
installed). Prints one table; `--quick` (default) keeps every timing to a few seconds.

    python benchmarks/throughput.py [--full] [--loops]     (--loops: only the training-loop rows)
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from meow_rl.envs import make_gym_env  # noqa: E402
from meow_rl.flow import MEowFlow  # noqa: E402
from meow_rl.loop import GymTrainer  # noqa: E402
from meow_rl.meow import MEowHParams, make_meow  # noqa: E402
from meow_rl.sac import Actor, DoubleQ, SACHParams, make_sac, tanh_gaussian_sample  # noqa: E402
from loop_scaling import time_loop  # noqa: E402  (benchmarks/loop_scaling.py)

FULL = "--full" in sys.argv
N = 5 if not FULL else 20


def timeit(fn, *args, n=50):
    out = fn(*args)
    jax.block_until_ready(out)
    t = time.perf_counter()
    for _ in range(n):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / n


def env_steps_per_s(env_id, n=2000):
    env = make_gym_env(env_id)
    env.reset(seed=0)
    t = time.perf_counter()
    for _ in range(n):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    return n / (time.perf_counter() - t)


def loop_rows():
    """Whole training loops: the jit'd JAX loop (act + env step + insert + update per step, seeds
    vmapped) on the JAX Pendulum, and the Gymnasium Hopper-v5 loop (paper protocol, 1M buffer)."""
    rows = []
    for name, make in (("MEow", lambda: make_meow(MEowHParams(), 3, 1)), ("SAC", lambda: make_sac(SACHParams(), 3, 1))):
        for seeds, num_envs in ((1, 1), (3, 1), (1, 64)):
            dt, _ = time_loop(make(), seeds, num_envs, chunk=200, reps=N // 5 + 1)  # s per vectorised step
            rows.append((f"{name} jit'd loop, JAX Pendulum, {seeds} seed(s) x {num_envs} env(s), 1 update/step: "
                         "env steps/s per seed (all seeds)", f"{num_envs / dt:,.0f} ({seeds * num_envs / dt:,.0f})"))
    for name, agent in (("MEow", make_meow(MEowHParams(), 11, 3)), ("SAC", make_sac(SACHParams(), 11, 3))):
        tr = GymTrainer(agent, lambda: make_gym_env("Hopper-v5"), buffer_size=1_000_000, warmup=64)
        c = tr.init(jax.random.PRNGKey(0), 0)
        c, _ = tr.run_chunk(c, 100)  # warm-up + compile
        t = time.perf_counter()
        c, _ = tr.run_chunk(c, 40 * N)
        rows.append((f"{name} Gymnasium Hopper-v5 training loop (UTD 1, 1M buffer): env steps/s",
                     f"{40 * N / (time.perf_counter() - t):,.0f}"))
    return rows


def main():
    rows = []
    if "--loops" in sys.argv:  # only the training-loop rows
        return print_rows(loop_rows())
    for env_id in ("Pendulum-v1", "InvertedPendulum-v5", "Hopper-v5"):
        rows.append((f"Gymnasium {env_id}: random-action env steps/s", f"{env_steps_per_s(env_id):,.0f}"))

    obs_dim, act_dim, B = 11, 3, 256  # Hopper-sized
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    batch = {"obs": jax.random.normal(k[0], (B, obs_dim)), "action": jnp.tanh(jax.random.normal(k[1], (B, act_dim))),
             "reward": jax.random.normal(k[2], (B,)), "next_obs": jax.random.normal(k[3], (B, obs_dim)),
             "done": jnp.zeros(B)}
    for name, agent in (("MEow", make_meow(MEowHParams(), obs_dim, act_dim)), ("SAC", make_sac(SACHParams(), obs_dim, act_dim))):
        state = agent.init(jax.random.PRNGKey(0))
        upd = jax.jit(agent.update)
        dt = timeit(lambda s: upd(s, batch, jax.random.PRNGKey(1))[0], state, n=10 * N)
        rows.append((f"{name} update (obs {obs_dim}, act {act_dim}, batch {B}): updates/s", f"{1 / dt:,.0f} ({dt * 1e3:.2f} ms)"))

    # the soft value of s': exact in MEow (prior scale + shift nets, no action), sampled in SAC
    flow = MEowFlow(act_dim)
    fp = flow.init(jax.random.PRNGKey(0), jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)))
    v_meow = jax.jit(lambda p, s: flow.apply(p, s, method=MEowFlow.v_over_alpha))
    actor, critic = Actor(act_dim), DoubleQ()
    ap, cp = actor.init(k[0], jnp.zeros((1, obs_dim))), critic.init(k[1], jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)))

    def v_sac(ap, cp, s, key):
        m, ls = actor.apply(ap, s)
        a, logp = tanh_gaussian_sample(m, ls, jax.random.normal(key, m.shape))
        q1, q2 = critic.apply(cp, s, a)
        return jnp.minimum(q1, q2) - 0.2 * logp

    q_sac = jax.jit(lambda cp, s, a: critic.apply(cp, s, a))
    q_meow = jax.jit(lambda p, s, a: flow.apply(p, s, a, method=MEowFlow.q_over_alpha))
    t_vm = timeit(v_meow, fp, batch["next_obs"], n=100 * N)
    t_vs = timeit(jax.jit(v_sac), ap, cp, batch["next_obs"], jax.random.PRNGKey(0), n=100 * N)
    t_qs = timeit(q_sac, cp, batch["obs"], batch["action"], n=100 * N)
    t_qm = timeit(q_meow, fp, batch["obs"], batch["action"], n=100 * N)
    rows.append(("MEow exact V(s') (batch 256), forward", f"{t_vm * 1e6:.0f} us"))
    rows.append(("SAC sampled V(s') = min Q(s',a') - alpha log pi (actor + twin Q), forward", f"{t_vs * 1e6:.0f} us"))
    rows.append(("SAC critic Q(s,a) twin forward / MEow Q(s,a) (flow inverse) forward", f"{t_qs * 1e6:.0f} us / {t_qm * 1e6:.0f} us"))
    rows.append(("MEow exact V cost relative to SAC twin-critic forward", f"{t_vm / t_qs:.2f}x"))

    rows += loop_rows()
    try:
        from meow_rl.envs import brax_env

        env = brax_env("inverted_pendulum", backend="generalized", max_steps=1000)
        step = jax.jit(jax.vmap(env.step))
        st, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 256))
        a = jnp.zeros((256, env.act_dim))
        dt = timeit(lambda s: step(s, a)[0], st, n=20)
        rows.append(("Brax inverted_pendulum x256 envs: env steps/s", f"{256 / dt:,.0f}"))
    except ImportError:
        rows.append(("Brax/MJX vectorised envs", "not measured: brax not installed (pip install -e '.[full]')"))

    print_rows(rows)


def print_rows(rows):
    print(f"\n## meow-rl throughput (jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPU cores)\n")
    print("| measurement | value |\n|---|---|")
    for name, val in rows:
        print(f"| {name} | {val} |")


if __name__ == "__main__":
    main()
