"""Environments of the paper (Gymnasium MuJoCo v5 + Adroit Door) and the CPU default (Pendulum-v1).

The paper runs gym 0.23 / mujoco-py "-v3" tasks; the maintained equivalents are Gymnasium's "-v5".
Official settings: `terminate_when_unhealthy=False` for Hopper/Walker2d while imitating (HalfCheetah never
terminates), True while training the SAC expert (official config_files/sac.yml); episodes of 1000 steps
(Adroit Door: 200).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

PAPER_TASKS = ("Hopper-v5", "Walker2d-v5", "Ant-v5", "HalfCheetah-v5", "Humanoid-v5", "AdroitHandDoor-v1")
# Expert-demonstration returns of the paper (Table of expert scores), keyed by our env ids.
PAPER_EXPERT_RETURN = {
    "Hopper-v5": 4114.0,
    "Walker2d-v5": 6123.0,
    "Ant-v5": 6561.0,
    "HalfCheetah-v5": 15251.0,
    "Humanoid-v5": 5855.0,
    "AdroitHandDoor-v1": 3019.0,
}
_UNHEALTHY = ("Hopper", "Walker2d", "Ant", "Humanoid")


def has_unhealthy_termination(env_id: str) -> bool:
    """Whether `terminate_when_unhealthy` means anything for this task (Gymnasium's Hopper/Walker2d/Ant/Humanoid)."""
    return env_id.split("-")[0] in _UNHEALTHY


def make_env(env_id: str, terminate_when_unhealthy: bool = True, max_episode_steps: int | None = None) -> gym.Env:
    kwargs: dict = {}
    if has_unhealthy_termination(env_id) and not terminate_when_unhealthy:
        kwargs["terminate_when_unhealthy"] = False
    if env_id.startswith("AdroitHand"):
        import gymnasium_robotics  # noqa: F401  (extra [full]; registers the Adroit tasks)

        gym.register_envs(gymnasium_robotics)
        max_episode_steps = max_episode_steps or 200
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    env = gym.make(env_id, **kwargs)
    if not isinstance(env.action_space, gym.spaces.Box) or not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"{env_id}: TDIL here needs Box observations and actions")
    return env


def dims(env: gym.Env) -> tuple[int, int]:
    return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))


def to_env_action(env: gym.Env, a: np.ndarray) -> np.ndarray:
    """[-1, 1] policy action -> the env's Box."""
    lo, hi = env.action_space.low, env.action_space.high
    return (lo + (a + 1.0) * 0.5 * (hi - lo)).astype(env.action_space.dtype)


def from_env_action(env: gym.Env, a: np.ndarray) -> np.ndarray:
    lo, hi = env.action_space.low, env.action_space.high
    return np.clip(2.0 * (a - lo) / (hi - lo) - 1.0, -1.0, 1.0).astype(np.float32)
