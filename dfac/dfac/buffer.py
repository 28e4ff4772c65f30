"""Replay buffer of whole episodes (PyMARL's EpisodeBatch / ReplayBuffer), padded to episode_limit + 1."""
import numpy as np
import torch


class EpisodeBuffer:
    def __init__(self, capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int):
        T = episode_limit + 1
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.data = {
            "obs": np.zeros((capacity, T, n_agents, obs_dim), np.float32),
            "state": np.zeros((capacity, T, state_dim), np.float32),
            "avail": np.zeros((capacity, T, n_agents, n_actions), np.float32),
            "actions": np.zeros((capacity, T, n_agents), np.int64),
            "reward": np.zeros((capacity, T), np.float32),
            "terminated": np.zeros((capacity, T), np.float32),
            "filled": np.zeros((capacity, T), np.float32),
        }

    def insert(self, episodes: dict):
        n = len(episodes["reward"])
        idx = (self.pos + np.arange(n)) % self.capacity
        for k, v in self.data.items():
            v[idx] = episodes[k]
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def can_sample(self, batch_size: int) -> bool:
        return self.size >= batch_size

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict:
        idx = rng.choice(self.size, batch_size, replace=False)
        T = int(self.data["filled"][idx].sum(1).max()) + 1  # longest episode + its final observation
        return {k: torch.as_tensor(v[idx, :T]) for k, v in self.data.items()}
