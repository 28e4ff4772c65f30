"""The jit'd JAX training loop (act + env step + replay insert + one update per vectorised step, seeds
vmapped; `meow_rl.loop.JaxTrainer`) on the JAX Pendulum as the number of parallel environments and
seeds grows: env steps/s and updates/s, MEow vs SAC, on whatever device JAX picks (GPU if present).

This is the shape of the paper's Isaac Gym setting (many environments, one update per vectorised
step); the environment here is the JAX Pendulum, not an Isaac Gym task.

    python benchmarks/loop_scaling.py                           # sizes 1x1 ... 1x4096, 3x1, 8x256
    python benchmarks/loop_scaling.py --sizes 1x1,1x64 --chunk 100   # quick (CPU)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from meow_rl.envs import pendulum  # noqa: E402
from meow_rl.loop import JaxTrainer  # noqa: E402
from meow_rl.meow import MEowHParams, make_meow  # noqa: E402
from meow_rl.sac import SACHParams, make_sac  # noqa: E402


def time_loop(agent, seeds: int, envs: int, chunk: int, reps: int, buffer: int = 100_000) -> tuple[float, float]:
    """Seconds per vectorised step of `JaxTrainer.run_chunk` on the JAX Pendulum (no warm-up, so every step
    updates), timed over `reps` calls after one compiling call; and that first call's seconds."""
    tr = JaxTrainer(agent, pendulum(), num_envs=envs, buffer_size=buffer, warmup=0, chunk=chunk)
    c = tr.init(jax.random.split(jax.random.PRNGKey(0), seeds))
    t = time.perf_counter()
    c, _ = tr.run_chunk(c)
    jax.block_until_ready(c)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(reps):
        c, _ = tr.run_chunk(c)
    jax.block_until_ready(c)
    return (time.perf_counter() - t) / (reps * chunk), t_first


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1x1,3x1,1x64,1x1024,1x4096,8x256", help="SEEDSxENVS, comma-separated")
    p.add_argument("--chunk", type=int, default=500, help="vectorised steps per timed call")
    p.add_argument("--reps", type=int, default=2, help="timed calls after the compiling one")
    p.add_argument("--buffer", type=int, default=100_000)
    a = p.parse_args(argv)
    dev = jax.devices()[0]
    print(f"jax {jax.__version__}, device {dev.platform} ({getattr(dev, 'device_kind', '')}), {os.cpu_count()} CPU cores")
    print("| agent | seeds x envs | env steps/s per seed | env steps/s (all seeds) | updates/s per seed | compile + first chunk (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, make in (("MEow", lambda: make_meow(MEowHParams(), 3, 1)), ("SAC", lambda: make_sac(SACHParams(), 3, 1))):
        for size in a.sizes.split(","):
            seeds, envs = (int(v) for v in size.split("x"))
            dt, t_first = time_loop(make(), seeds, envs, a.chunk, a.reps, a.buffer)
            print(f"| {name} | {seeds} x {envs} | {envs / dt:,.0f} | {seeds * envs / dt:,.0f} | {1 / dt:,.0f} | {t_first:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
