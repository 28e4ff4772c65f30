"""One imitation run (method x seed) from one demonstration, in the paper's update order.

TDIL, each environment step after warm-up (official code, paper Alg. 1):
  (1) update the transition discriminator D on an agent batch, Polyak-update D_target;
  (2) rewards r = sum_j D_target(s', s'_E,j) for the agent batch and the expert batch;
  (3) actor update (agent batch);  (4) critic update (agent batch);
  (5) second critic update on the expert batch with the expert's actions;
  (6) BC step MSE(tanh mu(s_E), a_E);  (7) Polyak update of the target critics.
Done flags are zeroed for every imitation method (no survival bias); the env reward is never used
except by `sac_env` (the expert trainer / upper reference).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .baselines import AIRLDiscriminator, GAILDiscriminator, PWILReward, behaviour_cloning
from .buffer import ReplayBuffer
from .config import Config
from .demonstrations import Demonstration
from .envs import dims, from_env_action, make_env, to_env_action
from .iq_learn import IQConfig, IQLearn
from .networks import Actor, polyak
from .sac import SAC, SACConfig
from .transition_discriminator import TransitionDiscriminator, discriminator_loss, expert_proximity_reward

RL_METHODS = ("tdil", "tdil_irl", "gail", "airl", "pwil", "iq", "sac_env")
METHODS = RL_METHODS + ("bc",)


@dataclass
class RunResult:
    method: str
    seed: int
    steps: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)


def evaluate(actor: Actor, env, episodes: int, seed_base: int = 10_000, device: str = "cpu") -> float:
    """Mean return of the deterministic policy tanh(mu(s)) over fixed initial states (same for all methods)."""
    total = 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed_base + i)
        done = False
        while not done:
            with torch.no_grad():
                a = actor.deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0].cpu().numpy()
            obs, r, term, trunc, _ = env.step(to_env_action(env, a))
            total += float(r)
            done = term or trunc
    return total / episodes


def sac_config(cfg: Config) -> SACConfig:
    return SACConfig(hidden=cfg.hidden, layers=cfg.layers, lr=cfg.lr, actor_lr=cfg.actor_lr, critic_lr=cfg.critic_lr,
                     alpha_lr=cfg.alpha_lr, gamma=cfg.gamma, tau=cfg.tau, fixed_log_alpha=cfg.fixed_log_alpha)


def iq_config(cfg: Config) -> IQConfig:
    return IQConfig(hidden=cfg.hidden, layers=cfg.layers, critic_lr=cfg.lr, actor_lr=cfg.iq_actor_lr, gamma=cfg.gamma,
                    tau=cfg.iq_tau, log_alpha=cfg.iq_log_alpha, chi2_alpha=cfg.iq_chi2_alpha, value_loss=cfg.iq_value_loss,
                    regularize=cfg.iq_regularize, use_target=cfg.iq_use_target,
                    official_networks=cfg.iq_official_networks)


def run_bc(cfg: Config, demo: Demonstration, seed: int, progress: Callable | None = None) -> tuple[RunResult, Actor]:
    torch.manual_seed(seed)
    env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    obs_dim, act_dim = dims(env)
    actor = Actor(obs_dim, act_dim, cfg.hidden, cfg.layers)
    res = RunResult("bc", seed)
    e_obs = torch.as_tensor(demo.obs, dtype=torch.float32)
    e_act = torch.as_tensor(from_env_action(env, demo.actions))
    every = max(1, cfg.bc_steps // 5)

    def cb(step):
        if progress:
            progress(1)
        if step % every == 0 or step == cfg.bc_steps:
            res.steps.append(step)
            res.returns.append(evaluate(actor, env, cfg.eval_episodes))

    behaviour_cloning(actor, e_obs, e_act, cfg.bc_steps, cfg.lr, cfg.batch_size, seed, cb)
    return res, actor


class Imitator:
    """State of one RL-based run; `train` advances it and can checkpoint / resume."""

    def __init__(self, method: str, cfg: Config, demo: Demonstration | None, seed: int):
        if method not in RL_METHODS:
            raise ValueError(f"unknown RL method {method!r}; expected one of {RL_METHODS}")
        if method != "sac_env" and demo is None:
            raise ValueError(f"{method} needs a demonstration")
        self.method, self.cfg, self.seed = method, cfg, seed
        self.dev = torch.device(cfg.device)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
        self.eval_env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
        self.obs_dim, self.act_dim = dims(self.env)
        if method == "iq":  # IQ-Learn: one soft Q-function, its own actor settings (tdil/iq_learn.py)
            self.agent = IQLearn(self.obs_dim, self.act_dim, iq_config(cfg)).to(self.dev)
        else:
            self.agent = SAC(self.obs_dim, self.act_dim, sac_config(cfg))
            for m in (self.agent.actor, self.agent.critic, self.agent.critic_target):
                m.to(self.dev)
            self.agent.log_alpha = self.agent.log_alpha.detach().to(self.dev).requires_grad_(True)
            self.agent.alpha_opt = torch.optim.Adam([self.agent.log_alpha], lr=self.agent.cfg.lrs()[2], foreach=True)
        self.buf = ReplayBuffer(self.obs_dim, self.act_dim, min(cfg.buffer_size, cfg.steps))
        self.t = 0
        self.result = RunResult(method, seed)
        self.uses_tdil = method in ("tdil", "tdil_irl")
        self.uses_gail = method in ("gail", "tdil_irl")
        if demo is not None:
            t = lambda x: torch.as_tensor(np.asarray(x, np.float32), device=self.dev)  # noqa: E731
            self.e_obs, self.e_next = t(demo.obs), t(demo.next_obs)
            self.e_act = t(from_env_action(self.env, demo.actions))
            self.e_done = torch.zeros(len(demo), device=self.dev)  # done flags zeroed (paper)
        if self.uses_tdil:
            self.disc = TransitionDiscriminator(self.obs_dim, cfg.disc_hidden, cfg.disc_layers).to(self.dev)
            self.disc_target = copy.deepcopy(self.disc).requires_grad_(False)
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, foreach=True)
            # expert next states the reward sums over (all, or a fixed random subset scaled by N/M)
            n = len(self.e_next)
            if 0 < cfg.expert_subsample < n:
                keep = torch.as_tensor(self.rng.choice(n, cfg.expert_subsample, replace=False), device=self.dev)
                self.reward_states, self.reward_scale = self.e_next[keep], n / cfg.expert_subsample
            else:
                self.reward_states, self.reward_scale = self.e_next, 1.0
            self.e_reward = self.tdil_reward(self.e_next)
        if self.uses_gail:
            self.gail = GAILDiscriminator(self.obs_dim, self.act_dim, cfg.disc_hidden, cfg.disc_layers).to(self.dev)
            self.gail_opt = torch.optim.Adam(self.gail.parameters(), lr=cfg.disc_lr, foreach=True)
        if method == "airl":
            self.airl = AIRLDiscriminator(self.obs_dim, cfg.gamma, cfg.disc_hidden, cfg.disc_layers).to(self.dev)
            self.airl_opt = torch.optim.Adam(self.airl.parameters(), lr=cfg.disc_lr, foreach=True)
        if method == "pwil":
            horizon = self.env.spec.max_episode_steps or len(demo)
            self.pwil = PWILReward(demo.obs, from_env_action(self.env, demo.actions), horizon, cfg.pwil_alpha, cfg.pwil_beta)
        self.obs, _ = self.env.reset(seed=seed)

    # -- rewards -----------------------------------------------------------------------------
    def tdil_reward(self, next_states: torch.Tensor) -> torch.Tensor:
        """r(s') = sum_j D_target(s', s'_E,j)  (TDIL expert-proximity reward)."""
        return self.reward_scale * expert_proximity_reward(self.disc_target, next_states, self.reward_states)

    def refresh_rewards(self) -> None:
        """Cache mode: recompute every stored transition's TDIL reward with the current D_target."""
        n = self.buf.size
        ns = torch.as_tensor(self.buf.next_obs[:n], device=self.dev)
        self.buf.reward[:n] = self.tdil_reward(ns).cpu().numpy()
        self.e_reward = self.tdil_reward(self.e_next)

    # -- one environment step + the updates --------------------------------------------------
    def step(self) -> dict:
        cfg = self.cfg
        self.t += 1
        if self.t <= cfg.warmup_steps:
            a = self.rng.uniform(-1, 1, self.act_dim).astype(np.float32)
        else:
            a = self._act()
        next_obs, r, term, trunc, _ = self.env.step(to_env_action(self.env, a))
        reward, done = 0.0, 0.0
        if self.method == "sac_env":
            reward, done = float(r), float(term)
        elif self.method == "pwil":
            reward = self.pwil(self.obs, a)
        elif self.uses_tdil and cfg.reward_refresh_every > 0:
            reward = float(self.tdil_reward(torch.as_tensor(next_obs, dtype=torch.float32, device=self.dev)[None])[0])
        self.buf.add(self.obs, a, next_obs, done, reward)
        self.obs = next_obs
        if term or trunc:
            self.obs, _ = self.env.reset()
            if self.method == "pwil":
                self.pwil.reset()
        logs: dict = {}
        if self.t > cfg.warmup_steps and self.buf.size >= cfg.batch_size:
            logs = self.update()
        return logs

    def _act(self) -> np.ndarray:
        with torch.no_grad():
            o = torch.as_tensor(self.obs, dtype=torch.float32, device=self.dev)[None]
            return self.agent.actor.sample(o)[0][0].cpu().numpy().astype(np.float32)

    def update(self) -> dict:
        cfg, ag, dev = self.cfg, self.agent, self.dev
        idx = self.buf.sample_idx(cfg.batch_size, self.rng)
        b = {k: v.to(dev) for k, v in self.buf.batch(idx).items()}
        logs: dict = {}
        r = b["reward"]
        if self.uses_tdil:
            # (1) transition discriminator on valid / non-valid pairs from the agent batch
            loss = discriminator_loss(self.disc, b["obs"], b["next_obs"])
            self.disc_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.disc_opt.step()
            polyak(self.disc_target, self.disc, cfg.disc_tau)
            logs["disc_loss"] = loss.item()
            # (2) expert-proximity rewards for agent and expert batches
            if cfg.reward_refresh_every > 0:
                if self.t % cfg.reward_refresh_every == 0:
                    self.refresh_rewards()
                    r = torch.as_tensor(self.buf.reward[idx], device=dev)
            else:
                r = self.tdil_reward(b["next_obs"])
                self.e_reward = None
            logs["tdil_reward"] = r.mean().item()
        eidx = torch.as_tensor(self.rng.integers(0, len(self.e_obs), cfg.batch_size), device=dev) if self.method != "sac_env" else None
        if self.method == "iq":  # IQ-Learn: critic on replay + expert batches, actor, target (no reward needed)
            expert = (self.e_obs[eidx], self.e_act[eidx], self.e_next[eidx], self.e_done[eidx])
            return ag.update((b["obs"], b["act"], b["next_obs"], b["done"]), expert)
        if self.uses_gail:
            gp = cfg.gail_grad_penalty if self.method == "gail" else cfg.irl_grad_penalty
            loss = self.gail.loss(self.e_obs[eidx], self.e_act[eidx], b["obs"], b["act"], gp)
            self.gail_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.gail_opt.step()
            logs["gail_loss"] = loss.item()
            if self.method == "gail":
                r = self.gail.reward(b["obs"], b["act"])
            else:  # TDIL+IRL: r = (1 - w) r_TDIL + w D(s, a)
                r = (1 - cfg.irl_weight) * r + cfg.irl_weight * self.gail.prob(b["obs"], b["act"])
        if self.method == "airl":
            with torch.no_grad():  # log pi(a|s) of the current policy, for expert and agent actions
                e_logp, a_logp = ag.actor.log_prob(self.e_obs[eidx], self.e_act[eidx]), ag.actor.log_prob(b["obs"], b["act"])
            loss = self.airl.loss((self.e_obs[eidx], self.e_next[eidx], self.e_done[eidx], e_logp), (b["obs"], b["next_obs"], b["done"], a_logp))
            self.airl_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.airl_opt.step()
            logs["airl_loss"] = loss.item()
            r = self.airl.reward(b["obs"], b["next_obs"], b["done"])
        if self.uses_tdil:
            e_r = self.e_reward[eidx] if self.e_reward is not None else self.tdil_reward(self.e_next[eidx])
            if self.method == "tdil_irl":
                e_r = (1 - cfg.irl_weight) * e_r + cfg.irl_weight * self.gail.prob(self.e_obs[eidx], self.e_act[eidx])
            if cfg.relative_reward:  # r / mean_E r, expert reward := 1 (official code, use_relative_reward)
                r, e_r = r / (e_r.mean() + 1e-6), torch.ones_like(e_r)
            r, e_r = cfg.reward_scale * r, cfg.reward_scale * e_r
            logs["expert_reward"] = e_r.mean().item()
        # (3) actor, (4) critic on the agent batch
        logs["actor_loss"] = ag.update_actor(b["obs"])
        logs["critic_loss"] = ag.update_critic(b["obs"], b["act"], r, b["next_obs"], b["done"])
        if self.uses_tdil:
            # (5) critic on expert transitions with the expert's actions and their own TDIL reward
            if cfg.expert_critic_update:
                ag.update_critic(self.e_obs[eidx], self.e_act[eidx], e_r, self.e_next[eidx], self.e_done[eidx])
            # (6) BC step on the demonstration (TDIL+BC; the official TDIL+IRL runs without it)
            if cfg.bc_every_step if self.method == "tdil" else cfg.irl_bc:
                logs["bc_loss"] = ag.bc_step(self.e_obs[eidx], self.e_act[eidx])
        # (7) target critics
        ag.soft_update()
        logs["alpha"] = ag.alpha.item()
        return logs

    # -- driver -------------------------------------------------------------------------------
    def train(self, steps: int, progress: Callable | None = None, ckpt_path: Path | None = None, on_log: Callable | None = None,
              deadline: float | None = None) -> RunResult:
        """Advance to `steps` environment steps. `deadline` (a time.time() value): stop early once it has
        passed, saving a checkpoint to `ckpt_path` first (the caller sees self.t < steps and can resume)."""
        while self.t < steps:
            if deadline is not None and time.time() >= deadline:
                if ckpt_path is not None:
                    self.save(ckpt_path)
                break
            logs = self.step()
            if progress:
                progress(1)
            if self.t % self.cfg.eval_every == 0 or self.t == self.cfg.steps:
                ret = evaluate(self.agent.actor, self.eval_env, self.cfg.eval_episodes, device=str(self.dev))
                self.result.steps.append(self.t)
                self.result.returns.append(ret)
                self.result.logs.append(logs)
                if on_log:
                    on_log(self, ret, logs)
            if ckpt_path is not None and self.cfg.checkpoint_every > 0 and self.t % self.cfg.checkpoint_every == 0 and self.t < steps:
                self.save(ckpt_path)
        return self.result

    def modules(self) -> dict:
        mods = {"agent": self.agent}
        if self.uses_tdil:
            mods |= {"disc": self.disc, "disc_target": self.disc_target, "disc_opt": self.disc_opt}
        if self.uses_gail:
            mods |= {"gail": self.gail, "gail_opt": self.gail_opt}
        if self.method == "airl":
            mods |= {"airl": self.airl, "airl_opt": self.airl_opt}
        return mods

    def save(self, path: Path) -> None:
        state = {k: m.state_dict() for k, m in self.modules().items()}
        state |= {
            "t": self.t,
            "buffer": self.buf.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "result": self.result.__dict__,
            "e_reward": self.e_reward if self.uses_tdil else None,
        }
        tmp = Path(str(path) + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=False)
        for k, m in self.modules().items():
            m.load_state_dict(state[k])
        self.t = state["t"]
        self.buf.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.result = RunResult(**state["result"])
        if self.uses_tdil:
            self.e_reward = state["e_reward"]
        # the simulator's state is not saved: a resumed run starts a fresh episode
        self.obs, _ = self.env.reset(seed=self.seed + 7919 * self.t)
        if self.method == "pwil":
            self.pwil.reset()
