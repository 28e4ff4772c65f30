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
from tdil.envs import make_env  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from behaviour import load_actor, rollout  # noqa: E402


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
    angle = (lambda o: float(np.arctan2(o[1], o[0]))) if cfg["env_id"] == "Pendulum-v1" else None
    n = cfg["eval_episodes"]
    starts = [env.reset(seed=10_000 + i)[0] for i in range(n)]
    if angle:
        demo = load_demonstration(a.run_dir / "demonstration.npz")
        print(f"demonstration start theta {angle(demo.observations[0]):.2f}; "
              f"evaluation start theta: {' '.join(f'{angle(o):.2f}' for o in starts)}")
    names = a.jobs or sorted(f.name[: -len("-actor.pt")] for f in (a.run_dir / "jobs").glob("*-actor.pt"))
    for name in names:
        actor = load_actor(a.run_dir / "jobs" / f"{name}-actor.pt", env, cfg["hidden"], cfg["layers"])
        rets = [rollout(actor, env, 10_000 + i)["return"] for i in range(n)]
        print(f"{name:10s} mean {np.mean(rets):8.1f} | per start: {' '.join(f'{r:.0f}' for r in rets)}")


if __name__ == "__main__":
    main()
