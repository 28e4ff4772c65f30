"""Named configs: `quick` (the CPU default) and `paper-*` (the paper's MuJoCo protocol, Table/Fig. 3).

Paper settings per environment (MuJoCo v4 in the paper, v5 here; seeds 1-5; eval every 10k steps):
| env | alpha | tau | warm-up | steps | s_max |
| Hopper | 0.25 | 0.005 | 5k | 1.5M | -0.3 | HalfCheetah | 0.25 | 0.003 | 10k | 1.5M | 2.0 |
| Walker2d | 0.1 | 0.005 | 10k | 4M | -0.3 | Ant | 0.05 | 0.0001 | 5k | 4M | -0.3 |
| Humanoid | 0.125 | 0.0005 | 5k | 5M | -0.3 |
"""
from __future__ import annotations

from dataclasses import replace

from meow_rl.config import Config, MultiGoalDemo
from meow_rl.meow import MEowHParams
from meow_rl.sac import SACHParams

QUICK = Config()


def _paper(name, env_id, alpha, tau, warmup, steps, s_max=-0.3):
    return Config(name=name, env_id=env_id, backend="gym", seeds=(1, 2, 3, 4, 5), total_steps=steps, warmup=warmup,
                  eval_every=10_000, eval_episodes=10, buffer_size=1_000_000, meow=MEowHParams(alpha=alpha, tau=tau, sigma_max=s_max),
                  sac=SACHParams(), multigoal=MultiGoalDemo(enabled=False), gym_check=False)


CONFIGS: dict[str, Config] = {
    "quick": QUICK,
    "paper-hopper": _paper("paper-hopper", "Hopper-v5", 0.25, 0.005, 5_000, 1_500_000),
    "paper-halfcheetah": _paper("paper-halfcheetah", "HalfCheetah-v5", 0.25, 0.003, 10_000, 1_500_000, s_max=2.0),
    "paper-walker2d": _paper("paper-walker2d", "Walker2d-v5", 0.1, 0.005, 10_000, 4_000_000),
    "paper-ant": _paper("paper-ant", "Ant-v5", 0.05, 0.0001, 5_000, 4_000_000),
    "paper-humanoid": _paper("paper-humanoid", "Humanoid-v5", 0.125, 0.0005, 5_000, 5_000_000),
}
# A few CPU hours: the paper's Hopper settings at 100k steps, 1 seed, eval every 5k.
CONFIGS["cpu-hopper"] = replace(CONFIGS["paper-hopper"], name="cpu-hopper", seeds=(1,), total_steps=100_000,
                                eval_every=5_000)
# Vectorised Brax/MJX path (GPU): stands in for the paper's Isaac Gym tasks (128-512 parallel envs, ~1M steps).
CONFIGS["brax-ant"] = Config(name="brax-ant", env_id="ant", backend="brax", seeds=(1,), total_steps=1_024_000,
                             warmup=10_240, eval_every=102_400, num_envs=256, updates_per_step=8, buffer_size=1_000_000,
                             meow=MEowHParams(alpha=0.05, tau=0.005), multigoal=MultiGoalDemo(enabled=False),
                             gym_check=False)
# Vectorised Brax path at a CPU budget: Brax `inverted_pendulum` (cart-pole, obs 4, act 1, reward +1 per step
# upright, terminates at |angle| > 0.2, episodes cut at 1000 steps, so returns are in [0, 1000]).
# MEow: the paper's Hopper row (alpha 0.25, tau 0.005, 5k warm-up, s_max -0.3) -- chosen because Hopper's reward
# is likewise dominated by a +1-per-step alive bonus, so the same entropy scale applies; lr 1e-3, batch 256,
# gamma 0.99, grad clip 30 are the paper's defaults. Update-to-data 1 as in the paper: 8 parallel envs and
# 8 updates per vectorised step. The buffer holds every transition of the run (same as the paper's 1M here).
# `generalized` pipeline: the cheapest measured here for this task (README, "Brax inverted_pendulum on 2 CPU cores").
CONFIGS["brax-inverted-pendulum-cpu"] = Config(
    name="brax-inverted-pendulum-cpu", env_id="inverted_pendulum", backend="brax", brax_pipeline="generalized",
    max_episode_steps=1000, seeds=(1,), total_steps=30_000, warmup=5_000, eval_every=2_000, eval_episodes=10,
    num_envs=8, updates_per_step=8, buffer_size=30_000, meow=MEowHParams(alpha=0.25, tau=0.005, sigma_max=-0.3),
    multigoal=MultiGoalDemo(enabled=False), gym_check=False)
