"""TDIL's surrogate reward, discriminator and SAC quantities over training, to see why a seed does not learn.

    python benchmarks/surrogate_over_training.py runs/halfcheetah-cpu-seed0 runs/halfcheetah-cpu-seed2 --steps 16000

Re-runs the TDIL job of each run directory (its config.json, its seed, its demonstration.npz; one process per run,
one torch thread each, as train.py's workers) from step 0 and, every --every steps right after the reward cache
is refreshed, prints (logging reads networks only and draws no random numbers, so the run is the original one:
the evaluation returns are printed beside the run's metrics.csv):
  vx        mean forward velocity of the last --every transitions (MuJoCo: qvel[0], obs index nq - 1)
  ctrl      mean sum_i a_i^2 of those actions (HalfCheetah's control cost is 0.1 x this per step)
  rA/rE     mean r(s') of those transitions / mean r(s'_E) of the expert's = the critic's reward / reward_scale
            (r(s') = sum_j D_target(s', s'_E,j), the TDIL reward; relative_reward divides by mean r(s'_E))
  rStill/rE r of the initial standing pose (env.reset(seed=10000), velocities ~0) / mean r(s'_E)
  Dv De Dh  mean D_target on the agent's valid (s, s'), easy-negative (s, s'_other), hard-negative (s', s) pairs
  DvE DhE   the same on the demonstration's own valid and reversed pairs (never trained on)
  alpha     SAC temperature;  Q_A, Q_E  mean min-Q of the agent's last (s, a) and of the expert's (s_E, a_E)
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tdil.config import load_run_config  # noqa: E402
from tdil.demonstrations import load_demonstration  # noqa: E402
from tdil.envs import make_env  # noqa: E402
from tdil.imitation import Imitator  # noqa: E402
from train import normalise  # noqa: E402

HEADER = "seed   step  eval(now/orig)      vx   ctrl  rA/rE rStill/rE    Dv    De    Dh   DvE   DhE  alpha    Q_A    Q_E"


@torch.no_grad()
def snapshot(im: Imitator, still: torch.Tensor, every: int) -> dict:
    n = im.buf.size
    lo = max(0, n - every)
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    s, a, s2 = t(im.buf.obs[lo:n]), t(im.buf.act[lo:n]), t(im.buf.next_obs[lo:n])
    d = im.disc_target
    r_e = float(im.tdil_reward(im.e_next).mean())
    q_a = torch.min(*im.agent.critic(s, a)).mean()
    q_e = torch.min(*im.agent.critic(im.e_obs, im.e_act)).mean()
    model = getattr(im.env.unwrapped, "model", None)  # MuJoCo: obs = qpos[1:] (nq - 1 values), then qvel; qvel[0] = forward velocity
    vx = float(s2[:, model.nq - 1].mean()) if model is not None else float("nan")
    return dict(vx=vx, ctrl=float((a**2).sum(-1).mean()),
                rA=float(im.tdil_reward(s2).mean()) / r_e, rStill=float(im.tdil_reward(still)[0]) / r_e,
                Dv=float(d(s, s2).mean()), De=float(d(s, torch.roll(s2, 1, 0)).mean()), Dh=float(d(s2, s).mean()),
                DvE=float(d(im.e_obs, im.e_next).mean()), DhE=float(d(im.e_next, im.e_obs).mean()),
                alpha=float(im.agent.alpha), QA=float(q_a), QE=float(q_e), rE=r_e)


def run_one(run_dir: Path, steps: int, every: int, minutes: float) -> None:
    torch.set_num_threads(1)
    cfg = dataclasses.replace(load_run_config(run_dir), steps=steps, checkpoint_every=0)
    seed = cfg.seeds[0]
    levels = json.loads((run_dir / "levels.json").read_text())
    orig = {}
    if (run_dir / "metrics.csv").exists():
        with open(run_dir / "metrics.csv") as f:
            orig = {int(r["step"]): float(r["normalised_return"]) for r in csv.DictReader(f)
                    if r["method"] == "tdil" and int(r["seed"]) == seed}
    probe = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    still = torch.as_tensor(probe.reset(seed=10_000)[0], dtype=torch.float32)[None]
    im = Imitator("tdil", cfg, load_demonstration(run_dir / "demonstration.npz"), seed)
    deadline = time.time() + 60 * minutes
    for k in range(every, steps + 1, every):
        im.train(k)
        if k <= cfg.warmup_steps:
            continue
        m = snapshot(im, still, every)
        ev = ""
        if im.result.steps and im.result.steps[-1] == k:
            ev = f"{normalise(im.result.returns[-1], levels):6.3f}/{orig.get(k, float('nan')):6.3f}"
        print(f"{seed:4d} {k:6d} {ev:>15s} {m['vx']:7.2f} {m['ctrl']:6.2f} {m['rA']:6.3f} {m['rStill']:9.3f} "
              f"{m['Dv']:5.2f} {m['De']:5.2f} {m['Dh']:5.2f} {m['DvE']:5.2f} {m['DhE']:5.2f} {m['alpha']:6.3f} "
              f"{m['QA']:6.1f} {m['QE']:6.1f}   (mean r(s'_E) {m['rE']:.1f})", flush=True)
        if time.time() > deadline:
            print(f"{seed:4d} stopped at step {k}: --minutes {minutes} passed", flush=True)
            break


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", type=Path, nargs="+", help="run directories whose TDIL job (their seed) is re-run")
    p.add_argument("--steps", type=int, default=16_000)
    p.add_argument("--every", type=int, default=1000, help="print every N steps (use the config's reward_refresh_every)")
    p.add_argument("--minutes", type=float, default=8.0, help="each process stops after this wall time")
    a = p.parse_args()
    print(HEADER, flush=True)
    procs = [mp.Process(target=run_one, args=(d, a.steps, a.every, a.minutes)) for d in a.run_dirs]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()


if __name__ == "__main__":
    main()
