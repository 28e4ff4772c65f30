"""Hopper-v5 at a CPU-sized budget (hours on 2 cores, not minutes): a small SAC expert, then TDIL
and baselines from its one demonstration. Far below the paper's 3M steps; see README."""
OVERRIDES = dict(
    env_id="Hopper-v5",
    methods=("tdil", "bc", "gail"),
    seeds=(0, 1, 2),
    steps=50_000,
    warmup_steps=2000,
    eval_every=5000,
    eval_episodes=5,
    hidden=128,
    disc_hidden=64,
    tau=5e-3,
    disc_tau=5e-3,
    relative_reward=True,
    reward_scale=10.0,
    reward_refresh_every=1000,
    expert_subsample=200,
    expert_steps=150_000,
    bc_steps=5000,
    terminate_when_unhealthy=False,
    checkpoint_every=5000,
)
