"""The typed run configuration. Named configs live in configs/<name>.json (overrides of these defaults);
every field is also a command-line option of train.py."""
import argparse
import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class Config:
    config: str = "quick"  # named config in configs/ (its values are the defaults below it)
    phases: str = "matrix,micro"  # which experiments: matrix (two-step game) and/or micro (SMAX / SMAC)
    algs: str = "vdn,qmix,ddn,dmix"  # comma list from iql,vdn,qmix,qplex,diql,ddn,dmix,dplex
    seeds: str = "0"  # comma list of seeds; every (alg, seed) is an independent job
    # --- the two-step matrix game
    matrix_episodes: int = 8000  # training episodes per algorithm and exploration regime
    matrix_noise: str = "plusminus"  # none | plusminus | gaussian | bernoulli
    matrix_noise_scale: float = 2.0
    matrix_n_quantiles: int = 8  # N = N' for every distributional method in the matrix game
    matrix_lr: float = 2e-3  # learning rate in the matrix game (the SMAX/SMAC runs use lr)
    # uniform: epsilon = 1 throughout (QMIX's study of the game); annealed: epsilon 1 -> matrix_epsilon_finish
    # over the first matrix_epsilon_anneal_frac of the episodes (PyMARL's schedule)
    matrix_exploration: str = "uniform,annealed"
    matrix_epsilon_finish: float = 0.05
    matrix_epsilon_anneal_frac: float = 0.5
    # --- micromanagement
    env: str = "smax"  # smax (JaxMARL, runs here) | smac (StarCraft II, needs the binary and oxwhirl/smac)
    map: str = "3m"
    t_max: int = 60_000  # environment steps per algorithm and seed (quick; the paper: 8.2M)
    n_envs: int = 16  # parallel environments (vmapped SMAX copies; SMAC processes)
    updates_per_run: int = 2  # gradient steps per batch of n_envs episodes (16 envs x 2 = PyMARL's 1 per 8)
    test_interval: int = 10_000  # environment steps between greedy evaluations
    test_episodes: int = 32
    # --- learner (official DFAC / PyMARL yaml)
    batch_size: int = 32  # episodes per update
    buffer_size: int = 5000  # episodes
    lr: float = 5e-4
    gamma: float = 0.99
    grad_clip: float = 10.0
    target_update_interval: int = 200  # episodes between hard target copies
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 50_000  # environment steps
    rnn_hidden: int = 64
    rnn_hidden_overrides: str = ""  # per algorithm, e.g. "ddn=512,dmix=256" (official Super Hard sizes)
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64
    n_quantiles: str = "ddn=1,diql=1,dmix=8,dplex=8"  # N (and N') per algorithm (official yaml)
    n_act_quantiles: int = 32  # N^ for acting
    # K of IQN's Algorithm 1: fresh fractions whose mean picks the target's greedy action a*;
    # 0 = the mean of the N' target samples themselves (official DFAC code; with N' = 1 a single quantile)
    n_greedy_quantiles: int = 0
    qplex_attention: bool = True  # QPLEX / DPLEX: Qatten attention weights w_i(s) (official); false: dmaq_general's |hyper_w(s)|
    n_head: int = 4  # Qatten attention heads
    attend_reg_coef: float = 1e-3  # Qatten attention-logit regulariser
    kappa: float = 1.0
    optimizer: str = "auto"  # auto (Adam for DIQL/DDN/DMIX/DPLEX, RMSProp for IQL/VDN/QMIX/QPLEX, official yaml) | adam | rmsprop
    double_q: bool = True  # IQL/VDN/QMIX/QPLEX: target action from the online network (official)
    # DIQL/DDN/DMIX/DPLEX: target action = argmax of the online network's mean over its N fractions (the official
    # iqn_learner's double_q branch); off by default, as the official dmix.yaml / ddn.yaml (double_q: False)
    dfac_double_q: bool = False
    # --- ablations (defaults: the official algorithms)
    agent: str = "auto"  # auto (IQN-RNN for DIQL/DDN/DMIX/DPLEX, RNN otherwise) | rnn | iqn (swap the agent network)
    # r is multiplied by this in the learner's targets. "smac" (default): SMAC's reward normalisation,
    # r / (max_reward / reward_scale_rate), so that a perfect episode returns 20: on SMAX the factor is 20 / (what a
    # perfect SMAX episode returns) = 20 / 2 = 10; 1 on real SMAC (already scaled) and in the matrix game (unscaled).
    # A number is used as given (1: the environment's own reward). Test returns are always in the environment's units.
    reward_scale: str = "smac"
    qmix_state_value: bool = True  # the QMIX / DMIX head's state value V(s); false drops it
    # --- infrastructure
    out_dir: str = "runs"
    resume: str = ""  # run directory to resume from (its checkpoints/<job>.pt)
    save_interval: int = 20_000  # environment steps between checkpoints
    save_buffer: bool = True  # also checkpoint the replay buffer (checkpoints/<job>.buffer.npz) so --resume continues identically
    device: str = "cpu"  # cpu | cuda | cuda:N (learner and acting network; the environments stay on CPU)
    threads: int = 1  # torch CPU threads (1 is fastest for these tiny GRUs on a shared machine)
    progress: bool = True

    def alg_list(self):
        from .mixers import ALGORITHMS

        algs = [a.strip() for a in self.algs.split(",") if a.strip()]
        bad = [a for a in algs if a not in ALGORITHMS]
        if bad or not algs:
            raise ValueError(f"unknown algorithm(s) {bad}; choose from {sorted(ALGORITHMS)}")
        return algs

    def matrix_explorations(self):
        return [e.strip() for e in self.matrix_exploration.split(",") if e.strip()]

    def seed_list(self):
        return [int(s) for s in self.seeds.split(",") if s.strip()]

    def per_alg(self, field: str, alg: str, default):
        spec = getattr(self, field)
        table = dict(kv.split("=") for kv in spec.split(",") if kv.strip()) if spec else {}
        return type(default)(table.get(alg, default))

    def validate(self):
        self.alg_list()
        for p in self.phases.split(","):
            if p not in ("matrix", "micro"):
                raise ValueError(f"unknown phase {p!r}: use matrix and/or micro")
        if self.env not in ("smax", "smac"):
            raise ValueError(f"env must be smax or smac, got {self.env!r}")
        for name in ("t_max", "n_envs", "batch_size", "buffer_size", "test_episodes", "matrix_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.n_greedy_quantiles < 0:
            raise ValueError("n_greedy_quantiles must be >= 0 (0: the target samples pick the target action)")
        if self.agent not in ("auto", "rnn", "iqn"):
            raise ValueError(f"agent must be auto, rnn or iqn, got {self.agent!r}")
        if str(self.reward_scale) != "smac":
            try:
                scale = float(self.reward_scale)
            except ValueError:
                raise ValueError(f"reward_scale must be smac or a number > 0, got {self.reward_scale!r}") from None
            if not scale > 0:
                raise ValueError("reward_scale must be > 0")
        if self.optimizer not in ("auto", "adam", "rmsprop"):
            raise ValueError(f"optimizer must be auto, adam or rmsprop, got {self.optimizer!r}")
        if self.batch_size > self.buffer_size:
            raise ValueError("batch_size must not exceed buffer_size")
        if not 0 <= self.epsilon_finish <= self.epsilon_start <= 1:
            raise ValueError("need 0 <= epsilon_finish <= epsilon_start <= 1")
        for e in self.matrix_explorations():
            if e not in ("uniform", "annealed"):
                raise ValueError(f"unknown matrix_exploration {e!r}: use uniform and/or annealed")
        if not 0 <= self.matrix_epsilon_finish <= 1 or not 0 < self.matrix_epsilon_anneal_frac <= 1:
            raise ValueError("need 0 <= matrix_epsilon_finish <= 1 and 0 < matrix_epsilon_anneal_frac <= 1")
        return self


def named_config(name: str) -> dict:
    path = CONFIG_DIR / f"{name}.json"
    if not path.exists():
        names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise SystemExit(f"unknown config {name!r}; available: {', '.join(names)}")
    values = json.loads(path.read_text())
    known = {f.name for f in fields(Config)}
    unknown = set(values) - known
    if unknown:
        raise SystemExit(f"config {name}: unknown fields {sorted(unknown)}")
    return values


def parse_args(argv=None) -> Config:
    p = argparse.ArgumentParser(description="DFAC: distributional value-function factorization (DDN / DMIX / DPLEX) "
                                "vs VDN / QMIX / QPLEX on the two-step matrix game and SMAX/SMAC.")
    for f in fields(Config):
        if f.type in (bool, "bool"):
            p.add_argument(f"--{f.name}", type=lambda s: s.lower() in ("1", "true", "yes"), default=None, help=f"(bool, default {f.default})")
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type, f.type) if isinstance(f.type, str) else f.type
            p.add_argument(f"--{f.name}", type=typ, default=None, help=f"(default {f.default!r})")
    args = p.parse_args(argv)
    name = args.config or "quick"
    values = {**named_config(name), "config": name}
    values.update({k: v for k, v in vars(args).items() if v is not None})
    return Config(**values).validate()


def to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2)
