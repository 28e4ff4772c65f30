"""DriveEnv-NeRF main job: capture -> NeRF -> mesh -> agents -> validation and lighting experiments.

    python train.py                       # the embedded default (config `quick`, CPU)
    python train.py --config paper-campus # paper-scale settings (GPU)
    python train.py --resume runs/quick-20260101-120000   # continue an interrupted run
    python train.py --resume runs/quick-20260101-120000 --agent-seeds 0,1,2   # more agent seeds on its NeRF
    python train.py --help                # every option

main() runs stages 1-3 (capture, NeRF, mesh) in order; the agent stage is agent_stage() -> train_agents() (DAgger and
PPO, per agent seed) and experiments() (validation and lighting robustness), over an AgentStage context.

Outputs go to runs/<config>-<time>/: config.json, environment.json (versions, threads, CPU kernel set and model, git
commit: what the float rounding depends on), metrics/*.csv, TensorBoard events, checkpoints
(nerf.pt, policies/*.pt), the nerfstudio data set (data/transforms.json), mesh.obj, PNG plots,
results.json and results.md.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from driveenv_nerf import nerf as NR
from driveenv_nerf.agents import DAggerConfig, PixelPolicy, PPOConfig, PurePursuitExpert, agent_seed, dagger, evaluate, make_policy, ppo
from driveenv_nerf.camera import Intrinsics, VehicleCamera
from driveenv_nerf.capture import capture, sparse_depth
from driveenv_nerf.course import Course, campus_course
from driveenv_nerf.environment import environment
from driveenv_nerf.envs import BatchDrive, EnvConfig, NeRFWorld, RealWorld, SimWorld
from driveenv_nerf.geometry import OBSTACLE_CELL, ObstacleMap, mesh_agreement, write_obj
from driveenv_nerf.nerfstudio_data import read_transforms, write_transforms
from driveenv_nerf.renderer import RealWorldRenderer, StandardSimRenderer
from driveenv_nerf import plots

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class Config:
    """Every option of the main job (any can be given on the command line)."""

    config: str = "quick"  # named config in configs/<name>.json
    seed: int = 0
    out_dir: str = "runs"
    resume: str = ""  # a run directory to continue (finished stages are skipped)
    torch_threads: int = 2  # the 2 idle cores here: NeRF training 1.25x, NeRF rendering 1.7x faster than 1 thread
    device: str = "cpu"  # NeRF training device (cuda on a GPU)
    # capture (the "real world" videos)
    lightings: str = "day,dusk,night"
    views_per_lighting: int = 60
    test_views_per_lighting: int = 5
    capture_width: int = 64
    capture_height: int = 48
    hfov_deg: float = 90.0
    data: str = ""  # an existing nerfstudio folder (transforms.json) to train on instead of capturing
    # NeRF
    nerf_iters: int = 1500
    nerf_batch_rays: int = 1024
    nerf_voxel: float = 0.15
    nerf_samples: int = 48
    nerf_features: int = 8
    appearance_dim: int = 8
    nerf_plane_res: float = 0.0  # tri-plane fine features, spacing in m (0: none)
    nerf_coarse: int = 0  # density-only pre-pass samples for hierarchical sampling (0: stratified only)
    nerf_color_skip: float = 0.0  # skip features/colour of samples with weight below this while training
    nerf_opaque_floor: bool = True  # rays leaving the scene box through its floor end there (not in the background)
    nerf_opaque_sides: bool = False  # ... and through its four sides: the background MLP is the sky only (README)
    # z (m) of the NeRF scene box's floor: 0 = the road surface, so the opaque floor is the ground (+3.0 / +2.8 dB
    # held-out by day over the course box's -0.2 on two seeds, README); a real capture needs its ground height
    nerf_box_floor: float = 0.0
    nerf_checkpoint_every: int = 200
    w_distortion: float = 1e-2  # distortion loss weight (mip-NeRF 360 eq. 15)
    w_tv_density: float = 1e-2  # total-variation weight on the density grid
    w_opacity_entropy: float = 0.0  # weight of the rays' opacity entropy (0: off)
    # sparse depth prior: the capture gives this fraction of each training view's pixels their depth (the stand-in
    # for COLMAP's sparse points, `ns-process-data --use-sfm-depth`; a --data folder brings its own depth images)
    # and the NeRF fits it with the line-of-sight loss at weight w_depth (0: off). It puts the walls into the
    # density (corridor obstacle-map IoU 0.03 -> 0.29, Chamfer 1.47 -> 0.32 m at the same held-out PSNR; README)
    nerf_depth_frac: float = 0.05
    w_depth: float = 0.05
    depth_sigma: float = field(default=0.25, metadata={"help": "the depth prior's spread (m, > 0): a ray's termination "
                               "within ~depth_sigma of its known depth costs little, beyond it the full cost (line_of_sight_depth_loss)"})
    # density level of the marching-cubes surface (1/m): 2/m makes a 0.5 m thick body (the road barriers' size)
    # 63% opaque; results.md lists the obstacle-map IoU at other levels too
    mesh_level: float = 2.0
    mesh_upsample: int = 1  # marching cubes on the density grid resampled this many times finer
    obstacle_cell: float = OBSTACLE_CELL  # the obstacle map's cell (m; geometry.py)
    # environments
    obs_width: int = 32
    obs_height: int = 24
    max_steps: int = 100
    env_nerf_samples: int = 32
    train_start_s: float = 12.0  # agents train from starts at arc length U(0, train_start_s) m (evaluation: U(0, 0.5))
    # agents
    dagger_iters: int = 6
    dagger_envs: int = 12
    dagger_steps: int = 30
    dagger_epochs: int = 8
    ppo_updates: int = 100
    ppo_envs: int = 16
    ppo_steps: int = 32
    eval_episodes: int = 24
    # agent seeds: each seed k trains every agent and runs both experiments with its own draws agent_seed(seed, offset, k)
    # (initial weights, DAgger / PPO randomness, training starts) on the run's one NeRF / mesh / map; seed 0 is the draw
    # of runs made before this option. `--resume <finished run> --agent-seeds 0,1,2` adds seeds without retraining the NeRF
    agent_seeds: str = "0"


def parse_config(argv=None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Config):
        kw = {"default": None, "help": (f.metadata["help"] + " " if "help" in f.metadata else "") + f"(default {f.default!r})"}
        if f.type in ("bool", bool):
            p.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"), **kw)
        else:
            typ = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            p.add_argument(f"--{f.name.replace('_', '-')}", type=typ, **kw)
    args = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}
    cfg = Config()
    if args.get("resume"):
        saved = json.loads((Path(args["resume"]) / "config.json").read_text())
        cfg = dataclasses.replace(cfg, **saved)
    else:
        name = args.get("config", cfg.config)
        path = CONFIG_DIR / f"{name}.json"
        if not path.exists():
            raise SystemExit(f"unknown config {name!r}; available: {sorted(q.stem for q in CONFIG_DIR.glob('*.json'))}")
        cfg = dataclasses.replace(cfg, **json.loads(path.read_text()))
    cfg = dataclasses.replace(cfg, **args)
    try:
        parse_agent_seeds(cfg.agent_seeds)
    except ValueError as e:
        p.error(str(e))
    if not cfg.depth_sigma > 0:  # also NaN
        p.error(f"--depth-sigma wants a spread > 0 m, got {cfg.depth_sigma!r}")
    return cfg


class Logger:
    """CSV files per stage plus TensorBoard scalars."""

    def __init__(self, run: Path):
        self.dir = run / "metrics"
        self.dir.mkdir(exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run / "tb"))
        except Exception:  # tensorboard missing: CSV only
            self.tb = None

    def log(self, stage: str, step: int, row: dict):
        path = self.dir / f"{stage}.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step"] + list(row))
            if new:
                w.writeheader()
            w.writerow({"step": step, **row})
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(f"{stage}/{k}", v, step)

    def read(self, stage: str):
        path = self.dir / f"{stage}.csv"
        if not path.exists():
            return []
        with open(path) as f:
            return list(csv.DictReader(f))


def fmt_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in r) + " |")
    return "\n".join(out)


def corr(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan"), float("nan")
    return float(stats.pearsonr(a, b)[0]), float(stats.spearmanr(a, b)[0])


def parse_agent_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]: the agent seeds of --agent-seeds; rejects empty, non-integer, negative or repeated ones."""
    try:
        seeds = [int(t) for t in str(text).split(",")]
    except ValueError:
        raise ValueError(f"--agent-seeds wants comma-separated integers >= 0, got {text!r}") from None
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--agent-seeds wants distinct integers >= 0, got {text!r}")
    return seeds


