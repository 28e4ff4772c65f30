"""Is a seed-0 sim-trained agent a function of the code, or of the machine's float rounding? (docs/results.md, "Why:
the seed-0 agents are chaotic in float rounding")

Trains train.py's seed-0 `dagger-sim` agent from scratch (agent_seed(seed, 1) weights, agent_seed(seed, 11) training
draws, training starts from the run seed, the standard sim) exactly as the agent stage does, evaluates it by day in
the standard sim and in the real world as experiments() does (RealWorld seed + 7, starts seed + 123, eval_episodes),
and prints what it ran on (driveenv_nerf.environment: source tree and its git commit, versions, ATen CPU capability,
threads, CPU model, the rounding environment variables), each DAgger iteration's regression loss to all digits, a
hash of each iteration's aggregated data set and of the weights, and the weight sum. `--ppo` does the same for
`ppo-sim` (100 updates; the 50-update policy too). Only library calls of the tree given by --src are used (default: this project folder), so an older commit's checkout can be run with this venv.
No run directory is needed; --out keeps the per-iteration weights for --compare. The commands of the results.md table
(one DAgger training + evaluation is 15-35 s on 2 CPU cores; PPO about 150 s):

    python benchmarks/agent_numerics.py --out runs/numerics/now-a            # today's code and rounding
    python benchmarks/agent_numerics.py --src /tmp/de_cdca/driveenv-nerf     # git clone of the repo at cdca810
    python benchmarks/agent_numerics.py --threads 1                          # torch threads
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/agent_numerics.py             # ATen's kernel set (=default likewise)
    MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/agent_numerics.py   # BLAS / conv ISA
    python benchmarks/agent_numerics.py --no-dagger --ppo                    # ppo-sim only
    python benchmarks/agent_numerics.py --compare runs/numerics/now-a runs/numerics/t1   # where two trainings part

`--stage-draws` instead trains `dagger-sim` through train.py's own train_dagger_agent (an AgentStage with no NeRF)
after torch.manual_seed(0) and the given number of unrelated global draws, once per number, and evaluates it through
train.make_world: does the agent depend on the global random stream? `--policy-sum` prints the weight sum of saved
policy files (a run's policies/*.pt), to hold against the trained ones:

    python benchmarks/agent_numerics.py --stage-draws 0 1000000              # results.md's diag_sim.py
    python benchmarks/agent_numerics.py --policy-sum runs/quick-20261128-061703-agents/policies/dagger-sim.pt
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def load_environment_module():
    """driveenv_nerf/environment.py of this project folder, loaded by path: the --src tree (an older checkout) may
    not have it, and importing this folder's package would shadow --src's."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_driveenv_environment", HERE.parents[1] / "driveenv_nerf/environment.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def state_digest(sd) -> str:
    return digest(*(v.detach().cpu().numpy() for v in sd.values()))


def compare(a: Path, b: Path):
    """Per DAgger iteration / PPO snapshot: are the data sets equal, and the largest weight difference."""
    import torch
    for name in ("dagger-sim", "ppo-sim"):
        fa, fb = a / f"{name}.pt", b / f"{name}.pt"
        if not (fa.exists() and fb.exists()):
            continue
        sa, sb = torch.load(fa, weights_only=False), torch.load(fb, weights_only=False)
        for i, (ra, rb) in enumerate(zip(sa, sb)):
            dw = max(float((ra["w"][k] - rb["w"][k]).abs().max()) for k in ra["w"])
            print(f"{name} {ra['at']}: data {'same' if ra.get('data') == rb.get('data') else 'differs'}, "
                  f"loss {ra['loss']!r} / {rb['loss']!r}, max |weight difference| {dw:.3e}")


