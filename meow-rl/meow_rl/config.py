"""Typed run configuration (parsed by tyro in train.py); named configs live in configs/."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .meow import MEowHParams
from .sac import SACHParams


@dataclass(frozen=True)
class MultiGoalDemo:
    """The 2-D multi-goal toy; defaults are the official MEow toy's (toy/conf/base.yaml)."""

    enabled: bool = True
    """train MEow and SAC on the 2-D multi-goal toy and plot their action densities at the origin"""
    steps: int = 4000
    warmup: int = 1000
    gamma: float = 0.9
    meow_alpha: float = 2.5
    meow_tau: float = 0.0005
    meow_sigma_min: float = -2.0
    meow_sigma_max: float = 1.0
    meow_init: Literal["flax", "official"] = "official"
    """the flow's initialisation on the toy (MEowHParams.init_scheme); the official toy uses the PyTorch one"""
    sac_alpha: float = 2.5
    """SAC's fixed temperature on the toy (no autotuning, same as MEow's by default)"""
    rollouts: int = 200
    """stochastic rollouts started exactly at the origin, used to count the goals each policy reaches"""
    rollout_steps: int = 100
    """each counted / plotted rollout runs until it reaches a goal or for this many steps"""


@dataclass(frozen=True)
class Config:
    name: str = "quick"
    env_id: str = "Pendulum-v1"
    """Pendulum-v1 / MultiGoal (backend jax), a Gymnasium id such as Hopper-v5 (backend gym), a Brax name (backend brax)"""
    backend: Literal["jax", "gym", "brax"] = "jax"
    """jax: whole loop in one jit (scan); gym: Gymnasium/MuJoCo, Python env loop; brax: vectorised Brax/MJX"""
    brax_pipeline: Literal["mjx", "generalized", "positional", "spring"] = "mjx"
    """backend brax: Brax's physics pipeline (mjx on a GPU; generalized/positional are cheaper to compile on a CPU)"""
    max_episode_steps: int = 1000
    """backend brax: episodes are cut (truncated, not terminated) after this many steps"""
    algos: tuple[str, ...] = ("meow", "sac")
    seeds: tuple[int, ...] = (1, 2, 3)
    total_steps: int = 8_000
    """environment steps per seed (all parallel envs counted)"""
    warmup: int = 1_000
    """steps of uniform random actions before learning starts"""
    eval_every: int = 1_000
    eval_episodes: int = 10
    stochastic_eval: bool = True
    """also evaluate with sampled actions (the deterministic action is always evaluated)"""
    batch_size: int = 256
    buffer_size: int = 100_000
    """replay capacity (the paper: 1M; paper-* configs set it)"""
    num_envs: int = 1
    """parallel environments (jax/brax backends)"""
    updates_per_step: int = 1
    """gradient updates per vectorised environment step"""
    meow: MEowHParams = field(default_factory=MEowHParams)
    sac: SACHParams = field(default_factory=SACHParams)
    multigoal: MultiGoalDemo = field(default_factory=MultiGoalDemo)
    gym_check: bool = True
    """for a JAX env with a Gymnasium twin (Pendulum-v1), also evaluate the final policies in Gymnasium"""
    out_dir: str = "runs"
    resume: str = ""
    """a run directory to resume from (its config.json is used; checkpoints are per algorithm)"""
    tensorboard: bool = True
    progress: bool = True


def validate(cfg: Config) -> None:
    """Reject bad input early with a message that says what to change."""
    errors = []
    if not cfg.algos or any(a not in ("meow", "sac") for a in cfg.algos):
        errors.append(f"algos must be a non-empty subset of (meow, sac), got {cfg.algos}")
    if not cfg.seeds:
        errors.append("seeds must not be empty")
    for name in ("total_steps", "eval_every", "eval_episodes", "batch_size", "buffer_size", "num_envs", "updates_per_step",
                 "max_episode_steps"):
        if getattr(cfg, name) <= 0:
            errors.append(f"{name} must be positive, got {getattr(cfg, name)}")
    if cfg.warmup < 0:
        errors.append(f"warmup must be >= 0, got {cfg.warmup}")
    if cfg.eval_every % cfg.num_envs:
        errors.append(f"eval_every ({cfg.eval_every}) must be a multiple of num_envs ({cfg.num_envs})")
    if cfg.total_steps % cfg.eval_every:
        errors.append(f"total_steps ({cfg.total_steps}) must be a multiple of eval_every ({cfg.eval_every})")
    if cfg.backend == "gym" and cfg.num_envs != 1:
        errors.append("backend gym runs one environment (the paper's protocol); use num_envs=1")
    if not 0.0 < cfg.meow.gamma <= 1.0 or not 0.0 < cfg.sac.gamma <= 1.0:
        errors.append("gamma must be in (0, 1]")
    if cfg.meow.alpha <= 0 or cfg.sac.alpha <= 0:
        errors.append("alpha must be positive")
    if not 0.0 < cfg.meow.tau <= 1.0 or not 0.0 < cfg.sac.tau <= 1.0:
        errors.append("tau must be in (0, 1]")
    if cfg.meow.sigma_min >= cfg.meow.sigma_max:
        errors.append(f"meow.sigma_min ({cfg.meow.sigma_min}) must be below meow.sigma_max ({cfg.meow.sigma_max})")
    if errors:
        raise ValueError("invalid config:\n  " + "\n  ".join(errors))