def resume_agent(obs_hw, seed: int, final: Path, ckpt: Path, counter: str):
    """One agent as far as its training on disk got: (policy, first iteration / update still to run, checkpoint).

    Finished (`final` exists): its weights, start None (nothing left to train). Interrupted (`ckpt` exists): the
    checkpoint's weights, its `counter` ("iteration" for DAgger, "update" for PPO) + 1, and the checkpoint itself (DAgger's
    data set, PPO's optimiser state). Not started: the fresh make_policy(obs_hw, seed), 0, None."""
    pol = make_policy(obs_hw, seed)
    if final.exists():
        pol.load_state_dict(torch.load(final)["policy"])
        return pol, None, None
    if not ckpt.exists():
        return pol, 0, None
    saved = torch.load(ckpt, weights_only=False)
    pol.load_state_dict(saved["policy"])
    return pol, saved[counter] + 1, saved


def mean_std(x) -> list[float]:
    """[mean, sample standard deviation (ddof 1)] over agent seeds."""
    x = np.asarray(x, float)
    return [float(x.mean()), float(x.std(ddof=1))]


def summarise_agent_seeds(per_seed: dict) -> dict:
    """Mean and sample std over agent seeds ({seed: that seed's "validation" and "lighting"}) of every success rate,
    of each simulator's mean |gap| to the real world and correlations, and of the paired gap difference
    (standard sim's gap - NeRF env's gap, > 0 where the NeRF env is the closer one)."""
    if len(per_seed) < 2:
        raise ValueError("a mean +- std over agent seeds needs two seeds or more")
    vals = [r["validation"] for r in per_seed.values()]
    pn = vals[0]["policies"]
    if any(v["policies"] != pn for v in vals):
        raise ValueError("the agent seeds were evaluated on different policy lists")
    worlds = list(vals[0]["success"])
    sims = ("standard sim", "NeRF env")
    diff = [v["standard sim"]["mean_abs_gap_to_real"] - v["NeRF env"]["mean_abs_gap_to_real"] for v in vals]
    light = [r["lighting"] for r in per_seed.values()]
    return {"seeds": [int(k) for k in per_seed], "policies": pn,
            "success": {w: [mean_std([v["success"][w][i] for v in vals]) for i in range(len(pn))] for w in worlds},
            "simulators": {w: {m: mean_std([v[w][m] for v in vals]) for m in ("mean_abs_gap_to_real", "pearson", "spearman")} for w in sims},
            "gap_sim_minus_nerf": mean_std(diff), "gap_sim_minus_nerf_per_seed": diff,
            "lighting": {p: {l: mean_std([x[p][l] for x in light]) for l in light[0][p]} for p in light[0]}}


