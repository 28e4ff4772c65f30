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

    def _stored_steps(self) -> np.ndarray:
        """[size, T] bool: each stored episode's steps plus its final observation; the rest is zero padding."""
        T = self.data["filled"].shape[1]
        lengths = self.data["filled"][: self.size].sum(1).astype(np.int64) + 1
        return np.arange(T)[None] < np.minimum(lengths, T)[:, None]

    def state_dict(self) -> dict:
        """The stored episodes without their zero padding (flattened over (episode, step)), and the write
        position, for checkpoints; load_state_dict rebuilds the padded buffer exactly."""
        steps = self._stored_steps()
        return {"size": self.size, "pos": self.pos, "capacity": self.capacity,
                "filled_len": self.data["filled"][: self.size].sum(1),
                **{k: v[: self.size][steps] for k, v in self.data.items()}}

    def load_state_dict(self, sd: dict):
        if int(sd["capacity"]) != self.capacity or any(sd[k].shape[1:] != v.shape[2:] for k, v in self.data.items()):
            raise ValueError("replay buffer checkpoint does not match this buffer's capacity or shapes")
        self.size, self.pos = int(sd["size"]), int(sd["pos"])
        for v in self.data.values():
            v[:] = 0
        T = self.data["filled"].shape[1]
        lengths = np.asarray(sd["filled_len"]).astype(np.int64)
        self.data["filled"][: self.size] = np.arange(T)[None] < lengths[:, None]  # filled is 1 on the first len steps
        steps = self._stored_steps()
        for k, v in self.data.items():
            block = v[: self.size]
            block[steps] = sd[k]