def stage_draws(args, cfg, course, env_cfg, wsum):
    """dagger-sim through train.train_dagger_agent after torch.manual_seed(0) + N global draws, for each N."""
    import tempfile
    import torch
    import train
    from driveenv_nerf.agents import PurePursuitExpert, evaluate
    from driveenv_nerf.camera import VehicleCamera
    from driveenv_nerf.envs import BatchDrive

    for n in args.stage_draws or []:
        torch.manual_seed(0)
        torch.rand(n)
        run = Path(args.out) / f"draws-{n}" if args.out else Path(tempfile.mkdtemp(prefix="agent_numerics-"))
        (run / "policies").mkdir(parents=True, exist_ok=True)
        ctx = train.AgentStage(cfg=cfg, run=run, logger=train.Logger(run), mark=lambda s: None, course=course,
                               env_cfg=env_cfg, cam=VehicleCamera(), model=None, app={}, mesh_map=None, gt_map=None,
                               lightings=["day"], expert=PurePursuitExpert(course, env_cfg.wheelbase, env_cfg.max_steer))
        t0 = time.time()
        pol, _, _ = train.train_dagger_agent(ctx, 0, 1, "dagger-sim", "sim", cfg.seed)
        res = {}
        for w in ("sim", "real"):
            env = BatchDrive(course, train.make_world(ctx, w, "day", seed=cfg.seed + 7), env_cfg, cfg.eval_episodes)
            res[w] = evaluate(env, lambda o, s: pol.act(o), cfg.eval_episodes, seed=cfg.seed + 123, record=True)["success"]
        w0 = torch.load(run / "policies/dagger-sim.pt")["policy"]
        print(f"{n} global draws: success sim / real {res['sim']:.3f} / {res['real']:.3f}, weight sum {wsum(w0):.6f}, "
              f"{time.time() - t0:.0f} s ({run})", flush=True)
    for f in args.policy_sum:
        print(f"{f}: weight sum {wsum(torch.load(f)['policy']):.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(HERE.parents[1]),
                    help="the driveenv-nerf tree to import (default: this project folder)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's torch_threads)")
    ap.add_argument("--ppo", action="store_true", help="also train and evaluate ppo-sim")
    ap.add_argument("--no-dagger", action="store_true", help="skip the dagger-sim training (with --ppo: PPO only)")
    ap.add_argument("--out", default=None, help="write per-iteration weights here (for --compare)")
    ap.add_argument("--compare", nargs=2, default=None, metavar=("DIR_A", "DIR_B"),
                    help="compare two --out directories instead of training")
    ap.add_argument("--stage-draws", type=int, nargs="+", default=None, metavar="N",
                    help="train dagger-sim through train.train_dagger_agent after torch.manual_seed(0) and N global draws")
    ap.add_argument("--policy-sum", nargs="+", default=[], metavar="PT", help="print these policy files' weight sums")
    args = ap.parse_args()
    if args.compare:
        return compare(*map(Path, args.compare))

    sys.path.insert(0, str(Path(args.src).resolve()))
    import torch
    import driveenv_nerf
    import train
    from driveenv_nerf.agents import (DAggerConfig, PPOConfig, PurePursuitExpert, agent_seed, dagger, evaluate,
                                      make_policy, ppo)
    from driveenv_nerf.camera import VehicleCamera
    from driveenv_nerf.course import campus_course
    from driveenv_nerf.envs import BatchDrive, EnvConfig, RealWorld, SimWorld

    cfg = train.parse_config([])
    torch.set_num_threads(args.threads or cfg.torch_threads)
    print(f"source {driveenv_nerf.__file__} / {train.__file__}")
    print("environment", json.dumps(load_environment_module().environment(args.src)), flush=True)

    course, cam = campus_course(), VehicleCamera()
    env_cfg = EnvConfig(obs_width=cfg.obs_width, obs_height=cfg.obs_height, hfov_deg=cfg.hfov_deg, max_steps=cfg.max_steps)
    train_env_cfg = dataclasses.replace(env_cfg, start_s=cfg.train_start_s)
    hw, seed = (cfg.obs_height, cfg.obs_width), cfg.seed
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)

    def success(pol):
        res = {}
        for w, world in (("sim", SimWorld(course, env_cfg, cam)), ("real", RealWorld(course, env_cfg, "day", cam, seed=seed + 7))):
            env = BatchDrive(course, world, env_cfg, cfg.eval_episodes)
            res[w] = evaluate(env, lambda o, s: pol.act(o), cfg.eval_episodes, seed=seed + 123, record=True)["success"]
        return res

    def wsum(sd):
        return sum(float(v.double().sum()) for v in sd.values())

    if args.stage_draws or args.policy_sum:
        return stage_draws(args, cfg, course, env_cfg, wsum)

    if not args.no_dagger:
        snaps, t0 = [], time.time()
        pol = make_policy(hw, agent_seed(seed, 1))

        def on_it(it, p, D, log):
            sd = {k: v.detach().clone() for k, v in p.state_dict().items()}
            snaps.append({"at": f"iteration {it}", "loss": log["mse"], "data": digest(*D), "w": sd})
            print(f"  dagger-sim iteration {it}: data {len(D[0])} ({digest(*D)}), mse {log['mse']!r}, weights "
                  f"{state_digest(sd)}, sum {wsum(sd):.6f}", flush=True)

        env = BatchDrive(course, SimWorld(course, env_cfg, cam), train_env_cfg, cfg.dagger_envs, seed=seed)
        dcfg = DAggerConfig(iterations=cfg.dagger_iters, n_envs=cfg.dagger_envs, steps_per_iter=cfg.dagger_steps,
                            epochs=cfg.dagger_epochs)
        dagger(env, PurePursuitExpert(course, env_cfg.wheelbase, env_cfg.max_steer), pol, dcfg,
               seed=agent_seed(seed, 11), on_iteration=on_it)
        t_train = time.time() - t0
        res = success(pol)
        print(f"dagger-sim: success sim / real {res['sim']:.3f} / {res['real']:.3f}; weight sum {wsum(pol.state_dict()):.6f}; "
              f"train {t_train:.1f} s, eval {time.time() - t0 - t_train:.1f} s", flush=True)
        if out:
            torch.save(snaps, out / "dagger-sim.pt")

    if args.ppo:
        snaps, t0, half = [], time.time(), {}
        pol = make_policy(hw, agent_seed(seed, 4))

        def on_up(u, p, o, log):
            if u + 1 == cfg.ppo_updates // 2:
                half["sd"] = {k: v.detach().clone() for k, v in p.state_dict().items()}
            if u % 10 == 9 or u == 0:
                sd = {k: v.detach().clone() for k, v in p.state_dict().items()}
                snaps.append({"at": f"update {u}", "loss": log["value_loss"], "w": sd})
                print(f"  ppo-sim update {u}: mean return {log['mean_return']!r}, value loss {log['value_loss']!r}, "
                      f"weights {state_digest(sd)}", flush=True)

        env = BatchDrive(course, SimWorld(course, env_cfg, cam), train_env_cfg, cfg.ppo_envs, seed=seed)
        ppo(env, pol, PPOConfig(updates=cfg.ppo_updates, n_envs=cfg.ppo_envs, n_steps=cfg.ppo_steps),
            seed=agent_seed(seed, 14), on_update=on_up)
        t_train = time.time() - t0
        res = success(pol)
        hp = make_policy(hw, 0)
        hp.load_state_dict(half["sd"])
        hres = success(hp)
        print(f"ppo-sim: success sim / real {res['sim']:.3f} / {res['real']:.3f} ({cfg.ppo_updates} updates), "
              f"{hres['sim']:.3f} / {hres['real']:.3f} ({cfg.ppo_updates // 2}); weight sum {wsum(pol.state_dict()):.6f}; "
              f"train {t_train:.1f} s, eval {time.time() - t0 - t_train:.1f} s", flush=True)
        if out:
            torch.save(snaps, out / "ppo-sim.pt")


if __name__ == "__main__":
    main()
