"""Expert demonstrations: one episode in a Minari-compatible layout, stored as .npz.

File format (`save_demonstration`, one episode, Minari `EpisodeData` field names):
    observations  float32 (T+1, obs_dim)   s_0 ... s_T (the last one is the final next state)
    actions       float32 (T, act_dim)     in the environment's own units
    rewards       float32 (T,)
    terminations  bool    (T,)
    truncations   bool    (T,)
    env_id        str                      e.g. "Pendulum-v1"
    format        str                      "tdil-demo-v1"
Loaders for Minari datasets (`data/main_data.hdf5`, groups `episode_<i>`) and D4RL HDF5 files
(flat `observations/actions/rewards/terminals/timeouts`) need h5py (extra [full]).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "tdil-demo-v1"


@dataclass
class Demonstration:
    env_id: str
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray

    def __post_init__(self):
        t = len(self.actions)
        if self.observations.ndim != 2 or self.actions.ndim != 2:
            raise ValueError("observations and actions must be 2-D (time, dim)")
        if len(self.observations) != t + 1:
            raise ValueError(f"need T+1 observations for T actions, got {len(self.observations)} and {t}")
        for name in ("rewards", "terminations", "truncations"):
            if len(getattr(self, name)) != t:
                raise ValueError(f"{name} has length {len(getattr(self, name))}, expected {t}")
        if not (np.isfinite(self.observations).all() and np.isfinite(self.actions).all()):
            raise ValueError("demonstration contains NaN or inf")

    @property
    def obs(self) -> np.ndarray:
        return self.observations[:-1]

    @property
    def next_obs(self) -> np.ndarray:
        return self.observations[1:]

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())

    def __len__(self) -> int:
        return len(self.actions)


def save_demonstration(path: str | Path, demo: Demonstration) -> None:
    np.savez(
        path,
        observations=demo.observations.astype(np.float32),
        actions=demo.actions.astype(np.float32),
        rewards=demo.rewards.astype(np.float32),
        terminations=demo.terminations.astype(bool),
        truncations=demo.truncations.astype(bool),
        env_id=np.array(demo.env_id),
        format=np.array(FORMAT),
    )


def load_demonstration(path: str | Path) -> Demonstration:
    with np.load(path, allow_pickle=False) as f:
        if "format" not in f or str(f["format"]) != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        return Demonstration(
            env_id=str(f["env_id"]),
            observations=f["observations"],
            actions=f["actions"],
            rewards=f["rewards"],
            terminations=f["terminations"],
            truncations=f["truncations"],
        )


def check_demonstration(demo: Demonstration, env, env_id: str) -> None:
    """Raise ValueError when the demonstration does not belong to this environment."""
    if demo.env_id.split("-")[0] != env_id.split("-")[0]:
        raise ValueError(f"demonstration is for {demo.env_id}, the run is on {env_id}")
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    if demo.observations.shape[1:] != obs_shape:
        raise ValueError(f"demonstration observations have shape {demo.observations.shape[1:]}, env has {obs_shape}")
    if demo.actions.shape[1:] != act_shape:
        raise ValueError(f"demonstration actions have shape {demo.actions.shape[1:]}, env has {act_shape}")
    lo, hi = env.action_space.low, env.action_space.high
    if (demo.actions < lo - 1e-5).any() or (demo.actions > hi + 1e-5).any():
        raise ValueError("demonstration actions lie outside the env's action space")


def record_demonstration(env, env_id: str, policy, seed: int) -> Demonstration:
    """Roll `policy(obs) -> env action` for one episode from env.reset(seed=seed)."""
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, terms, truncs = [obs], [], [], [], []
    while True:
        a = policy(obs)
        obs, r, term, trunc, _ = env.step(a)
        observations.append(obs), actions.append(a), rewards.append(r), terms.append(term), truncs.append(trunc)
        if term or trunc:
            break
    return Demonstration(
        env_id,
        np.asarray(observations, np.float32),
        np.asarray(actions, np.float32),
        np.asarray(rewards, np.float32),
        np.asarray(terms, bool),
        np.asarray(truncs, bool),
    )


def minari_data_file(path: str | Path) -> Path:
    """`main_data.hdf5` of a Minari dataset given the file, its `data/` folder or the dataset folder."""
    path = Path(path)
    for cand in (path, path / "main_data.hdf5", path / "data" / "main_data.hdf5"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{path}: no Minari main_data.hdf5 (give the dataset folder, its data/ or the file)")


def load_minari_episode(path: str | Path, env_id: str, episode: int = 0) -> Demonstration:
    """One episode of a Minari dataset (HDF5 storage, groups `episode_<i>`). When the dataset's
    `metadata.json` (beside main_data.hdf5) names its environment, the demonstration carries that id,
    so `check_demonstration` refuses a dataset of another task; otherwise it is taken to be `env_id`."""
    import json

    import h5py

    data = minari_data_file(path)
    meta = data.parent / "metadata.json"
    if meta.exists():
        spec = json.loads(meta.read_text()).get("env_spec")
        if spec:
            env_id = json.loads(spec).get("id", env_id)
    with h5py.File(data, "r") as f:
        if f"episode_{episode}" not in f:
            raise ValueError(f"{data} has no episode_{episode} ({len(f.keys())} episodes)")
        g = f[f"episode_{episode}"]
        for k in ("observations", "actions"):
            if not isinstance(g[k], h5py.Dataset):
                raise ValueError(f"{data}: {k} is a dict/tuple space; TDIL here needs flat Box {k}")
        return Demonstration(
            env_id,
            np.asarray(g["observations"], np.float32),
            np.asarray(g["actions"], np.float32),
            np.asarray(g["rewards"], np.float32),
            np.asarray(g["terminations"], bool),
            np.asarray(g["truncations"], bool),
        )


def load_d4rl_episode(path: str | Path, env_id: str, episode: int = 0) -> Demonstration:
    """Episode `episode` of a D4RL HDF5 file, split on terminals | timeouts.
    D4RL stores no final next state unless `next_observations` is present; without it the last
    transition of the episode is dropped."""
    import h5py

    with h5py.File(path, "r") as f:
        obs = np.asarray(f["observations"], np.float32)
        act = np.asarray(f["actions"], np.float32)
        rew = np.asarray(f["rewards"], np.float32)
        term = np.asarray(f["terminals"], bool)
        tout = np.asarray(f["timeouts"], bool) if "timeouts" in f else np.zeros_like(term)
        nxt = np.asarray(f["next_observations"], np.float32) if "next_observations" in f else None
    ends = np.flatnonzero(term | tout)
    starts = np.concatenate([[0], ends[:-1] + 1])
    if episode >= len(ends):
        raise ValueError(f"{path} has {len(ends)} complete episodes, asked for episode {episode}")
    s, e = starts[episode], ends[episode] + 1
    if nxt is not None:
        observations = np.concatenate([obs[s:e], nxt[e - 1 : e]])
        sl = slice(s, e)
    else:
        observations, sl = obs[s:e], slice(s, e - 1)
    return Demonstration(env_id, observations, act[sl], rew[sl], term[sl], tout[sl])
