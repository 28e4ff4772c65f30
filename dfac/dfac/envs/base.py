"""One interface for every environment: a batch of `n_envs` copies stepped in lockstep (PyMARL's
parallel runner contract, vectorised). Everything crossing it is numpy.

reset() -> Obs(obs [B, n, obs_dim] float32, state [B, state_dim] float32, avail [B, n, n_actions] float32)
step(actions [B, n] int) -> (Obs, reward [B], terminated [B] bool (true terminal, no bootstrap),
                             done [B] bool (episode over, incl. time limit), won [B] bool)
Copies that are done are reset by the environment (auto-reset); the runner ignores their outputs
until every copy of the batch has finished its episode.
"""
from typing import NamedTuple

import numpy as np

# SMAC (oxwhirl/smac, starcraft2.py) divides every reward by max_reward / reward_scale_rate, where
#   max_reward = n_enemies * reward_death_value + reward_win + sum over enemies of (health_max + shield_max)
# (10 per kill, 200 for the win, each enemy's health and shield once), so that a perfect episode returns
# reward_scale_rate = 20. The official DFAC hyperparameters were tuned at that scale.
SMAC_REWARD_SCALE_RATE = 20.0


class Obs(NamedTuple):
    obs: np.ndarray
    state: np.ndarray
    avail: np.ndarray


class MultiAgentEnv:
    n_envs: int
    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    episode_limit: int
    unit_dim: int = 1  # width of each ally's own features at the start of the state (Qatten's keys)

    def reset(self) -> Obs:
        raise NotImplementedError

    def step(self, actions: np.ndarray):
        raise NotImplementedError

    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.n_envs, self.n_agents):
            raise ValueError(f"actions must have shape {(self.n_envs, self.n_agents)}, got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise TypeError(f"actions must be integers, got {actions.dtype}")
        if actions.min() < 0 or actions.max() >= self.n_actions:
            raise ValueError(f"actions must lie in [0, {self.n_actions}), got {actions.min()}..{actions.max()}")
        return actions

    def smac_reward_scale(self) -> float:
        """The factor r -> r x factor that puts this environment's rewards on SMAC's scale (a perfect episode
        returns SMAC_REWARD_SCALE_RATE). 1 here: the matrix game is not a SMAC scenario and stays unscaled, and
        real SMAC scales its rewards itself (StarCraft2Env's reward_scale=True)."""
        return 1.0

    def get_rng_state(self):
        """The environment's random state (for checkpoints); None where it cannot be captured (SMAC)."""
        return None

    def set_rng_state(self, state):
        pass

    def close(self):
        pass


def reward_scale_factor(spec, env: MultiAgentEnv) -> float:
    """`--reward_scale`: "smac" (the default) resolves to env.smac_reward_scale() (SMAX: 20 / its perfect
    episode's return); a number is used as given (1: the environment's own reward)."""
    return env.smac_reward_scale() if str(spec) == "smac" else float(spec)
