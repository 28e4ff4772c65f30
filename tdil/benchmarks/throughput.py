"""Env steps/s and updates/s of TDIL vs the base RL alone (SAC), i.e. the transition discriminator's cost.

    python benchmarks/throughput.py                  # quick: Pendulum-v1, 64-wide nets, 200 updates each
    python benchmarks/throughput.py --hidden 256 --disc-hidden 256 --updates 500   # paper widths
    python benchmarks/throughput.py --config hopper-cpu --updates 300 --warmup 1000  # a named config's settings

"updates/s" = environment steps per second once every step also runs the method's updates
(SAC: actor + critic; TDIL: + discriminator step, reward, expert-critic step, BC step).
TDIL rewards are measured both ways: cached per transition and refreshed every K steps (the CPU
default) and recomputed for every batch over all expert next states (the paper).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from tdil.config import Config
from tdil.demonstrations import record_demonstration
from tdil.envs import make_env
from tdil.imitation import Imitator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train import load_named_config  # noqa: E402


def measure(method: str, cfg: Config, demo, updates: int) -> tuple[float, float]:
    im = Imitator(method, cfg, demo, 0)
    t0 = time.perf_counter()
    for _ in range(cfg.warmup_steps):
        im.step()
    env_rate = cfg.warmup_steps / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(updates):
        im.step()
    return env_rate, updates / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="", help="take env, widths, reward cache and expert subsample from this named config (e.g. hopper-cpu)")
    p.add_argument("--env-id", default="Pendulum-v1")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--disc-hidden", type=int, default=64)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--refresh-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.config:
        named = load_named_config(a.config)
        base = dataclasses.replace(named, warmup_steps=a.warmup, steps=a.warmup + a.updates, eval_every=10**9, checkpoint_every=0)
        a.refresh_every = named.reward_refresh_every or a.refresh_every
    else:
        base = Config(env_id=a.env_id, hidden=a.hidden, disc_hidden=a.disc_hidden, warmup_steps=a.warmup,
                      steps=a.warmup + a.updates, eval_every=10**9, checkpoint_every=0)
    env = make_env(base.env_id, base.terminate_when_unhealthy, base.max_episode_steps)
    env.action_space.seed(0)
    demo = record_demonstration(env, base.env_id, lambda o: env.action_space.sample(), 0)  # a full-length episode
    rows = [
        ("sac (base RL, env reward)", "sac_env", base),
        (f"tdil, cached rewards (K={a.refresh_every})", "tdil", dataclasses.replace(base, reward_refresh_every=a.refresh_every)),
        ("tdil, per-batch rewards (paper)", "tdil", dataclasses.replace(base, reward_refresh_every=0)),
        ("gail", "gail", base),
        ("airl", "airl", base),
        ("pwil", "pwil", base),
    ]
    print(f"{base.env_id}: demo of {len(demo)} transitions, nets {base.hidden} wide (disc {base.disc_hidden}), "
          f"batch {base.batch_size}, expert subsample {base.expert_subsample or 'all'}, torch threads {a.threads}")
    print("| method | env steps/s (no updates) | steps/s with updates | cost vs SAC |")
    print("| --- | --- | --- | --- |")
    sac_rate = None
    for name, method, cfg in rows:
        env_rate, upd_rate = measure(method, cfg, demo, a.updates)
        sac_rate = sac_rate or upd_rate
        print(f"| {name} | {env_rate:.0f} | {upd_rate:.1f} | {sac_rate / upd_rate:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
