"""Paper scale, AdroitHandDoor-v1 (gymnasium-robotics, extra [full]): 1M steps, 200-step episodes.
The paper's demonstration comes from a DAPG expert; pass it with --demo-path (e.g. a Minari
episode, --demo-format minari) — training a SAC expert on Door from scratch is not reliable."""
OVERRIDES = dict(
    env_id="AdroitHandDoor-v1",
    methods=("tdil", "tdil_irl", "bc", "gail", "pwil"),
    seeds=(0, 1, 2, 3, 4),
    steps=1_000_000,
    warmup_steps=2000,
    eval_every=5000,
    eval_episodes=10,
    hidden=256,
    disc_hidden=256,
    tau=1e-4,
    disc_tau=1e-4,
    reward_refresh_every=0,
    expert_steps=1_000_000,
    max_episode_steps=200,
    bc_steps=100_000,
    checkpoint_every=50_000,
)
