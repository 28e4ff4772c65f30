"""What a saved policy actually does on a MuJoCo task: reward components and motion, per episode.

    python benchmarks/behaviour.py                                   # every cached expert actor in .cache/experts/
    python benchmarks/behaviour.py .cache/experts/<tag>-actor.pt --episodes 5
    python benchmarks/behaviour.py --run runs/hopper-cpu-seed0      # every final actor of a run (jobs/*-actor.pt)
    python benchmarks/behaviour.py --demo .cache/experts/<tag>.npz  # the same summary from a demonstration file

Rolls out the deterministic policy tanh(mu(s)) from the evaluation start states (env.reset(seed=10000 + i))
with the run's env settings and sums Gymnasium's own reward terms from `info` (v5 tasks: reward_forward =
x-velocity, reward_ctrl, reward_survive = healthy_reward on HEALTHY steps only). Prints the distance
travelled (x_position), the mean x-velocity and, for Hopper/Walker2d, how many steps the body was healthy
(torso height and angle in range): without unhealthy termination a policy can fall over and still collect
forward reward, so the return alone does not say whether it hops, stands or crawls. "upside down" is the share
of steps with the torso pitch (qpos[2], wrapped) beyond +-90 degrees: a HalfCheetah can run on its back.
For a demonstration file the same figures come from its observations (Hopper/Walker2d: obs[0] torso height,
obs[1] torso angle; x-velocity obs[5] / obs[8]) and rewards, without the simulator.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tdil.demonstrations import load_demonstration  # noqa: E402
from tdil.envs import dims, make_env, to_env_action  # noqa: E402
from tdil.networks import Actor  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
# Gymnasium v5 defaults: healthy z range and angle range, index of the x-velocity in the observation.
HEALTH = {"Hopper": ((0.7, np.inf), (-0.2, 0.2), 5), "Walker2d": ((0.8, 2.0), (-1.0, 1.0), 8)}


def healthy_from_obs(env_id: str, obs: np.ndarray) -> np.ndarray | None:
    spec = HEALTH.get(env_id.split("-")[0])
    if spec is None:
        return None
    (zlo, zhi), (alo, ahi), _ = spec
    z, angle = obs[:, 0], obs[:, 1]
    return (z > zlo) & (z < zhi) & (angle > alo) & (angle < ahi)


def rollout(actor: Actor, env, seed: int) -> dict:
    """One deterministic episode (tanh(mu(s))) from env.reset(seed): the return, Gymnasium's reward terms and motion,
    the start observation ("start_obs") and the path's next observations ("next_obs", float32, one per step). Envs
    without MuJoCo `data` (e.g. Pendulum) are rolled out too; their distance, final_z and upside_down are NaN."""
    obs, info = env.reset(seed=seed)
    start = np.asarray(obs, np.float32)
    mujoco = hasattr(env.unwrapped, "data")
    x0 = float(env.unwrapped.data.qpos[0]) if mujoco else float("nan")
    sums = {"return": 0.0, "reward_forward": 0.0, "reward_ctrl": 0.0, "reward_survive": 0.0}
    vx, angle, nxt, healthy, first_unhealthy, t, done = [], [], [], 0, None, 0, False
    while not done:
        with torch.no_grad():
            a = actor.deterministic(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        obs, r, term, trunc, info = env.step(to_env_action(env, a))
        nxt.append(obs)
        sums["return"] += float(r)
        for k in ("reward_forward", "reward_ctrl", "reward_survive"):
            sums[k] += float(info.get(k, 0.0))
        vx.append(float(info.get("x_velocity", np.nan)))
        if mujoco:
            angle.append(float(env.unwrapped.data.qpos[2]))  # torso pitch (rooty) of the planar tasks
        ok = getattr(env.unwrapped, "is_healthy", None)
        if ok is not None:
            healthy += int(ok)
            if not ok and first_unhealthy is None:
                first_unhealthy = t
        t += 1
        done = term or trunc
    return sums | {"steps": t, "start_obs": start, "next_obs": np.asarray(nxt, np.float32),
                   "distance": float(env.unwrapped.data.qpos[0]) - x0 if mujoco else float("nan"),
                   "mean_vx": float(np.mean(vx)),
                   "healthy_steps": healthy if hasattr(env.unwrapped, "is_healthy") else None,
                   "first_unhealthy": first_unhealthy,
                   "final_z": float(env.unwrapped.data.qpos[1]) if mujoco else float("nan"),
                   "upside_down": float(np.mean(np.abs(np.angle(np.exp(1j * np.array(angle)))) > np.pi / 2))
                   if mujoco else float("nan")}


def load_actor(path: Path, env, hidden: int, layers: int) -> Actor:
    """A saved actor state dict (e.g. a run's jobs/<method>-<seed>-actor.pt) as an Actor sized for env."""
    actor = Actor(*dims(env), hidden, layers)
    actor.load_state_dict(torch.load(path))
    return actor


def report_actor(path: Path, env_id: str, hidden: int, layers: int, episodes: int, terminate: bool) -> None:
    env = make_env(env_id, terminate)
    if not hasattr(env.unwrapped, "data"):
        print(f"{path}: {env_id} is not a MuJoCo task, skipped")
        return
    actor = load_actor(path, env, hidden, layers)
    print(f"{path} ({env_id}, {hidden} x {layers}, terminate_when_unhealthy={terminate}):")
    rows = [rollout(actor, env, 10_000 + i) for i in range(episodes)]
    for i, r in enumerate(rows):
        health = "" if r["healthy_steps"] is None else f" | healthy {r['healthy_steps']:4d}/{r['steps']} (first unhealthy step {r['first_unhealthy']})"
        print(f"  episode {i}: return {r['return']:8.1f} = forward {r['reward_forward']:8.1f} + survive {r['reward_survive']:7.1f} "
              f"+ ctrl {r['reward_ctrl']:7.1f} | distance {r['distance']:7.2f} m, mean x-velocity {r['mean_vx']:5.2f} m/s"
              f"{health} | final torso z {r['final_z']:.2f} | upside down {100 * r['upside_down']:.0f}% of steps")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("return", "reward_forward", "reward_survive", "reward_ctrl", "distance", "mean_vx", "upside_down")}
    print("  mean: " + ", ".join(f"{k} {v:.2f}" for k, v in mean.items()))


