"""HalfCheetah-v5 at a CPU-sized budget (configs/_cpu_mujoco.py). HalfCheetah never terminates, so the
expert trained on the env reward faces the same env as the imitators; 150k SAC steps give a running expert
where Hopper without termination gave a crawling one (README)."""
from _cpu_mujoco import CPU_MUJOCO

OVERRIDES = dict(CPU_MUJOCO, env_id="HalfCheetah-v5")
