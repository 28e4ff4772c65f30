"""The embedded default: Pendulum-v1 on a CPU in minutes (2 shared cores).

Deviations from the paper, all for CPU time: 128-wide actor/critic and 64-wide discriminator (paper 256), 10k steps (paper 3M),
Polyak rates 5e-3 (critic and discriminator) instead of 1e-4 for a budget 300x shorter,
cached TDIL rewards refreshed every 500 steps instead of recomputed per batch, the official code's
`use_relative_reward` option with `reward_scaling_weight` 10. 10 evaluation episodes (paper).
The 8000-step Pendulum expert trains with these same SAC settings (expert_* unset), not the official sac.yml's
256 wide / batch 512 / 10000 warm-up (the paper configs' expert): 10000 random steps exceed its whole budget.

Protocol choice, not a paper setting: the one demonstration is the expert's episode from the reset seed
whose start is farthest from upright among seeds 0-9 (seed 4, theta = 2.78 rad, hanging down), so it
contains the whole swing-up. From seed 0 (theta = 0.86 rad, near upright) the demonstration shows no
swing-up and TDIL's reward (expert states one step away) is ~0 below it: 1 of 3 seeds failed (README).
"""
OVERRIDES = dict(
    env_id="Pendulum-v1",
    methods=("tdil", "bc", "gail", "pwil"),
    seeds=(0, 1, 2),
    steps=10000,
    warmup_steps=500,
    eval_every=500,
    eval_episodes=10,
    hidden=128,
    disc_hidden=64,
    tau=5e-3,
    disc_tau=5e-3,
    relative_reward=True,
    reward_scale=10.0,
    reward_refresh_every=500,
    expert_steps=8000,
    bc_steps=2000,
    demo_seed=4,  # farthest start from upright among reset seeds 0-9: the demo contains the swing-up
)
