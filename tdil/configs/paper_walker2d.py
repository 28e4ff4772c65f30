"""Paper scale, Walker2d-v5 (the paper's -v3 task): 3M steps, 2000 warm-up, 3 x 256 networks, tau 1e-4,
rewards recomputed for every batch over all expert next states. GPU: add --device cuda.
The paper's fixed-alpha alternative for this task is --fixed-log-alpha -1.2 (default: auto-tuned)."""
OVERRIDES = dict(
    env_id="Walker2d-v5",
    methods=("tdil", "tdil_irl", "bc", "gail", "pwil"),
    seeds=(0, 1, 2, 3, 4),
    steps=3_000_000,
    warmup_steps=2000,
    eval_every=5000,
    eval_episodes=10,
    hidden=256,
    disc_hidden=256,
    tau=1e-4,
    disc_tau=1e-4,
    reward_refresh_every=0,
    expert_steps=3_000_000,
    bc_steps=100_000,
    terminate_when_unhealthy=False,
    checkpoint_every=50_000,
)
