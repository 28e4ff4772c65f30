"""The jit'd JAX training loop (act + env step + replay insert + one update per vectorised step, seeds
vmapped; `meow_rl.loop.JaxTrainer`) on the JAX Pendulum as the number of parallel environments and
seeds grows: env steps/s and updates/s, MEow vs SAC, on whatever device JAX picks (GPU if present).

This is the shape of the paper's Isaac Gym setting (many environments, one update per vectorised
step); the environment is the JAX Pendulum by default, or a Brax environment (`--env brax:NAME:PIPELINE`,
needs `make setup-full`), not an Isaac Gym task.

    python benchmarks/loop_scaling.py                           # sizes 1x1 ... 1x4096, 3x1, 8x256
    python benchmarks/loop_scaling.py --sizes 1x1,1x64 --chunk 100   # quick (CPU)
    python benchmarks/loop_scaling.py --env brax:ant:positional --sizes 1x1,1x16 --chunk 50   # Brax on a CPU
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from meow_rl.envs import JaxEnv, brax_env, pendulum  # noqa: E402
from meow_rl.loop import JaxTrainer  # noqa: E402
from meow_rl.meow import MEowHParams, make_meow  # noqa: E402
from meow_rl.sac import SACHParams, make_sac  # noqa: E402


def make_env(spec: str) -> JaxEnv:
    """`pendulum` (the JAX Pendulum-v1) or `brax:NAME:PIPELINE` (e.g. brax:ant:positional)."""
    if spec == "pendulum":
        return pendulum()
    kind, name, pipeline = spec.split(":")
    if kind != "brax":
        raise ValueError(f"--env must be 'pendulum' or 'brax:NAME:PIPELINE', got {spec!r}")
    return brax_env(name, pipeline)


def time_loop(agent, seeds: int, envs: int, chunk: int, reps: int, buffer: int = 100_000,
              env: JaxEnv | None = None) -> tuple[float, float]:
    """Seconds per vectorised step of `JaxTrainer.run_chunk` on `env` (default: the JAX Pendulum; no warm-up,
    so every step updates), timed over `reps` calls after one compiling call; and that first call's seconds."""
    tr = JaxTrainer(agent, env or pendulum(), num_envs=envs, buffer_size=buffer, warmup=0, chunk=chunk)
    c = tr.init(jax.random.split(jax.random.PRNGKey(0), seeds))
    t = time.perf_counter()
    c, _ = tr.run_chunk(c)
    jax.block_until_ready(c)
    t_first = time.perf_counter() - t
    # trainers with the same agent, env and sizes share run_chunk (meow_rl/loop.py: shared_program): count its programs
    # after the compiling call, so a row after another with other seeds is not flagged for the earlier program
    n_programs = tr.run_chunk._cache_size()
    t = time.perf_counter()
    for _ in range(reps):
        c, _ = tr.run_chunk(c)
    jax.block_until_ready(c)
    dt = (time.perf_counter() - t) / (reps * chunk)
    if tr.run_chunk._cache_size() != n_programs:  # a recompilation inside the timed calls would be in dt
        print("warning: run_chunk compiled again inside the timed calls; the row includes compile time")
    return dt, t_first


def time_env_only(env: JaxEnv, envs: int, chunk: int, reps: int) -> tuple[float, float]:
    """Seconds per vectorised step of the environment alone (random actions, no agent, no buffer, no
    resets) in one jit'd loop of `chunk` steps, and the first (compiling) call's seconds: the physics'
    share of a loop row."""
    def run(st, key):
        def body(i, c):
            st, key = c
            key, k = jax.random.split(key)
            a = jax.random.uniform(k, (envs, env.act_dim), minval=-1.0, maxval=1.0)
            return jax.vmap(env.step)(st, a)[0], key
        return jax.lax.fori_loop(0, chunk, body, (st, key))

    run = jax.jit(run)
    st, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), envs))
    st = jax.vmap(env.step)(st, jnp.zeros((envs, env.act_dim)))[0]  # a stepped state: the loop's carry types
    c = (st, jax.random.PRNGKey(1))
    t = time.perf_counter()
    c = jax.block_until_ready(run(*c))
    t_first = time.perf_counter() - t
    c = jax.block_until_ready(run(*c))  # the loop's output types may differ from a fresh state's: compile those too
    t = time.perf_counter()
    for _ in range(reps):
        c = run(*c)
    jax.block_until_ready(c)
    if run._cache_size() > 2:  # 1 or 2 programs, both compiled before the timed calls
        print(f"warning: the env-only loop compiled {run._cache_size()} times; the row includes compile time")
    return (time.perf_counter() - t) / (reps * chunk), t_first


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1x1,3x1,1x64,1x1024,1x4096,8x256", help="SEEDSxENVS, comma-separated")
    p.add_argument("--chunk", type=int, default=500, help="vectorised steps per timed call")
    p.add_argument("--reps", type=int, default=2, help="timed calls after the compiling one")
    p.add_argument("--buffer", type=int, default=100_000)
    p.add_argument("--env", default="pendulum", help="pendulum | brax:NAME:PIPELINE (e.g. brax:ant:positional)")
    p.add_argument("--algos", default="meow,sac", help="comma-separated: meow, sac, env (the environment alone)")
    a = p.parse_args(argv)
    env = make_env(a.env)
    dev = jax.devices()[0]
    print(f"jax {jax.__version__}, device {dev.platform} ({getattr(dev, 'device_kind', '')}), {os.cpu_count()} CPU cores; "
          f"env {env.name} (obs {env.obs_dim}, act {env.act_dim}); {a.reps} x {a.chunk} vectorised steps per row")
    print("| agent | seeds x envs | env steps/s per seed | env steps/s (all seeds) | updates/s per seed | compile + first chunk (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    makers = {"meow": ("MEow", lambda: make_meow(MEowHParams(), env.obs_dim, env.act_dim)),
              "sac": ("SAC", lambda: make_sac(SACHParams(), env.obs_dim, env.act_dim))}
    for algo in a.algos.split(","):
        for size in a.sizes.split(","):
            seeds, envs = (int(v) for v in size.split("x"))
            if algo == "env":  # physics alone: seeds x envs environments in one vmap (no updates)
                dt, t_first = time_env_only(env, seeds * envs, a.chunk, a.reps)
                print(f"| env only | {seeds} x {envs} | {envs / dt:,.0f} | {seeds * envs / dt:,.0f} | - | {t_first:.1f} |",
                      flush=True)
                continue
            name, make = makers[algo]
            dt, t_first = time_loop(make(), seeds, envs, a.chunk, a.reps, a.buffer, env)
            print(f"| {name} | {seeds} x {envs} | {envs / dt:,.0f} | {seeds * envs / dt:,.0f} | {1 / dt:,.0f} | {t_first:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
