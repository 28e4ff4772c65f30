"""Hopper-v5 at a CPU-sized budget (configs/_cpu_mujoco.py). The expert is trained as the imitators run,
without unhealthy termination: the 150k-step expert falls over after ~60 steps and crawls (README)."""
from _cpu_mujoco import CPU_MUJOCO

OVERRIDES = dict(CPU_MUJOCO, env_id="Hopper-v5")
