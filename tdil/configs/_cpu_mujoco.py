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
    bc_steps=5000,
    terminate_when_unhealthy=False,
    checkpoint_every=5000,
)
