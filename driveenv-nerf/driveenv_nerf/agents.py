"""Driving agents from pixels: a path-following expert, DAgger and PPO.

- `PurePursuitExpert` (privileged: knows the state): pure pursuit (Coulter 1992) towards a
  reference path that is the centreline shifted sideways around each road obstacle,
  delta = atan(2 L sin(alpha) / l_d).
- `PixelPolicy`: a small CNN on the camera image; actor (tanh mean, learnt log-std) and critic.
- `dagger`: DAgger (Ross, Gordon & Bagnell 2011): roll out pi_i = beta_i pi* + (1 - beta_i) pi_hat,
  label every visited state with the expert, aggregate, refit (beta_0 = 1, then 0).
- `ppo`: PPO-clip (Schulman et al. 2017, eq. 7) with GAE (Schulman et al. 2016, eq. 16) from pixels.

Every agent draws from its own generators, seeded by `agent_seed(seed, offset, draw)`: its initial weights
(`make_policy`), DAgger's minibatch order and PPO's action noise and minibatches never touch the global
torch / numpy random state, so an agent does not depend on what an earlier stage (the NeRF) drew.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .course import Course
from .envs import BatchDrive


class PurePursuitExpert:
    def __init__(self, course: Course, wheelbase: float, max_steer: float, lookahead: float = 0.8, swerve: float = 0.45):
        self.course, self.L, self.max_steer, self.ld, self.swerve = course, wheelbase, max_steer, lookahead, swerve

    def reference_offset(self, s):
        """Lateral offset of the reference path: full swerve within 0.8 m of an obstacle, ramps over 0.8 m."""
        d = np.zeros_like(s)
        for so, do in self.course.obstacles_sd:
            d += -np.sign(do) * self.swerve * np.clip((1.6 - np.abs(s - so)) / 0.8, 0, 1)
        return d

    def __call__(self, states) -> np.ndarray:
        st = np.atleast_2d(states)
        s, _ = self.course.frenet(st[:, 0], st[:, 1])
        s_t = s + self.ld
        target = self.course.world_from_frenet(s_t, self.reference_offset(s_t))
        dx, dy = target[:, 0] - st[:, 0], target[:, 1] - st[:, 1]
        alpha = np.arctan2(dy, dx) - st[:, 2]
        ld = np.hypot(dx, dy)
        delta = np.arctan2(2 * self.L * np.sin(alpha), ld)
        return np.clip(delta / self.max_steer, -1, 1)


def agent_seed(seed: int, offset: int, draw: int = 0) -> int:
    """The seed of one agent / stage: a hash of (run seed, fixed per-agent offset, agent seed `draw`).

    `draw` (train.py --agent-seeds) gives independent draws of the whole agent stage on one NeRF; draw 0 hashes
    (seed, offset) alone, so it is the draw of every run made before that option."""
    if draw < 0:
        raise ValueError(f"agent seed must be >= 0, got {draw}")
    return int(np.random.SeedSequence([seed, offset] + ([draw] if draw else [])).generate_state(1)[0])


class PixelPolicy(nn.Module):
    def __init__(self, obs_hw=(24, 32), hidden: int = 64):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n = self.trunk(torch.zeros(1, 3, *obs_hw)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, hidden), nn.ReLU())
        self.actor = nn.Linear(hidden, 1)
        self.critic = nn.Linear(hidden, 1)
        self.log_std = nn.Parameter(torch.full((1,), -0.7))

    @staticmethod
    def preprocess(obs) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(obs))
        return x.permute(0, 3, 1, 2).float() / 255.0

    def features(self, obs):
        return self.fc(self.trunk(self.preprocess(obs)))

    def forward(self, obs):
        """Mean steering in [-1, 1]."""
        return torch.tanh(self.actor(self.features(obs)))[:, 0]

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        return self(obs).numpy()


def make_policy(obs_hw, seed: int, hidden: int = 64) -> "PixelPolicy":
    """A PixelPolicy whose initial weights depend on `seed` only (the global torch RNG is neither read nor advanced)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PixelPolicy(obs_hw, hidden)


