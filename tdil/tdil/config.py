"""The typed configuration of a run. Named configs in configs/ override these defaults."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Config:
    config: str = "quick"
    """named config in configs/ (quick | paper-hopper | paper-walker2d | paper-ant | paper-halfcheetah | paper-humanoid | paper-door | hopper-cpu | halfcheetah-cpu)"""
    env_id: str = "Pendulum-v1"
    methods: tuple[str, ...] = ("tdil", "bc", "gail", "pwil")
    """any of: tdil, tdil_irl, bc, gail, airl, pwil, iq (IQ-Learn), sac_env (SAC on the true reward, an upper reference)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 5000
    """environment steps per imitation run (paper: 3M MuJoCo, 1M Adroit)"""
    warmup_steps: int = 1000
    """uniform-random steps before updates (paper: 2000)"""
    eval_every: int = 500
    eval_episodes: int = 5
    """evaluation episodes with the deterministic mean action (paper: 10)"""
    batch_size: int = 256
    hidden: int = 256
    layers: int = 3
    lr: float = 3e-4
    """Adam learning rate of SAC's actor, critics and temperature (unless set apart below), of the BC baseline, and of IQ-Learn's critic"""
    actor_lr: float | None = None
    """SAC actor learning rate (also its BC step); None: lr (official neighborhood_sac.yml / sac.yml actor_lr: 3e-4)"""
    critic_lr: float | None = None
    """SAC twin-critic learning rate; None: lr (official critic_lr: 3e-4; CleanRL's SAC: 1e-3)"""
    alpha_lr: float | None = None
    """SAC temperature (log alpha) learning rate; None: lr (official alpha_lr: 3e-4)"""
    gamma: float = 0.99
    tau: float = 5e-3
    """critic Polyak rate (paper: 1e-4 over 3M steps; 5e-3 for CPU-sized budgets)"""
    fixed_log_alpha: float | None = None
    """None: auto-tuned alpha (paper default); else a fixed log alpha (paper: -4.6 Hopper, ...)"""
    # transition discriminator
    disc_hidden: int = 256
    disc_layers: int = 3
    disc_lr: float = 3e-4
    disc_tau: float = 1e-4
    """Polyak rate of the target discriminator that produces rewards (paper: 1e-4)"""
    reward_refresh_every: int = 0
    """0: recompute TDIL rewards for every sampled batch (paper). K>0: cache each transition's reward
    (computed at insertion) and recompute the whole buffer's every K steps (CPU)"""
    expert_subsample: int = 0
    """0: reward sums over all expert next states; M>0: over a fixed random subset of M, scaled by N/M"""
    relative_reward: bool = False
    """official-code option `use_relative_reward`: divide agent rewards by the mean reward of the expert
    batch and give expert transitions reward 1, which keeps the reward scale fixed while D_target moves"""
    reward_scale: float = 1.0
    """official-code `reward_scaling_weight`: multiplies the TDIL rewards given to the critic"""
    bc_every_step: bool = True
    """TDIL's auxiliary BC step on the demonstration every update (can be turned off; TDIL+IRL: irl_bc)"""
    expert_critic_update: bool = True
    """TDIL's second critic update on expert transitions with expert actions"""
    irl_weight: float = 0.9
    """TDIL+IRL: r = (1 - w) r_TDIL + w D_GAIL(s, a) (paper: w = 0.9)"""
    irl_bc: bool = False
    """TDIL+IRL's BC step; off as in the official TDIL+IRL command (`--no_bc --beta 0.9 --use_discriminator`)"""
    irl_grad_penalty: float = 0.0
    """gradient penalty of TDIL+IRL's D(s, a); 0 as the official `Discriminator` (plain BCE); the GAIL baseline keeps gail_grad_penalty"""
    gail_grad_penalty: float = 10.0
    pwil_alpha: float = 5.0
    pwil_beta: float = 5.0
    iq_value_loss: str = "value"
    """IQ-Learn's value term (official method.loss): value = E_rho[V(s) - gamma V(s')] over replay and expert
    states (official HalfCheetah/Ant), v0 = (1 - gamma) E_E[V(s)] (Hopper/Walker2d/Humanoid), value_expert"""
    iq_chi2_alpha: float = 0.5
    """IQ-Learn chi^2 divergence phi(x) = x - x^2 / (4 alpha) (official method.alpha 0.5)"""
    iq_regularize: bool = True
    """IQ-Learn: chi^2 term over expert pairs and policy samples (official MuJoCo commands), else expert only"""
    iq_actor_lr: float = 3e-5
    """IQ-Learn actor learning rate (official MuJoCo commands 3e-5; critic uses lr)"""
    iq_log_alpha: float = -4.605170185988091
    """IQ-Learn's fixed SAC temperature, log(0.01) (official init_temp 1e-2, not learned)"""
    iq_tau: float = 5e-3
    """IQ-Learn target critic Polyak rate (official critic_tau 0.005)"""
    iq_use_target: bool = True
    """IQ-Learn: V(s') from the target critic without gradient (official train.use_target for MuJoCo)"""
    iq_official_networks: bool = True
    """IQ-Learn: orthogonal init of actor and critic and a tanh-squashed log sigma in [-5, 2], as the official
    `SingleQCritic` / `DiagGaussianActor` (the other methods keep PyTorch's default init and a clamped log sigma)"""
    bc_steps: int = 2000
    """gradient steps of the BC baseline"""
    # expert and demonstration
    expert_steps: int = 10000
    """SAC steps on the true reward to train the expert (cached in cache_dir)"""
    # The expert's own SAC settings; None: the imitators' value (tau, batch_size, warmup_steps, hidden, *_lr).
    # The paper configs set the official config_files/sac.yml values (the imitators follow neighborhood_sac.yml).
    expert_tau: float | None = None
    """Polyak rate of the expert's SAC critics; None: tau (official sac.yml: 0.005)"""
    expert_batch_size: int | None = None
    """batch of the expert's SAC updates; None: batch_size (official sac.yml: 512)"""
    expert_warmup_steps: int | None = None
    """uniform-random steps before the expert's SAC updates; None: warmup_steps (official sac.yml: 10000)"""
    expert_hidden: int | None = None
    """width of the expert's actor and critics (layers deep); None: hidden (official sac.yml hidden_dim: 256)"""
    expert_actor_lr: float | None = None
    """the expert's SAC actor learning rate; None: actor_lr (official sac.yml actor_lr: 3e-4)"""
    expert_critic_lr: float | None = None
    """the expert's SAC critic learning rate; None: critic_lr (official sac.yml critic_lr: 3e-4; CleanRL: 1e-3)"""
    expert_alpha_lr: float | None = None
    """the expert's SAC temperature learning rate; None: alpha_lr (official sac.yml alpha_lr: 3e-4)"""
    demo_seed: int = 0
    """env.reset seed of the one recorded demonstration. Protocol choice of the `quick` config: 4, the start
    farthest from upright among seeds 0-9 (theta 2.78 rad), so the demo contains the whole swing-up; from
    seed 0 (theta 0.86, near upright) TDIL's reward is ~0 below the demo and 1 of 3 seeds failed (README)"""
    demo_path: str = ""
    """use this demonstration file (.npz of this project, or .hdf5 with --demo-format) instead of training an expert"""
    demo_format: str = "npz"
    """npz | minari (the dataset folder, its data/ or data/main_data.hdf5) | d4rl"""
    demo_episode: int = 0
    """which episode of a Minari / D4RL file is the one demonstration"""
    expert_return: float | None = None
    """normaliser's expert level; None: measured from the expert policy (or the demo's return)"""
    terminate_when_unhealthy: bool = False
    """paper: off for Hopper/Walker2d; done flags are zeroed for the imitation methods"""
    expert_terminate_when_unhealthy: bool = True
    """the expert's SAC trains with unhealthy termination (Hopper/Walker2d/Ant/Humanoid; official code:
    config_files/sac.yml, as SB3 zoo and CleanRL), its done flags cutting the bootstrap; the demonstration is
    recorded and the expert evaluated in the imitators' env (terminate_when_unhealthy). Without it the 150k-step
    Hopper expert fell over and crawled (README)"""
    max_episode_steps: int | None = None
    buffer_size: int = 1_000_000
    torch_threads: int = 1
    """torch threads per process"""
    workers: int = 2
    """(method, seed) jobs run in parallel, one process each (1: all in this process, one after another)"""
    device: str = "cpu"
    out_dir: str = "runs"
    cache_dir: str = ".cache"
    resume: str = ""
    """a run directory to resume: finished (method, seed) jobs are loaded, the rest restart from their last checkpoint"""
    checkpoint_every: int = 1000
    stop_after_minutes: float = 0.0
    """0: run to the end. M>0: after M minutes of wall time, checkpoint every running stage (the expert's SAC
    or the imitation jobs) and exit; `--resume runs/<dir>` continues (for time-limited commands)"""
    tensorboard: bool = True
    progress: bool = True


def load_run_config(run_dir: str | Path) -> Config:
    """The Config a run was made with (its config.json; JSON lists back to tuples, unknown keys ignored)."""
    saved = json.loads((Path(run_dir) / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields})
