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
  z         mean obs[0] of those next states (Hopper, Walker2d, HalfCheetah, Ant: torso height; Hopper is
            unhealthy below 0.7)

--score-jobs NAME ... (the run's saved final actors, jobs/NAME-actor.pt) scores whole paths with the CURRENT
discriminator at each --score-at step and at the last step: the demonstration's, the re-run's own current
policy's ("now") and each named actor's (deterministic, from each --score-starts state, the run's env settings).
Per path: true return, healthy steps (Hopper/Walker2d: torso height and angle in range, from the observation),
mean x-velocity, mean torso height, r/rE (mean r(s') / mean r(s'_E): 1 for the demonstration by construction),
r/rE over the healthy and the unhealthy steps, and the discounted surrogate return sum_t gamma^t r_t as the critic
sees it (relative and x reward_scale): which path the surrogate prefers at that point of training.
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
from tdil.networks import Actor  # noqa: E402
from train import normalise  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from behaviour import healthy_from_obs, load_actor, rollout  # noqa: E402

HEADER = ("seed   step  eval(now/orig)      vx   ctrl  rA/rE rStill/rE    Dv    De    Dh   DvE   DhE  alpha    Q_A    Q_E"
          "      z")


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
    z = float(s2[:, 0].mean()) if model is not None else float("nan")
    return dict(vx=vx, z=z, ctrl=float((a**2).sum(-1).mean()),
                rA=float(im.tdil_reward(s2).mean()) / r_e, rStill=float(im.tdil_reward(still)[0]) / r_e,
                Dv=float(d(s, s2).mean()), De=float(d(s, torch.roll(s2, 1, 0)).mean()), Dh=float(d(s2, s).mean()),
                DvE=float(d(im.e_obs, im.e_next).mean()), DhE=float(d(im.e_next, im.e_obs).mean()),
                alpha=float(im.agent.alpha), QA=float(q_a), QE=float(q_e), rE=r_e)


@torch.no_grad()
def score_paths(im: Imitator, demo, actors: dict[str, Actor], starts: list[int]) -> list[dict]:
    """Score the demonstration's and each actor's path (from each start) with im's current TDIL reward.

    Uses its own env and deterministic actions (behaviour.rollout), so the training run it is called from is left
    unchanged."""
    cfg = im.cfg
    env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    model = getattr(env.unwrapped, "model", None)
    r_e = float(im.tdil_reward(im.e_next).mean())
    paths = [("demonstration", -1, np.asarray(demo.next_obs, np.float32), float(np.sum(demo.rewards)))]
    for name, actor in actors.items():
        for seed in starts:
            path = rollout(actor, env, seed)
            paths.append((name, seed, path["next_obs"], path["return"]))
    rows = []
    for name, seed, nxt, ret in paths:
        ratio = im.tdil_reward(torch.as_tensor(nxt, device=im.dev)).cpu().numpy() / r_e
        healthy = healthy_from_obs(cfg.env_id, nxt)
        h = np.ones(len(nxt), bool) if healthy is None else healthy
        rows.append(dict(path=name, start=seed, steps=len(nxt), ret=ret,
                         healthy=int(h.sum()) if healthy is not None else -1,
                         vx=float(nxt[:, model.nq - 1].mean()) if model is not None else float("nan"),
                         z=float(nxt[:, 0].mean()) if model is not None else float("nan"),
                         ratio=float(ratio.mean()),
                         ratio_healthy=float(ratio[h].mean()) if h.any() else float("nan"),
                         ratio_unhealthy=float(ratio[~h].mean()) if (~h).any() else float("nan"),
                         disc=float(np.sum(cfg.gamma ** np.arange(len(ratio)) * ratio) * cfg.reward_scale)))
    return rows


def format_scores(seed: int, step: int, rows: list[dict], levels: dict) -> str:
    out = [f"{seed:4d} {step:6d} paths scored with this step's D_target (r/rE = mean r(s') / mean r(s'_E); "
           f"disc = sum_t gamma^t x critic reward):",
           f"{'':11s} {'path':14s} {'start':>5s} {'return':>7s} {'norm':>6s} {'healthy':>9s} {'vx':>6s} {'z':>5s} "
           f"{'r/rE':>6s} {'healthy':>7s} {'unhealthy':>9s} {'disc':>7s}"]
    for r in rows:
        out.append(f"{'':11s} {r['path']:14s} {r['start'] if r['start'] >= 0 else '':>5} {r['ret']:7.1f} "
                   f"{normalise(r['ret'], levels):6.3f} {r['healthy']:4d}/{r['steps']:4d} {r['vx']:6.2f} {r['z']:5.2f} "
                   f"{r['ratio']:6.3f} {r['ratio_healthy']:7.3f} {r['ratio_unhealthy']:9.3f} {r['disc']:7.1f}")
    return "\n".join(out)


def run_one(run_dir: Path, steps: int, every: int, minutes: float, score_jobs: tuple = (), score_at: tuple = (),
            score_starts: tuple = (10000, 10001)) -> None:
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
    # built BEFORE the Imitator, which seeds torch: building a network draws random numbers
    saved = {name: load_actor(run_dir / "jobs" / f"{name}-actor.pt", probe, cfg.hidden, cfg.layers) for name in score_jobs}
    demo = load_demonstration(run_dir / "demonstration.npz")
    im = Imitator("tdil", cfg, demo, seed)
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
              f"{m['QA']:6.1f} {m['QE']:6.1f} {m['z']:6.2f}   (mean r(s'_E) {m['rE']:.1f})", flush=True)
        stop = time.time() > deadline
        if score_jobs and (k in score_at or stop or k + every > steps):
            rows = score_paths(im, demo, {"now": im.agent.actor, **saved}, list(score_starts))
            print(format_scores(seed, k, rows, levels), flush=True)
        if stop:
            print(f"{seed:4d} stopped at step {k}: --minutes {minutes} passed", flush=True)
            break


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", type=Path, nargs="+", help="run directories whose TDIL job (their seed) is re-run")
    p.add_argument("--steps", type=int, default=16_000)
    p.add_argument("--every", type=int, default=1000, help="print every N steps (use the config's reward_refresh_every)")
    p.add_argument("--minutes", type=float, default=8.0, help="each process stops after this wall time")
    p.add_argument("--score-jobs", nargs="*", default=[], help="saved actors of each run (jobs/NAME-actor.pt) whose "
                   "paths are scored, with the demonstration's and the current policy's, e.g. gail-0 tdil-0")
    p.add_argument("--score-at", nargs="*", type=int, default=[], help="steps at which to score (and the last step)")
    p.add_argument("--score-starts", nargs="*", type=int, default=[10000, 10001], help="env.reset seeds of the paths")
    a = p.parse_args()
    print(HEADER, flush=True)
    procs = [mp.Process(target=run_one, args=(d, a.steps, a.every, a.minutes, tuple(a.score_jobs), tuple(a.score_at),
                                              tuple(a.score_starts))) for d in a.run_dirs]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()


if __name__ == "__main__":
    main()