def agent_seed_tables(summary: dict, lightings) -> list[str]:
    """results.md lines for summarise_agent_seeds' output."""
    pm = lambda ms: f"{ms[0]:.3f} +- {ms[1]:.3f}"
    seeds, worlds = summary["seeds"], list(summary["success"])
    n = len(seeds)
    d = summary["gap_sim_minus_nerf_per_seed"]
    return [f"## Over agent seeds {', '.join(map(str, seeds))}: mean +- sample std (ddof 1), one NeRF",
            fmt_table(["policy"] + worlds, [[p] + [pm(summary["success"][w][i]) for w in worlds] for i, p in enumerate(summary["policies"])]), "",
            fmt_table(["simulator", "mean |gap| to real", "Pearson r", "Spearman rho"],
                      [[w] + [pm(summary["simulators"][w][m]) for m in ("mean_abs_gap_to_real", "pearson", "spearman")] for w in summary["simulators"]]),
            "", f"standard sim's gap - NeRF env's gap: {pm(summary['gap_sim_minus_nerf'])} (per seed "
            + ", ".join(f"{x:+.3f}" for x in d) + f"); the NeRF env is closer to the real world in {sum(x > 0 for x in d)} of {n} seeds", "",
            "lighting robustness (real world):",
            fmt_table(["policy"] + list(lightings), [[p] + [pm(summary["lighting"][p][l]) for l in lightings] for p in summary["lighting"]]), ""]


# ==================================================================== 4-6. the agent stage: train the agents, run both experiments
# main() builds the course, the NeRF and its mesh (stages 1-3), then hands them to agent_stage(), which for each agent
# seed calls train_agents() (DAgger x 3 worlds, PPO in the standard sim) and experiments() (validation, lighting).

DAGGER_AGENTS = (("dagger-sim", "sim"), ("dagger-nerf-day", "nerf"), ("dagger-nerf-randlight", "nerf-randlight"))  # (name, world)
# the validation experiment's worlds: name -> (make_world kind, lighting)
VALIDATION_WORLDS = {"standard sim": ("sim", "day"), "NeRF env": ("nerf", "day"), "real world": ("real", "day")}


@dataclass
class AgentStage:
    """What the agent stage takes from the run and from stages 1-3 (capture, NeRF, mesh)."""

    cfg: Config
    run: Path
    logger: Logger
    mark: Callable[[str], None]  # ends a timed stage of this invocation (results.md "Time per stage")
    course: Course
    env_cfg: EnvConfig  # evaluation episodes (training: train_env_cfg)
    cam: VehicleCamera
    model: NR.GridNeRF  # the trained NeRF, frozen
    app: dict[str, torch.Tensor]  # lighting -> appearance embedding (mean over that lighting's training images)
    mesh_map: ObstacleMap  # the NeRF mesh's obstacle map: the NeRF world's collisions
    gt_map: ObstacleMap  # the true boxes' obstacle map (plots only; the sim and real worlds collide with the exact boxes)
    lightings: list[str]
    expert: PurePursuitExpert

    @property
    def obs_hw(self) -> tuple[int, int]:
        return (self.cfg.obs_height, self.cfg.obs_width)

    @property
    def train_env_cfg(self) -> EnvConfig:
        """Training episodes start anywhere along the first train_start_s metres, so every agent sees the whole course
        (the second half included) from its first iteration; evaluation keeps env_cfg's starts."""
        return dataclasses.replace(self.env_cfg, start_s=self.cfg.train_start_s)


