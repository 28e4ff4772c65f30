"""The CPU-sized protocol shared by hopper-cpu and halfcheetah-cpu (hours on 2 cores, not minutes):
a 150k-step 128-wide SAC expert on the env reward (with unhealthy termination where the task has it,
`expert_terminate_when_unhealthy`), one demonstration, then TDIL / BC / GAIL for 50k steps
each, rewards cached and refreshed every 1000 steps over 200 subsampled expert states. Far below the
paper's 3M steps (README). Not a named config itself (a leading underscore hides it)."""
CPU_MUJOCO = dict(
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
    # The expert keeps the imitators' SAC settings (expert_* unset: 128 wide, batch 256, 2000 warm-up, tau 5e-3 =
    # sac.yml's tau), not the official sac.yml's 256 wide / batch 512 / 10000 warm-up (the paper configs use those):
    # a 150k-step expert on 2 CPU cores is sized for wall time (a wider net and twice the batch cost more per
    # update, 10000 random steps are 1/15 of the budget), and the Hopper/HalfCheetah experts in the README were
    # trained with these values.
    bc_steps=5000,
    terminate_when_unhealthy=False,
    checkpoint_every=5000,
)