# ----------------------------------------------------------------------------- DAgger
@dataclass
class DAggerConfig:
    iterations: int = 4
    n_envs: int = 16
    steps_per_iter: int = 40
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3


def fit_regression(policy: PixelPolicy, obs, act, epochs, batch_size, lr, gen):
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    X, Y = torch.as_tensor(obs), torch.as_tensor(act, dtype=torch.float32)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch_size):
            j = perm[i:i + batch_size]
            loss = F.mse_loss(policy(X[j]), Y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return float(np.mean(losses[-max(1, len(losses) // epochs):]))


def dagger(env: BatchDrive, expert: PurePursuitExpert, policy: PixelPolicy, cfg: DAggerConfig, seed: int = 0,
           on_iteration=None, start_iter: int = 0, data=None, desc="dagger"):
    """DAgger; returns the aggregated data set. on_iteration(i, policy, data, log) saves checkpoints."""
    gen = torch.Generator().manual_seed(seed)
    obs_buf, act_buf = ([], []) if data is None else (list(data[0]), list(data[1]))
    obs = env.reset()  # episodes run on across iterations, so later iterations reach the end of the course
    for it in tqdm(range(start_iter, cfg.iterations), desc=desc, leave=False):
        beta = 1.0 if it == 0 else 0.0
        for _ in range(cfg.steps_per_iter):
            a_exp = expert(env.states)
            obs_buf.append(obs)
            act_buf.append(a_exp.astype(np.float32))
            a = a_exp if beta == 1.0 else policy.act(obs)
            obs, _, term, trunc, _ = env.step(a)
            done = np.flatnonzero(term | trunc)
            if len(done):
                obs = env.reset(done)
        X, Y = np.concatenate(obs_buf), np.concatenate(act_buf)
        loss = fit_regression(policy, X, Y, cfg.epochs, cfg.batch_size, cfg.lr, gen)
        if on_iteration is not None:
            on_iteration(it, policy, (X, Y), {"iteration": it, "beta": beta, "dataset": len(X), "mse": loss})
    return np.concatenate(obs_buf), np.concatenate(act_buf)


# ----------------------------------------------------------------------------- PPO
@dataclass
class PPOConfig:
    updates: int = 30
    n_envs: int = 16
    n_steps: int = 32
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    epochs: int = 4
    minibatches: int = 4
    lr: float = 3e-4
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5


def gaussian_logp(mean, log_std, a):
    return (-0.5 * ((a - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def ppo(env: BatchDrive, policy: PixelPolicy, cfg: PPOConfig, seed: int = 0, on_update=None, start_update: int = 0, opt_state=None):
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=1e-5)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    obs = env.reset()
    ep_ret, ep_returns, ep_success = np.zeros(env.n), [], []
    T, N = cfg.n_steps, env.n
    for upd in tqdm(range(start_update, cfg.updates), desc="ppo", leave=False):
        O, A, LP, R, D, V = [], [], [], [], [], []
        gen = torch.Generator().manual_seed(agent_seed(seed, upd))  # this update's action noise (own generator)
        for _ in range(T):
            with torch.no_grad():
                f = policy.features(obs)
                mean, v = torch.tanh(policy.actor(f)), policy.critic(f)[:, 0]
                a = mean + policy.log_std.exp() * torch.randn(mean.shape, generator=gen)
                lp = gaussian_logp(mean, policy.log_std, a)
            nobs, r, term, trunc, info = env.step(a[:, 0].numpy())
            O.append(obs), A.append(a), LP.append(lp), R.append(torch.as_tensor(r, dtype=torch.float32)), V.append(v)
            D.append(torch.as_tensor(term, dtype=torch.float32))
            ep_ret += r
            done = np.flatnonzero(term | trunc)
            for i in done:
                ep_returns.append(ep_ret[i]), ep_success.append(bool(info["success"][i]))
                ep_ret[i] = 0
            if len(done):
                nobs = env.reset(done)
            # truncation is treated as termination here (a small bias; episodes rarely time out)
            D[-1] = torch.as_tensor(term | trunc, dtype=torch.float32)
            obs = nobs
        with torch.no_grad():
            next_v = policy.critic(policy.features(obs))[:, 0]
        # GAE: A_t = sum_l (gamma lambda)^l delta_{t+l}, delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t)
        adv = torch.zeros(T, N)
        last = torch.zeros(N)
        for t in reversed(range(T)):
            nv = next_v if t == T - 1 else V[t + 1]
            delta = R[t] + cfg.gamma * nv * (1 - D[t]) - V[t]
            last = delta + cfg.gamma * cfg.gae_lambda * (1 - D[t]) * last
            adv[t] = last
        ret = adv + torch.stack(V)
        bO = np.concatenate(O)
        bA, bLP, bAdv, bRet = torch.cat(A), torch.cat(LP), adv.reshape(-1), ret.reshape(-1)
        idx = np.arange(T * N)
        mb = T * N // cfg.minibatches
        for _ in range(cfg.epochs):
            np.random.default_rng(agent_seed(seed, upd)).shuffle(idx)
            for k in range(0, T * N, mb):
                j = idx[k:k + mb]
                f = policy.features(bO[j])
                mean, v = torch.tanh(policy.actor(f)), policy.critic(f)[:, 0]
                lp = gaussian_logp(mean, policy.log_std, bA[j])
                ratio = (lp - bLP[j]).exp()
                a_n = (bAdv[j] - bAdv[j].mean()) / (bAdv[j].std() + 1e-8)
                pg = -torch.min(ratio * a_n, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a_n).mean()  # eq. 7
                vl = F.mse_loss(v, bRet[j])
                ent = (policy.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum()
                loss = pg + cfg.vf_coef * vl - cfg.ent_coef * ent
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                opt.step()
        log = {"update": upd, "mean_return": float(np.mean(ep_returns[-32:])) if ep_returns else float("nan"),
               "success_rate": float(np.mean(ep_success[-32:])) if ep_success else float("nan"), "value_loss": vl.item()}
        if on_update is not None:
            on_update(upd, policy, opt, log)
    return policy


# ----------------------------------------------------------------------------- evaluation
def evaluate(env: BatchDrive, act_fn, n_episodes: int, seed: int = 123, record: bool = False):
    """Run n_episodes in parallel from seeded starts (identical across worlds). Success etc. rates."""
    env.n = n_episodes
    env.states, env.s, env.t = np.zeros((n_episodes, 3)), np.zeros(n_episodes), np.zeros(n_episodes, dtype=int)
    env.rng = np.random.default_rng(seed)
    starts = env.sample_starts(n_episodes)
    env.rng = np.random.default_rng(seed + 1)
    obs = env.reset(states=starts)
    active = np.ones(n_episodes, dtype=bool)
    outcome = np.full(n_episodes, "timeout", dtype=object)
    traj = [env.states.copy()]
    progress = np.zeros(n_episodes)
    for _ in range(env.cfg.max_steps):
        a = act_fn(obs, env.states) if callable(act_fn) else act_fn
        prev = env.states.copy()
        obs, _, term, trunc, info = env.step(np.where(active, a, 0.0), active)
        env.states[~active] = prev[~active]  # finished vehicles stay put
        for key in ("collision", "offroad", "success"):
            outcome[active & info[key]] = key
        progress[active] = np.clip(info["s"][active] / env.goal_s, 0, 1)
        active &= ~(term | trunc)
        traj.append(env.states.copy())
        if not active.any():
            break
    res = {"success": float(np.mean(outcome == "success")), "collision": float(np.mean(outcome == "collision")),
           "offroad": float(np.mean(outcome == "offroad")), "progress": float(progress.mean())}
    if record:
        res["trajectories"] = np.stack(traj, 1)
        res["outcome"] = outcome
    return res
