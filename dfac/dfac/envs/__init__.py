"""Environments behind one numpy interface (base.MultiAgentEnv)."""
from .base import SMAC_REWARD_SCALE_RATE, MultiAgentEnv, Obs, reward_scale_factor
from .matrix_game import TwoStepMatrixGame


def make_env(name: str, map_name: str = "3m", n_envs: int = 8, seed: int = 0, **kwargs) -> MultiAgentEnv:
    if name == "matrix":
        return TwoStepMatrixGame(n_envs=n_envs, seed=seed, **kwargs)
    if name == "smax":
        from .smax import SMAXEnv

        return SMAXEnv(map_name, n_envs=n_envs, seed=seed, **kwargs)
    if name == "smac":
        from .smac import SMACEnv

        return SMACEnv(map_name, n_envs=n_envs, seed=seed, **kwargs)
    raise ValueError(f"unknown environment {name!r}: use matrix, smax or smac")


__all__ = ["SMAC_REWARD_SCALE_RATE", "MultiAgentEnv", "Obs", "TwoStepMatrixGame", "make_env", "reward_scale_factor"]
