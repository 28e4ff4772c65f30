"""Hopper-v5 at a CPU-sized budget (configs/_cpu_mujoco.py). The imitators run without unhealthy termination
(paper); the expert's SAC trains with it (`expert_terminate_when_unhealthy`, official sac.yml). Without it
(`--no-expert-terminate-when-unhealthy`, the only setting before) the 150k-step expert fell over after ~60
steps and crawled (README)."""
from _cpu_mujoco import CPU_MUJOCO

OVERRIDES = dict(CPU_MUJOCO, env_id="Hopper-v5")
