"""The paper's protocol shared by the five MuJoCo locomotion configs (paper_<task>.py):
3M steps, 2000 warm-up, 3 x 256 networks, tau 1e-4, rewards recomputed for every batch over all
expert next states. The SAC expert (when no --demo-path is given) trains with unhealthy termination, the
imitators without (official sac.yml vs neighborhood_sac.yml), and with sac.yml's own SAC settings (expert_*: tau 0.005,
batch 512, 10000 warm-up, 256 wide, Adam 3e-4 for actor, critics and alpha), not the imitators' tau 1e-4 / batch 256 / 2000 warm-up.
Not a named config itself (a leading underscore hides it)."""
PAPER_MUJOCO = dict(
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
    expert_tau=5e-3,  # official config_files/sac.yml: tau 0.005
    expert_batch_size=512,  # batch_size 512
    expert_warmup_steps=10_000,  # buffer_warmup_step 10000
    expert_hidden=256,  # hidden_dim 256
    expert_actor_lr=3e-4,  # actor_lr 0.0003 (sac.yml; main.py has no flag that overrides the three rates)
    expert_critic_lr=3e-4,  # critic_lr 0.0003 (not CleanRL's 1e-3)
    expert_alpha_lr=3e-4,  # alpha_lr 0.0003
    bc_steps=100_000,
    terminate_when_unhealthy=False,
    checkpoint_every=50_000,
)
