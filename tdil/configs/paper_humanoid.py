"""Paper scale, Humanoid-v5 (the paper's -v3 task): 3M steps, 2000 warm-up, 3 x 256 networks, tau 1e-4,
rewards recomputed for every batch over all expert next states. GPU: add --device cuda.
The paper's fixed-alpha alternative for this task is --fixed-log-alpha -0.6 (default: auto-tuned)."""
from _paper_mujoco import PAPER_MUJOCO

OVERRIDES = dict(PAPER_MUJOCO, env_id="Humanoid-v5")
