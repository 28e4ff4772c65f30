"""One training job (one algorithm, one seed, one environment): PyMARL's run loop, written out.

collect n_envs episodes (epsilon-greedy) -> store -> `updates_per_run` learner steps on sampled episodes
-> hard target copy every `target_update_interval` episodes -> greedy evaluation every `test_interval` steps.
"""
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .buffer import EpisodeBuffer
from .controller import Controller, make_agent
from .learner import Learner
from .mixers import ALGORITHMS, build_mixer
from .runner import run_episodes


@dataclass
class JobSettings:
    t_max: int
    batch_size: int = 32
    buffer_size: int = 5000
    lr: float = 5e-4
    gamma: float = 0.99
    grad_clip: float = 10.0
    target_update_interval: int = 200
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 50_000
    rnn_hidden: int = 64
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64
    n_quantiles: int = 8
    n_act_quantiles: int = 32
    n_greedy_quantiles: int = 0  # K: fractions whose mean picks the target's greedy action (0: the N' target samples)
    kappa: float = 1.0
    qplex_attention: bool = True  # QPLEX / DPLEX: Qatten-weighted transformation (official dmaq_qatten / DPLEX)
    attend_reg_coef: float = 1e-3
    n_head: int = 4
    optimizer: str = "auto"  # auto: Adam for the DFAC variants, RMSProp for the expected-value ones (official yaml)
    double_q: bool = True  # expected-value learners: target action = argmax of the online network (PyMARL / QPLEX)
    dfac_double_q: bool = False  # DFAC learners: the same from the online network's mean (official iqn_learner option, off)
    agent: str = "auto"  # auto: IQN-RNN for the DFAC learners, RNN otherwise; rnn | iqn swap it (ablation)
    reward_scale: float = 1.0  # r is multiplied by this in the learner's targets (train.py resolves --reward_scale to it)
    qmix_state_value: bool = True  # QMIX / DMIX head's V(s) term (false: dropped, ablation)
    device: str = "cpu"
    updates_per_run: int = 1
    test_interval: int = 10_000
    test_episodes: int = 32
    save_interval: int = 0
    save_buffer: bool = True  # checkpoint the replay buffer too (<job>.buffer.npz), so a resume continues identically
    timing: dict = field(default_factory=dict)


def epsilon_at(t: int, s: JobSettings) -> float:
    """Linear decay from epsilon_start to epsilon_finish over epsilon_anneal_time steps."""
    frac = min(1.0, t / max(1, s.epsilon_anneal_time))
    return s.epsilon_start + frac * (s.epsilon_finish - s.epsilon_start)


def build(alg: str, env, s: JobSettings):
    distributional = ALGORITHMS[alg][0]
    agent = make_agent(distributional, env.obs_dim, env.n_actions, env.n_agents, s.rnn_hidden, s.agent)
    mixer = build_mixer(alg, env.n_agents, env.state_dim, env.n_actions, s.mixing_embed_dim, s.hypernet_embed,
                        qplex_attention=s.qplex_attention, unit_dim=env.unit_dim, n_head=s.n_head, attend_reg_coef=s.attend_reg_coef,
                        qmix_state_value=s.qmix_state_value)
    agent.to(s.device)
    if mixer is not None:
        mixer.to(s.device)
    learner = Learner(alg, agent, mixer, env.n_actions, gamma=s.gamma, lr=s.lr, grad_clip=s.grad_clip,
                      n_quantiles=s.n_quantiles, n_target_quantiles=s.n_quantiles, kappa=s.kappa,
                      double_q=s.double_q, dfac_double_q=s.dfac_double_q, optimizer=s.optimizer, n_greedy_quantiles=s.n_greedy_quantiles,
                      reward_scale=s.reward_scale)
    controller = Controller(agent, env.n_agents, env.n_actions, s.n_act_quantiles)
    return learner, controller


def evaluate(env, controller, n_episodes: int, rng) -> dict:
    """Greedy (epsilon = 0) episodes: win rate and mean return, as PyMARL's test runs."""
    rets, wins = [], []
    while len(rets) < n_episodes:
        _, st = run_episodes(env, controller, 0.0, rng)
        rets.extend(st["return"].tolist())
        wins.extend(st["won"].tolist())
    return {"test_return": float(np.mean(rets[:n_episodes])), "test_win_rate": float(np.mean(wins[:n_episodes]))}