def report_demo(path: Path) -> None:
    demo = load_demonstration(path)
    env_id = demo.env_id
    ok = healthy_from_obs(env_id, demo.next_obs)
    spec = HEALTH.get(env_id.split("-")[0])
    line = f"{path} ({env_id}): return {demo.episode_return:.1f} over {len(demo)} steps"
    if spec is not None:
        vx = demo.next_obs[:, spec[2]]
        first = int(np.argmin(ok)) if not ok.all() else None
        line += (f" | healthy {int(ok.sum())}/{len(demo)} steps (first unhealthy step {first}), mean x-velocity {vx.mean():.2f} m/s, "
                 f"torso z: median {np.median(demo.next_obs[:, 0]):.2f}, torso angle: median {np.median(demo.next_obs[:, 1]):.2f} rad")
    print(line)


def tag_widths(path: Path) -> tuple[str, int, int] | None:
    """env id, hidden, layers from a cached expert's file name (<env>-sac<N>-h<H>x<L>-...-actor.pt)."""
    m = re.match(r"(.+)-sac\d+-h(\d+)x(\d+)-", path.name)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("actors", nargs="*", type=Path, help="actor state dicts (default: every cached expert actor)")
    p.add_argument("--run", type=Path, default=None, help="a run directory: every jobs/*-actor.pt with its config.json")
    p.add_argument("--demo", type=Path, nargs="*", default=[], help="demonstration .npz files to summarise")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--terminate-when-unhealthy", action="store_true", help="default: off, as the paper and this repo's runs")
    a = p.parse_args()
    torch.set_num_threads(1)
    for d in a.demo:
        report_demo(d)
    if a.run is not None:
        cfg = json.loads((a.run / "config.json").read_text())
        for f in sorted((a.run / "jobs").glob("*-actor.pt")):
            report_actor(f, cfg["env_id"], cfg["hidden"], cfg["layers"], a.episodes, a.terminate_when_unhealthy)
        return
    actors = a.actors or ([] if a.demo else sorted((HERE / ".cache" / "experts").glob("*-actor.pt")))
    if not actors and not a.demo:
        print("behaviour: no cached expert actor in .cache/experts/ yet (run train.py first)")
    for f in actors:
        parsed = tag_widths(f)
        if parsed is None:
            raise SystemExit(f"{f}: cannot read env id and widths from the name; use --run with a run directory")
        report_actor(f, *parsed, a.episodes, a.terminate_when_unhealthy)


if __name__ == "__main__":
    main()
