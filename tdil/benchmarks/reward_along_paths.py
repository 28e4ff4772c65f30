"""What TDIL's surrogate reward prefers: train one TDIL seed, then score whole trajectories with its reward.

    python benchmarks/reward_along_paths.py runs/<dir> --steps 5000 --seed 1 --jobs gail-0
    python benchmarks/reward_along_paths.py runs/<dir> --steps 5000 --seed 1 --set bc_every_step=false

Trains TDIL for --steps with the run's config (plus --set overrides), using the run's demonstration and
normaliser levels, and prints its learning curve (normalised return). Then, from each --starts evaluation
start state, it rolls out the freshly trained TDIL policy and the run's saved actors named in --jobs, and
prints along each trajectory: the true return, the TDIL reward r(s') = sum_j D_target(s', s'_E,j) given to
the critic (relative and scaled as in the config), and its discounted sum over the episode (gamma of the
config), i.e. which path the surrogate objective prefers. On Pendulum-v1 it also prints the angle theta
(0 = upright) along the path.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tdil.config import load_run_config  # noqa: E402
from tdil.demonstrations import load_demonstration  # noqa: E402
from tdil.envs import make_env  # noqa: E402
from tdil.imitation import Imitator  # noqa: E402
from train import normalise  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from behaviour import load_actor, rollout  # noqa: E402


def critic_reward(im: Imitator, next_states: torch.Tensor) -> torch.Tensor:
    """The reward the critic sees for these next states: r, or r / mean_E r (relative), times reward_scale."""
    r = im.tdil_reward(next_states)
    if im.cfg.relative_reward:
        r = r / (im.tdil_reward(im.e_next).mean() + 1e-6)
    return im.cfg.reward_scale * r


def parse_set(items: list[str]) -> dict:
    out = {}
    for kv in items:
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, nargs="?", default=None, help="a finished run (default: the newest in runs/)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", nargs="*", default=["gail-0"], help="saved actors of the run to compare with")
    p.add_argument("--starts", nargs="*", type=int, default=[10008, 10001], help="env.reset seeds (evaluation uses 10000 + i)")
    p.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. bc_every_step=false reward_scale=1.0")
    p.add_argument("--every", type=int, default=3, help="print every k-th step of the first 60")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.run_dir is None:
        runs = sorted((Path(__file__).resolve().parents[1] / "runs").glob("*/levels.json"), key=lambda f: f.stat().st_mtime)
        runs = [r.parent for r in runs if all((r.parent / "jobs" / f"{j}-actor.pt").exists() for j in a.jobs)]
        if not runs:
            print(f"reward_along_paths: no finished run with actors {a.jobs} in runs/ yet (run train.py first)")
            return
        a.run_dir = runs[-1]
        print(f"run: {a.run_dir}")
    cfg = dataclasses.replace(load_run_config(a.run_dir), steps=a.steps, checkpoint_every=0, **parse_set(a.set))
    demo = load_demonstration(a.run_dir / "demonstration.npz")
    levels = json.loads((a.run_dir / "levels.json").read_text())

    im = Imitator("tdil", cfg, demo, a.seed)
    im.train(a.steps)
    print(f"TDIL seed {a.seed}, {a.steps} steps, overrides {parse_set(a.set) or 'none'}")
    print("normalised return every", cfg.eval_every, "steps:", " ".join(f"{normalise(r, levels):.2f}" for r in im.result.returns))

    env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    actors = {f"tdil-{a.seed} (this)": im.agent.actor}
    actors |= {name: load_actor(a.run_dir / "jobs" / f"{name}-actor.pt", env, cfg.hidden, cfg.layers) for name in a.jobs}
    pendulum = cfg.env_id == "Pendulum-v1"
    k = a.every
    if pendulum:
        th = np.arctan2(demo.observations[:, 1], demo.observations[:, 0])
        print(f"demonstration theta: {' '.join(f'{x:.1f}' for x in th[:60:k])}")
    r_demo = critic_reward(im, torch.as_tensor(demo.next_obs, dtype=torch.float32))
    print(f"demonstration r(s'): {' '.join(f'{x:.1f}' for x in r_demo[:60:k])}")
    for seed in a.starts:
        for name, actor in actors.items():
            out = rollout(actor, env, seed)
            path, ret = np.vstack([out["start_obs"][None], out["next_obs"]]), out["return"]  # s_0 .. s_T
            r = critic_reward(im, torch.as_tensor(path[1:])).numpy()
            disc = float(np.sum(cfg.gamma ** np.arange(len(r)) * r))
            print(f"start {seed} {name:16s} true return {ret:7.1f} (normalised {normalise(ret, levels):.2f}) | "
                  f"discounted TDIL return {disc:7.1f} | undiscounted {r.sum():7.1f}")
            if pendulum:
                print(f"    theta: {' '.join(f'{x:.1f}' for x in np.arctan2(path[:60:k, 1], path[:60:k, 0]))}")
            print(f"    r(s'): {' '.join(f'{x:.1f}' for x in r[:60:k])}")


if __name__ == "__main__":
    main()
