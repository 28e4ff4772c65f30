"""Paper scale, AdroitHandDoor-v1 (gymnasium-robotics, extra [full]): the MuJoCo protocol with 1M steps
and 200-step episodes. The paper's demonstration comes from a DAPG expert; pass it with --demo-path
(e.g. a Minari episode, --demo-format minari) — training a SAC expert on Door from scratch is not reliable.
(`terminate_when_unhealthy` from the shared protocol only applies to Hopper/Walker2d/Ant/Humanoid.)"""
from _paper_mujoco import PAPER_MUJOCO

OVERRIDES = dict(
    PAPER_MUJOCO,
    env_id="AdroitHandDoor-v1",
    steps=1_000_000,
    expert_steps=1_000_000,
    max_episode_steps=200,
)
