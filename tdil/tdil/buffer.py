"""A plain replay buffer (numpy) with a per-transition reward slot that imitation rewards fill."""
from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity, self.size, self.ptr = capacity, 0, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.act = np.zeros((capacity, act_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.reward = np.zeros(capacity, np.float32)

    def add(self, obs, act, next_obs, done: float, reward: float = 0.0) -> int:
        i = self.ptr
        self.obs[i], self.act[i], self.next_obs[i], self.done[i], self.reward[i] = obs, act, next_obs, done, reward
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def sample_idx(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.size, size=batch)

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(getattr(self, k)[idx]) for k in ("obs", "act", "next_obs", "done", "reward")}

    def state_dict(self) -> dict:
        return {k: getattr(self, k)[: self.size].copy() for k in ("obs", "act", "next_obs", "done", "reward")} | {"ptr": self.ptr}

    def load_state_dict(self, d: dict) -> None:
        n = len(d["obs"])
        for k in ("obs", "act", "next_obs", "done", "reward"):
            getattr(self, k)[:n] = d[k]
        self.size, self.ptr = n, d["ptr"]
