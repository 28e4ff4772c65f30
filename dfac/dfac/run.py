"""One training job (one algorithm, one seed, one environment): PyMARL's run loop, written out.

collect n_envs episodes (epsilon-greedy) -> store -> `updates_per_run` learner steps on sampled episodes
-> hard target copy every `target_update_interval` episodes -> greedy evaluation every `test_interval` steps.
"""
import time
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
    kappa: float = 1.0
    device: str = "cpu"
    updates_per_run: int = 1
    test_interval: int = 10_000
    test_episodes: int = 32
    save_interval: int = 0
    timing: dict = field(default_factory=dict)


def epsilon_at(t: int, s: JobSettings) -> float:
    """Linear decay from epsilon_start to epsilon_finish over epsilon_anneal_time steps."""
    frac = min(1.0, t / max(1, s.epsilon_anneal_time))
    return s.epsilon_start + frac * (s.epsilon_finish - s.epsilon_start)


def build(alg: str, env, s: JobSettings):
    distributional = ALGORITHMS[alg][0]
    agent = make_agent(distributional, env.obs_dim, env.n_actions, env.n_agents, s.rnn_hidden)
    mixer = build_mixer(alg, env.n_agents, env.state_dim, env.n_actions, s.mixing_embed_dim, s.hypernet_embed)
    agent.to(s.device)
    if mixer is not None:
        mixer.to(s.device)
    learner = Learner(alg, agent, mixer, env.n_actions, gamma=s.gamma, lr=s.lr, grad_clip=s.grad_clip,
                      n_quantiles=s.n_quantiles, n_target_quantiles=s.n_quantiles, kappa=s.kappa)
    controller = Controller(agent, env.n_agents, env.n_actions, distributional, s.n_act_quantiles)
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
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False, map_location=s.device)
        learner.load_state_dict(ck["learner"])
        t_env, episodes, last_target, next_test, history = ck["t_env"], ck["episodes"], ck["last_target"], ck["next_test"], ck["history"]
        next_save = t_env + s.save_interval
        rng = np.random.default_rng([seed, t_env])  # the replay buffer is not saved: it refills after a resume
    t_run = t_learn = 0.0
    bar = tqdm(total=s.t_max, initial=min(t_env, s.t_max), desc=desc or alg, disable=not progress, leave=False, unit="step")
    last_info = {}
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
            save_checkpoint(ckpt_path, learner, t_env, episodes, last_target, next_test, history)
            next_save += s.save_interval
    bar.close()
    s.timing.update({"runner_s": t_run, "learner_s": t_learn, "t_env": t_env})
    if ckpt_path is not None:
        save_checkpoint(ckpt_path, learner, t_env, episodes, last_target, next_test, history)
    return learner, controller, history


def save_checkpoint(path: Path, learner, t_env, episodes, last_target, next_test, history):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"learner": learner.state_dict(), "t_env": t_env, "episodes": episodes, "last_target": last_target,
                "next_test": next_test, "history": history}, tmp)
    tmp.replace(path)
