"""The real SMAC adapter (oxwhirl/smac, StarCraft II 4.10): `n_envs` StarCraft2Env processes stepped in
lockstep behind the numpy interface of `base.py` (PyMARL's parallel runner). Imported only when used;
needs `pip install git+https://github.com/oxwhirl/smac` and SC2PATH pointing at a StarCraft II install.
Not exercised by the tests here (no StarCraft II binary on these machines)."""
import multiprocessing as mp

import numpy as np

from .base import MultiAgentEnv, Obs


def _worker(remote, map_name, seed, env_kwargs):
    from smac.env import StarCraft2Env

    env = StarCraft2Env(map_name=map_name, seed=seed, **env_kwargs)

    def observe():
        return (np.asarray(env.get_obs(), np.float32), np.asarray(env.get_state(), np.float32),
                np.asarray(env.get_avail_actions(), np.float32))

    while True:
        cmd, data = remote.recv()
        if cmd == "reset":
            env.reset()
            remote.send(observe())
        elif cmd == "step":
            reward, terminated, info = env.step(data)
            final = observe()
            limit = bool(info.get("episode_limit", False))
            if terminated:
                env.reset()
            remote.send((final, observe(), reward, terminated and not limit, terminated, bool(info.get("battle_won", False))))
        elif cmd == "info":  # + PyMARL's unit_dim (an ally's own state features, Qatten's keys)
            remote.send({**env.get_env_info(), "unit_dim": 4 + env.shield_bits_ally + env.unit_type_bits})
        elif cmd == "close":
            env.close()
            remote.close()
            return


class SMACEnv(MultiAgentEnv):
    def __init__(self, map_name: str = "3s5z_vs_3s6z", n_envs: int = 8, seed: int = 0, **env_kwargs):
        try:
            import smac  # noqa: F401
        except ImportError as e:
            raise ImportError("real SMAC needs StarCraft II and `pip install git+https://github.com/oxwhirl/smac`; "
                              "use --env smax to run without StarCraft II") from e
        ctx = mp.get_context("spawn")
        self.remotes, self.procs = [], []
        for i in range(n_envs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, map_name, seed + i, env_kwargs), daemon=True)
            p.start()
            self.remotes.append(parent)
            self.procs.append(p)
        self.remotes[0].send(("info", None))
        info = self.remotes[0].recv()
        self.map_name, self.n_envs = map_name, n_envs
        self.n_agents, self.n_actions = info["n_agents"], info["n_actions"]
        self.obs_dim, self.state_dim, self.episode_limit = info["obs_shape"], info["state_shape"], info["episode_limit"]
        self.unit_dim = info["unit_dim"]
        self.last_final_obs = None

    def reset(self) -> Obs:
        for r in self.remotes:
            r.send(("reset", None))
        return Obs(*(np.stack(x) for x in zip(*[r.recv() for r in self.remotes])))

    def step(self, actions):
        actions = self.check_actions(actions)
        for r, a in zip(self.remotes, actions):
            r.send(("step", a.tolist()))
        final, nxt, reward, term, done, won = zip(*[r.recv() for r in self.remotes])
        self.last_final_obs = Obs(*(np.stack(x) for x in zip(*final)))
        return (Obs(*(np.stack(x) for x in zip(*nxt))), np.asarray(reward, np.float32), np.asarray(term),
                np.asarray(done), np.asarray(won))

    def close(self):
        for r in self.remotes:
            r.send(("close", None))
        for p in self.procs:
            p.join(timeout=10)
