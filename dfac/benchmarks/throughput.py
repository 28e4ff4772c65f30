"""Measured throughput at the default sizes: environment steps/s of the runner (acting with the agent
network, epsilon-greedy) and learner updates/s (batch 32 episodes), for the matrix game and SMAX 3m,
and how the runner scales with the number of parallel (vmapped) SMAX environments.

python benchmarks/throughput.py [--map 3m] [--n_envs 1,8,32] [--alg dmix] [--seconds 5]
"""
import argparse
import time

import numpy as np
import torch

from dfac.buffer import EpisodeBuffer
from dfac.envs import make_env
from dfac.run import JobSettings, build
from dfac.runner import run_episodes


def runner_rate(env, controller, seconds, rng):
    run_episodes(env, controller, 0.5, rng)  # warm-up (JAX compiles on the first calls)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, st = run_episodes(env, controller, 0.5, rng)
        steps += int(st["length"].sum())
    return steps / (time.perf_counter() - t0)


def learner_rate(env, learner, controller, seconds, rng):
    buf = EpisodeBuffer(256, env.episode_limit, env.n_agents, env.obs_dim, env.state_dim, env.n_actions)
    while buf.size < 64:
        buf.insert(run_episodes(env, controller, 1.0, rng)[0])
    learner.train_step(buf.sample(32, rng))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        learner.train_step(buf.sample(32, rng))
        n += 1
    return n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--map", default="3m")
    p.add_argument("--n_envs", default="1,8,32")
    p.add_argument("--alg", default="dmix")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    print(f"# DFAC throughput ({a.alg}, torch threads {a.threads}, {torch.get_num_threads()} used)")
    print("| environment | parallel envs | runner env-steps/s | learner updates/s (batch 32) | learner share of wall time (est., 1 update per runner call) |")
    print("|---|---|---|---|---|")
    env = make_env("matrix", n_envs=8, noise="plusminus")
    learner, controller = build(a.alg, env, JobSettings(t_max=1))
    r, u = runner_rate(env, controller, a.seconds, rng), learner_rate(env, learner, controller, a.seconds, rng)
    share = (1 / u) / (1 / u + 2 * 8 / r)
    print(f"| matrix game | 8 | {r:.0f} | {u:.1f} | {share:.0%} |")
    for n in [int(x) for x in a.n_envs.split(",")]:
        env = make_env("smax", map_name=a.map, n_envs=n, seed=0)
        learner, controller = build(a.alg, env, JobSettings(t_max=1))
        r = runner_rate(env, controller, a.seconds, rng)
        u = learner_rate(env, learner, controller, a.seconds, rng)
        ep_len = 40  # typical SMAX 3m episode length (steps), for the share estimate
        share = (1 / u) / (1 / u + n * ep_len / r)
        print(f"| SMAX {a.map} | {n} | {r:.0f} | {u:.1f} | {share:.0%} |", flush=True)


if __name__ == "__main__":
    main()