def lighting_order(app: dict) -> list[str]:
    """The captured lightings among day, dusk, night, in that order (interpolation strip, randomised lighting)."""
    return [n for n in ("day", "dusk", "night") if n in app]


class RandomLighting:
    """Randomised lighting, a NeRFWorld appearance callable (rng, n) -> (n, A): per episode a linear interpolation,
    at a uniform weight, between two random lighting embeddings."""

    def __init__(self, embeddings: list[torch.Tensor]):
        self.stack = torch.stack(embeddings)

    def __call__(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        i, j = rng.integers(len(self.stack), size=(2, n))
        al = torch.as_tensor(rng.uniform(0, 1, n), dtype=torch.float32)[:, None]
        return (1 - al) * self.stack[i] + al * self.stack[j]


def make_world(ctx: AgentStage, kind: str, lighting: str = "day", seed: int = 0):
    """One of the three worlds: "sim" (standard simulator), "real" (the stand-in real world under `lighting`),
    "nerf" (the NeRF under `lighting`'s embedding) or "nerf-randlight" (the NeRF under RandomLighting)."""
    if kind == "sim":
        return SimWorld(ctx.course, ctx.env_cfg, ctx.cam)
    if kind == "real":
        return RealWorld(ctx.course, ctx.env_cfg, lighting, ctx.cam, seed=seed)
    if kind == "nerf":
        return NeRFWorld(ctx.model, ctx.mesh_map, ctx.env_cfg, ctx.app[lighting], ctx.cam, ctx.cfg.env_nerf_samples)
    if kind == "nerf-randlight":
        appearance = RandomLighting([ctx.app[n] for n in lighting_order(ctx.app)])
        return NeRFWorld(ctx.model, ctx.mesh_map, ctx.env_cfg, appearance, ctx.cam, ctx.cfg.env_nerf_samples)
    raise ValueError(kind)


def seed_files(run: Path, k: int) -> tuple[Path, str]:
    """Agent seed k's policy folder and file-name tag: seed 0 keeps the run's own files (policies/*.pt,
    metrics/<agent>.csv), seed k > 0 writes policies/seed-<k>/*.pt and metrics/<agent>-seed<k>.csv."""
    return (run / "policies", "") if k == 0 else (run / "policies" / f"seed-{k}", f"-seed{k}")


def load_policy(obs_hw, path: Path) -> PixelPolicy:
    pol = PixelPolicy(obs_hw)
    pol.load_state_dict(torch.load(path)["policy"])
    return pol


def train_dagger_agent(ctx: AgentStage, k: int, offset: int, name: str, kind: str, env_seed: int):
    """DAgger in world `kind` for agent seed k (or its finished policy from disk, or resumed from its checkpoint).
    Returns (policy, its behaviour-cloning-only first iteration or None, whether any training ran)."""
    cfg = ctx.cfg
    pdir, tag = seed_files(ctx.run, k)
    final, bc, ck = pdir / f"{name}.pt", pdir / f"{name}-bc.pt", pdir / f"{name}-ckpt.pt"
    pol, start, saved = resume_agent(ctx.obs_hw, agent_seed(cfg.seed, offset, k), final, ck, "iteration")
    if start is not None:  # not finished: DAgger from iteration `start`
        data = None if saved is None else (saved["X"], saved["Y"])
        if saved is not None:
            print(f"resuming {name}{tag} at DAgger iteration {start}")

        def save(it, p, D, log):  # after each DAgger iteration: log, checkpoint (with the data set), BC-only policy
            ctx.logger.log(name + tag, it, log)
            torch.save({"policy": p.state_dict(), "iteration": it, "X": D[0], "Y": D[1]}, ck)
            if it == 0:
                torch.save({"policy": p.state_dict()}, bc)

        env = BatchDrive(ctx.course, make_world(ctx, kind, seed=env_seed), ctx.train_env_cfg, cfg.dagger_envs, seed=env_seed)
        dcfg = DAggerConfig(iterations=cfg.dagger_iters, n_envs=cfg.dagger_envs, steps_per_iter=cfg.dagger_steps, epochs=cfg.dagger_epochs)
        t0 = time.time()
        dagger(env, ctx.expert, pol, dcfg, seed=agent_seed(cfg.seed, 10 + offset, k), on_iteration=save, start_iter=start, data=data,
               desc=name + tag)
        torch.save({"policy": pol.state_dict()}, final)
        ck.unlink(missing_ok=True)
        print(f"{name}{tag}: DAgger done in {time.time() - t0:.0f}s")
    return pol, (load_policy(ctx.obs_hw, bc) if bc.exists() else None), start is not None


def train_ppo_agent(ctx: AgentStage, k: int, env_seed: int):
    """PPO in the standard sim for agent seed k (or its finished policy from disk, or resumed from its checkpoint).
    Returns (policy, the policy after half the updates or None, whether any training ran)."""
    cfg = ctx.cfg
    pdir, tag = seed_files(ctx.run, k)
    final, half, ck = pdir / "ppo-sim.pt", pdir / "ppo-sim-half.pt", pdir / "ppo-sim-ckpt.pt"
    pol, start, saved = resume_agent(ctx.obs_hw, agent_seed(cfg.seed, 4, k), final, ck, "update")
    if start is not None:  # not finished: PPO from update `start`
        opt_state = None if saved is None else saved["opt"]

        def save(u, p, o, log):  # after each PPO update: log, checkpoint (with the optimiser), the half-way policy
            ctx.logger.log("ppo-sim" + tag, u, log)
            torch.save({"policy": p.state_dict(), "opt": o.state_dict(), "update": u}, ck)
            if u + 1 == cfg.ppo_updates // 2:  # a weaker policy for the validation experiment
                torch.save({"policy": p.state_dict()}, half)

        env = BatchDrive(ctx.course, make_world(ctx, "sim"), ctx.train_env_cfg, cfg.ppo_envs, seed=env_seed)
        t0 = time.time()
        ppo(env, pol, PPOConfig(updates=cfg.ppo_updates, n_envs=cfg.ppo_envs, n_steps=cfg.ppo_steps), seed=agent_seed(cfg.seed, 14, k),
            on_update=save, start_update=start, opt_state=opt_state)
        torch.save({"policy": pol.state_dict()}, final)
        ck.unlink(missing_ok=True)
        print(f"ppo-sim{tag}: {cfg.ppo_updates} updates in {time.time() - t0:.0f}s")
    return pol, (load_policy(ctx.obs_hw, half) if half.exists() else None), start is not None


def train_agents(ctx: AgentStage, k: int):
    """Agent seed k's policies (trained, or loaded where a finished one is on disk) and whether any was trained.

    Each agent's initial weights and training randomness come from its own seed agent_seed(cfg.seed, offset, k)
    (offsets 1-3 DAgger's weights, 11-13 DAgger's training, 4 PPO's weights, 14 PPO's training), not from the global
    RNG the NeRF stage leaves behind: another grid or a resumed run trains the same agents. Seed k > 0 also draws its
    own training starts (agent_seed(cfg.seed, 20, k); seed 0: the run seed)."""
    pdir, tag = seed_files(ctx.run, k)
    pdir.mkdir(parents=True, exist_ok=True)
    env_seed = ctx.cfg.seed if k == 0 else agent_seed(ctx.cfg.seed, 20, k)
    policies, trained = {}, False
    for offset, (name, kind) in enumerate(DAGGER_AGENTS, 1):
        pol, bc, ran = train_dagger_agent(ctx, k, offset, name, kind, env_seed)
        policies[name], trained = pol, trained or ran
        if bc is not None:
            policies[f"{name} (BC only)"] = bc
        ctx.mark(f"agent {name}{tag}")
    if ctx.cfg.ppo_updates > 0:
        pol, half, ran = train_ppo_agent(ctx, k, env_seed)
        policies["ppo-sim"], trained = pol, trained or ran
        if half is not None:
            policies["ppo-sim (half the updates)"] = half
        ctx.mark(f"agent ppo-sim{tag}")
    return policies, trained


def experiments(ctx: AgentStage, k: int, policies: dict, expert_success_sim: float) -> dict:
    """5. validation (every policy in the 3 worlds of VALIDATION_WORLDS) and 6. lighting robustness (the DAgger
    agents in the real world under each lighting), agent seed k. Evaluation starts are the same for every seed."""
    cfg, n = ctx.cfg, ctx.cfg.eval_episodes
    evals = {}
    for wname, (kind, light) in VALIDATION_WORLDS.items():
        evals[wname] = {}
        for pname, pol in tqdm(list(policies.items()), desc=f"eval {wname}", leave=False):
            env = BatchDrive(ctx.course, make_world(ctx, kind, light, seed=cfg.seed + 7), ctx.env_cfg, n)
            evals[wname][pname] = evaluate(env, lambda o, s, pol=pol: pol.act(o), n, seed=cfg.seed + 123, record=True)
    pn = list(policies)
    sr = {w: [evals[w][p]["success"] for p in pn] for w in VALIDATION_WORLDS}
    val = {"policies": pn, "success": sr, "expert_success_sim": expert_success_sim}
    for w in ("standard sim", "NeRF env"):
        pe, sp = corr(sr[w], sr["real world"])
        val[w] = {"mean_abs_gap_to_real": float(np.mean(np.abs(np.array(sr[w]) - np.array(sr["real world"])))), "pearson": pe, "spearman": sp}
    maps = {"NeRF env": ctx.mesh_map, "standard sim": ctx.gt_map, "real world": ctx.gt_map}
    plots.plot_trajectories(ctx.run / ("trajectories.png" if k == 0 else f"trajectories-seed{k}.png"), ctx.course, evals, maps)
    ctx.mark("validation: evaluation in 3 worlds" + ("" if k == 0 else f" (agent seed {k})"))
    light = {}
    for pname, _ in DAGGER_AGENTS:
        light[pname] = {}
        for lname in ctx.lightings:
            env = BatchDrive(ctx.course, make_world(ctx, "real", lname, seed=cfg.seed + 11), ctx.env_cfg, n)
            light[pname][lname] = evaluate(env, lambda o, s, pol=policies[pname]: pol.act(o), n, seed=cfg.seed + 321)["success"]
    ctx.mark("lighting: evaluation in the real world" + ("" if k == 0 else f" (agent seed {k})"))
    return {"eval_episodes": n, "validation": val, "lighting": light}


def agent_stage(ctx: AgentStage, seeds: list[int], results: dict) -> dict:
    """Per agent seed: its policies and both experiments, into results["agent_seeds"][str(k)] (returned).

    A seed whose policies were all on disk and whose evaluation is in results.json (same eval_episodes) is not
    re-evaluated, so `--resume <finished run> --agent-seeds 0,1,2` trains and evaluates only the new seeds on the
    run's NeRF. results.json is rewritten after each seed, so each finished seed survives an interruption."""
    env = BatchDrive(ctx.course, make_world(ctx, "sim"), ctx.env_cfg, ctx.cfg.eval_episodes)
    expert_eval = evaluate(env, lambda o, s: ctx.expert(s), ctx.cfg.eval_episodes, seed=ctx.cfg.seed + 123)
    per_seed = results.setdefault("agent_seeds", {})
    for k in seeds:
        policies, trained = train_agents(ctx, k)
        done = per_seed.get(str(k))
        if not trained and done is not None and done["eval_episodes"] == ctx.cfg.eval_episodes:
            print(f"agent seed {k}: policies and evaluation found in {ctx.run}; not recomputed")
            continue
        per_seed[str(k)] = experiments(ctx, k, policies, expert_eval["success"])
        (ctx.run / "results.json").write_text(json.dumps(results, indent=1))
    return per_seed


def write_environment(path: Path):
    """environment() of this invocation (what the float rounding depends on); a resumed run keeps the records of
    its earlier invocations under "earlier", oldest first, since its stages may have run on other machines."""
    env = environment()
    if path.exists():
        old = json.loads(path.read_text())
        env["earlier"] = old.pop("earlier", []) + [old]
    path.write_text(json.dumps(env, indent=1))


def main(cfg: Config):
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    run = Path(cfg.resume) if cfg.resume else Path(cfg.out_dir) / f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}"
    run.mkdir(parents=True, exist_ok=True)
    (run / "policies").mkdir(exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    write_environment(run / "environment.json")
    logger = Logger(run)
    print(f"run directory: {run}")
    t_start = time.time()
    stages, lap = {}, [t_start]

    def mark(stage):  # wall-clock seconds of each stage of this invocation (where the time goes)
        stages[stage] = stages.get(stage, 0.0) + time.time() - lap[0]
        lap[0] = time.time()
    course = campus_course()
    lightings = cfg.lightings.split(",")
    K_cap = Intrinsics.from_fov(cfg.capture_width, cfg.capture_height, cfg.hfov_deg)
    env_cfg = EnvConfig(obs_width=cfg.obs_width, obs_height=cfg.obs_height, hfov_deg=cfg.hfov_deg, max_steps=cfg.max_steps)
    cam = VehicleCamera()
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").exists() else {}

    # ---------------------------------------------------------------- 1. capture (nerfstudio format)
    data_dir = Path(cfg.data) if cfg.data else run / "data"
    nerf_aabb = ((*course.aabb[0][:2], cfg.nerf_box_floor), course.aabb[1])  # the NeRF's scene box
    if not cfg.data and not (data_dir / "transforms.json").exists():
        t0 = time.time()
        imgs, poses, labels = capture(course, K_cap, lightings, cfg.views_per_lighting, cfg.seed)
        depth = sparse_depth(course, poses, K_cap, cfg.nerf_depth_frac, cfg.seed, nerf_aabb) if cfg.nerf_depth_frac > 0 else None
        write_transforms(data_dir, imgs, poses, K_cap, labels, depth=depth)
        timgs, tposes, tlabels = capture(course, K_cap, lightings, cfg.test_views_per_lighting, cfg.seed + 1000)
        write_transforms(data_dir / "test", timgs, tposes, K_cap, tlabels)
        print(f"captured {len(imgs)} training + {len(timgs)} held-out views in {time.time() - t0:.1f}s -> {data_dir}")
        ctx = np.array([[0.3, 0.0, 0.0], [3.0, 0.4, 0.2], [7.6, 2.0, 1.2]])
        c2w = cam.c2w(ctx)
        rw, sr = RealWorldRenderer(course, K_cap), StandardSimRenderer(course, K_cap)
        rows = [rw.render(c2w, lighting=l, noise_seed=0).numpy() for l in lightings] + [sr.render(c2w).numpy()]
        plots.plot_course(run / "course.png", course, [list(r) for r in rows])
    train = read_transforms(data_dir, aabb=course.aabb)
    test = read_transforms(data_dir / "test", aabb=course.aabb) if (data_dir / "test" / "transforms.json").exists() else None

    mark("capture")
    # ---------------------------------------------------------------- 2. NeRF with appearance embeddings
    tc = NR.TrainConfig(iters=cfg.nerf_iters, batch_rays=cfg.nerf_batch_rays, w_distortion=cfg.w_distortion, w_tv_density=cfg.w_tv_density,
                        w_opacity_entropy=cfg.w_opacity_entropy, w_depth=cfg.w_depth, depth_sigma=cfg.depth_sigma)
    ncfg = NR.NeRFConfig(voxel=cfg.nerf_voxel, n_features=cfg.nerf_features, appearance_dim=cfg.appearance_dim, n_samples=cfg.nerf_samples,
                         plane_res=cfg.nerf_plane_res, n_coarse=cfg.nerf_coarse, color_skip=cfg.nerf_color_skip,
                         opaque_floor=cfg.nerf_opaque_floor, opaque_sides=cfg.nerf_opaque_sides)
    ck_path = run / "nerf.pt"
    if ck_path.exists():
        model, opt, step0, _ = NR.load_checkpoint(ck_path, tc)
        print(f"resuming NeRF from step {step0}")
    else:
        model = NR.GridNeRF(nerf_aabb, len(train.images), ncfg)
        opt, step0 = NR.make_optimizer(model, tc), 0
    model.to(cfg.device)
    if step0 < tc.iters:
        rays = NR.RayData(train.images, train.c2w, train.K, train.depth if cfg.w_depth > 0 else None)
        gen = torch.Generator().manual_seed(cfg.seed + step0)
        t0 = time.time()
        bar = tqdm(range(step0, tc.iters), desc="nerf", initial=step0, total=tc.iters)
        for it in bar:
            m = NR.train_step(model, opt, tuple(x.to(cfg.device) for x in rays.sample(tc.batch_rays, gen)), tc, it)
            if it % 20 == 0:
                bar.set_postfix(psnr=f"{m['psnr']:.2f}")
                logger.log("nerf", it, m)
            if (it + 1) % cfg.nerf_checkpoint_every == 0 or it + 1 == tc.iters:
                NR.save_checkpoint(ck_path, model.cpu(), opt, it + 1)
                model.to(cfg.device)
        results["nerf_train_seconds"] = time.time() - t0
        results["nerf_iters_per_s"] = (tc.iters - step0) / (time.time() - t0)
    model = model.cpu().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    app = NR.lighting_embeddings(model, train.lighting)
    if test is not None:
        q, renders = NR.heldout_quality(model, test.c2w, test.K, test.images, test.lighting, app)
        rows, labels = [], []
        for name, (idx, r) in renders.items():
            rows += [[test.images[i] for i in idx[:4]], [r[k] for k in range(min(4, len(idx)))]]
            labels += [f"{name} GT", f"{name} NeRF"]
        results["nerf_heldout"] = q
        plots.plot_image_grid(run / "nerf_vs_gt.png", rows, labels, "held-out views: real-world renderer (GT) vs NeRF (lighting-mean appearance)")
    mark("NeRF training")
    # lighting interpolation strip (choosing / interpolating appearance embeddings)
    strip_pose = torch.as_tensor(cam.c2w(np.array([[2.0, 0.2, 0.1]])), dtype=torch.float32)
    names = lighting_order(app)
    strip = []
    for a, b in zip(names[:-1], names[1:]):
        for al in np.linspace(0, 1, 4, endpoint=(b == names[-1])):
            strip.append(NR.render_image(model, strip_pose, K_cap, NR.interpolate_appearance(app[a], app[b], float(al)))[0])
    if strip:
        plots.plot_image_grid(run / "lighting_interpolation.png", [strip], ["NeRF"], " -> ".join(names) + " (interpolated appearance embeddings)")

    mark("NeRF held-out renders + plots")
    # ---------------------------------------------------------------- 3. mesh + collision geometry
    vol = model.density_volume()
    level = cfg.mesh_level
    if not vol.min() < level < vol.max():  # an under-trained field: fall back to a high quantile, and say so
        level = float(np.quantile(vol, 0.99))
        print(f"warning: mesh level {cfg.mesh_level} outside the density range; using the 99th percentile {level:.3g}")
    verts, faces = model.mesh(level, cfg.mesh_upsample)  # marching cubes on the raw density (the field's surface)
    write_obj(run / "mesh.obj", verts, faces)
    agree = mesh_agreement(verts, faces, course, cfg.obstacle_cell)
    mesh_map, gt_map = agree.pop("mesh_map"), agree.pop("gt_map")
    results["mesh"] = {"level": level, "upsample": cfg.mesh_upsample, "vertices": int(len(verts)), "faces": int(len(faces)), **agree}
    sweep = {}
    for lev in (0.5, 1.0, 2.0, 4.0, 8.0):  # how much the collision geometry depends on the chosen level
        if vol.min() < lev < vol.max():
            m = mesh_agreement(*model.mesh(lev, cfg.mesh_upsample), course, cfg.obstacle_cell)
            sweep[lev] = {k: m[k] for k in ("iou_road", "iou_corridor", "chamfer_m")}
    results["mesh"]["level_sweep"] = sweep
    plots.plot_mesh(run / "mesh.png", verts, course, gt_map, mesh_map)
    print(f"mesh: {len(verts)} vertices; obstacle-map IoU (corridor) {results['mesh']['iou_corridor']:.3f}, "
          f"(road) {results['mesh']['iou_road']:.3f}; Chamfer {results['mesh']['chamfer_m']:.3f} m")

    mark("mesh + obstacle map")
    # ---------------------------------------------------------------- 4-6. agents and both experiments, per agent seed
    ctx = AgentStage(cfg=cfg, run=run, logger=logger, mark=mark, course=course, env_cfg=env_cfg, cam=cam, model=model, app=app,
                     mesh_map=mesh_map, gt_map=gt_map, lightings=lightings,
                     expert=PurePursuitExpert(course, env_cfg.wheelbase, env_cfg.max_steer))
    seeds = parse_agent_seeds(cfg.agent_seeds)
    per_seed = agent_stage(ctx, seeds, results)
    results["validation"], results["lighting"] = per_seed[str(seeds[0])]["validation"], per_seed[str(seeds[0])]["lighting"]
    results.pop("agent_seed_summary", None)
    if len(seeds) > 1:
        results["agent_seed_summary"] = summarise_agent_seeds({k: per_seed[str(k)] for k in seeds})
    results["stage_seconds"] = stages
    results["total_seconds"] = time.time() - t_start
    (run / "results.json").write_text(json.dumps(results, indent=1))
    # ---------------------------------------------------------------- tables
    curves = {}
    nl = logger.read("nerf")
    if nl:
        curves["NeRF training PSNR"] = ([int(r["step"]) for r in nl], [float(r["psnr"]) for r in nl], "dB (train batch)")
    for n in ("dagger-sim", "dagger-nerf-randlight", "ppo-sim"):  # the first agent seed's
        rows = logger.read(n + ("" if seeds[0] == 0 else f"-seed{seeds[0]}"))
        if rows:
            key = "mse" if "mse" in rows[0] else "mean_return"
            curves[n] = ([int(r["step"]) for r in rows], [float(r[key]) for r in rows], key)
    plots.plot_curves(run / "curves.png", curves)
    md = [f"# Results of `{run}`", ""]
    if "nerf_heldout" in results:
        md += ["## NeRF (held-out views)", fmt_table(["lighting", "PSNR (dB)", "SSIM"], [[k, v["psnr"], v["ssim"]] for k, v in results["nerf_heldout"].items()]), ""]
    m = results["mesh"]
    md += ["## Mesh vs ground truth", fmt_table(["vertices", "obstacle IoU (corridor)", "obstacle IoU (road)", "Chamfer (m)"],
                                                 [[m["vertices"], m["iou_corridor"], m["iou_road"], m["chamfer_m"]]]), ""]
    md += [f"obstacle-map IoU (road / corridor) at other density levels (used: {m['level']:.3g}): "
           + ", ".join(f"{k}: {v['iou_road']:.3f} / {v['iou_corridor']:.3f} (Chamfer {v['chamfer_m']:.2f} m)" for k, v in m.get("level_sweep", {}).items()), ""]
    for k in seeds:
        val, light = per_seed[str(k)]["validation"], per_seed[str(k)]["lighting"]
        md += [f"## Validation, agent seed {k}: success rate over {cfg.eval_episodes} episodes (day)",
               fmt_table(["policy"] + list(VALIDATION_WORLDS), [[p] + [val["success"][w][i] for w in VALIDATION_WORLDS] for i, p in enumerate(val["policies"])]), "",
               fmt_table(["simulator", "mean |gap| to real", "Pearson r", "Spearman rho"],
                         [[w, val[w]["mean_abs_gap_to_real"], val[w]["pearson"], val[w]["spearman"]] for w in ("standard sim", "NeRF env")]),
               "", f"(privileged pure-pursuit expert in the standard sim: {val['expert_success_sim']:.3f})", ""]
        md += [f"## Lighting robustness, agent seed {k}: real-world success rate",
               fmt_table(["policy"] + lightings, [[p] + [light[p][l] for l in lightings] for p in light]), ""]
    if "agent_seed_summary" in results:
        md += agent_seed_tables(results["agent_seed_summary"], lightings)
    md += ["## Time per stage (this invocation)", fmt_table(["stage", "seconds"], [[k, v] for k, v in stages.items()]), ""]
    md += [f"total time {results['total_seconds']:.0f}s"]
    text = "\n".join(md)
    (run / "results.md").write_text(text + "\n")
    print("\n" + text)
    return results


if __name__ == "__main__":
    main(parse_config())
