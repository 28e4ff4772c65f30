"""Where a run's final policies fail: return per evaluation start state, for every saved actor of a run.

    python benchmarks/per_start_state.py runs/<dir>              # all methods x seeds of that run (default: newest run)
    python benchmarks/per_start_state.py runs/<dir> --jobs tdil-1 gail-1

Uses the run's config.json and demonstration.npz and the same fixed evaluation start states as training
(env.reset(seed=10000 + i)). On Pendulum-v1 it also prints the start angle theta (0 = upright; |theta| >
pi/2: hanging below the pivot) of each start state and of the demonstration.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tdil.demonstrations import load_demonstration  # noqa: E402
from tdil.envs import dims, make_env, to_env_action  # noqa: E402
from tdil.networks import Actor  # noqa: E402


def episode(actor: Actor, env, seed: int) -> float:
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        with torch.no_grad():
            a = actor.deterministic(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        obs, r, term, trunc, _ = env.step(to_env_action(env, a))
        total, done = total + float(r), term or trunc
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, nargs="?", default=None, help="default: the newest run in runs/")
    p.add_argument("--jobs", nargs="*", default=None, help="e.g. tdil-1 gail-0 (default: every saved actor)")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.run_dir is None:
        runs = sorted((Path(__file__).resolve().parents[1] / "runs").glob("*/config.json"), key=lambda f: f.stat().st_mtime)
        if not runs:
            print("per_start_state: no run in runs/ yet (run train.py first)")
            return
        a.run_dir = runs[-1].parent
        print(f"run: {a.run_dir}")
    cfg = json.loads((a.run_dir / "config.json").read_text())
    env = make_env(cfg["env_id"], cfg["terminate_when_unhealthy"], cfg["max_episode_steps"])
    obs_dim, act_dim = dims(env)
    angle = (lambda o: float(np.arctan2(o[1], o[0]))) if cfg["env_id"] == "Pendulum-v1" else None
    n = cfg["eval_episodes"]
    starts = [env.reset(seed=10_000 + i)[0] for i in range(n)]
    if angle:
        demo = load_demonstration(a.run_dir / "demonstration.npz")
        print(f"demonstration start theta {angle(demo.observations[0]):.2f}; "
              f"evaluation start theta: {' '.join(f'{angle(o):.2f}' for o in starts)}")
    names = a.jobs or sorted(f.name[: -len("-actor.pt")] for f in (a.run_dir / "jobs").glob("*-actor.pt"))
    for name in names:
        actor = Actor(obs_dim, act_dim, cfg["hidden"], cfg["layers"])
        actor.load_state_dict(torch.load(a.run_dir / "jobs" / f"{name}-actor.pt"))
        rets = [episode(actor, env, 10_000 + i) for i in range(n)]
        print(f"{name:10s} mean {np.mean(rets):8.1f} | per start: {' '.join(f'{r:.0f}' for r in rets)}")


if __name__ == "__main__":
    main()