def train_job(alg: str, seed: int, env, s: JobSettings, log=None, ckpt_path: Path | None = None,
              resume: bool = False, progress: bool = True, desc: str = "") -> tuple:
    """Trains one job; returns (learner, controller, history rows). `log(row)` receives every row."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    learner, controller = build(alg, env, s)
    buffer = EpisodeBuffer(s.buffer_size, env.episode_limit, env.n_agents, env.obs_dim, env.state_dim, env.n_actions)
    t_env, episodes, last_target, next_test, next_save, history = 0, 0, 0, 0, s.save_interval, []
    last_info = {}
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False, map_location=s.device)
        learner.load_state_dict(ck["learner"])
        t_env, episodes, last_target, next_test, history = ck["t_env"], ck["episodes"], ck["last_target"], ck["next_test"], ck["history"]
        next_save, last_info = ck.get("next_save", t_env + s.save_interval), ck.get("last_info", {})
        restore_rng(ck.get("rng"), rng, env)
        buf_path = buffer_path(ckpt_path)
        if buf_path.exists():
            with np.load(buf_path) as f:
                buffer.load_state_dict({k: f[k] for k in f.files})
        elif episodes > 0:
            warnings.warn(f"{buf_path} not found: the replay buffer starts empty and refills from new episodes")
    t_run = t_learn = 0.0
    bar = tqdm(total=s.t_max, initial=min(t_env, s.t_max), desc=desc or alg, disable=not progress, leave=False, unit="step")
    while True:
        if t_env >= next_test or t_env >= s.t_max:
            row = {"alg": alg, "seed": seed, "t_env": t_env, "episodes": episodes, "epsilon": epsilon_at(t_env, s),
                   **evaluate(env, controller, s.test_episodes, rng), **last_info}
            history.append(row)
            if log is not None:
                log(row)
            bar.set_postfix(win=f"{row['test_win_rate']:.2f}", ret=f"{row['test_return']:.2f}")
            next_test += s.test_interval
        if t_env >= s.t_max:
            break
        t0 = time.perf_counter()
        ep, st = run_episodes(env, controller, epsilon_at(t_env, s), rng)
        t1 = time.perf_counter()
        buffer.insert(ep)
        steps = int(st["length"].sum())
        t_env += steps
        episodes += env.n_envs
        if buffer.can_sample(s.batch_size):
            for _ in range(s.updates_per_run):
                info = learner.train_step(buffer.sample(s.batch_size, rng))
            last_info = {"loss": info["loss"], "grad_norm": info["grad_norm"], "q_taken_mean": info["q_taken_mean"],
                         "train_return": float(st["return"].mean())}
        if episodes - last_target >= s.target_update_interval:
            learner.update_targets()
            last_target = episodes
        t2 = time.perf_counter()
        t_run, t_learn = t_run + t1 - t0, t_learn + t2 - t1
        bar.update(steps)
        if ckpt_path is not None and s.save_interval and t_env >= next_save:
            next_save += s.save_interval
            save_checkpoint(ckpt_path, learner, buffer if s.save_buffer else None, rng, env, dict(
                t_env=t_env, episodes=episodes, last_target=last_target, next_test=next_test, next_save=next_save,
                history=history, last_info=last_info))
    bar.close()
    s.timing.update({"runner_s": t_run, "learner_s": t_learn, "t_env": t_env})
    if ckpt_path is not None:
        save_checkpoint(ckpt_path, learner, buffer if s.save_buffer else None, rng, env, dict(
            t_env=t_env, episodes=episodes, last_target=last_target, next_test=next_test, next_save=next_save,
            history=history, last_info=last_info))
    return learner, controller, history


def buffer_path(ckpt_path: Path) -> Path:
    return ckpt_path.with_name(ckpt_path.stem + ".buffer.npz")


def rng_states(rng: np.random.Generator, env) -> dict:
    """Every random stream a job draws from: numpy (epsilon-greedy, batch sampling), torch (the quantile
    fractions tau), and the environment's own (reward noise, SMAX's key)."""
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(), "env": env.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def restore_rng(states, rng: np.random.Generator, env):
    if states is None:  # a checkpoint without them: a fresh stream
        return
    rng.bit_generator.state = states["numpy"]
    torch.set_rng_state(states["torch"])
    env.set_rng_state(states["env"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, learner, buffer, rng, env, counters: dict):
    """<job>.pt: networks, optimiser, counters, metric history, random states; <job>.buffer.npz: the replay
    buffer (when `buffer` is given). Both written to a temporary file first, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if buffer is not None:
        bpath = buffer_path(path)
        tmp = bpath.with_name(bpath.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in buffer.state_dict().items()})
        tmp.replace(bpath)
    tmp = path.with_suffix(".tmp")
    torch.save({"learner": learner.state_dict(), **counters, "rng": rng_states(rng, env)}, tmp)
    tmp.replace(path)
