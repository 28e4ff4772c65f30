"""TDIL from ONE demonstration, against BC / GAIL / PWIL, over several seeds.

    python train.py                         # embedded default: Pendulum-v1, CPU, minutes
    python train.py --config paper-hopper   # paper scale (GPU recommended)
    python train.py --help                  # every option

Pipeline: train (or load the cached) SAC expert on the true reward -> record ONE demonstration
(.npz, Minari field names) -> for each method and seed, imitate from that demonstration without the
env reward -> normalised return (expert = 1, uniform random policy = 0) table, CSV, PNG curves.
Outputs go to runs/<config>-<time>/; `--resume runs/<dir>` continues an interrupted run.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import tyro
from tqdm import tqdm

from tdil.config import Config
from tdil.demonstrations import (
    check_demonstration,
    load_d4rl_episode,
    load_demonstration,
    load_minari_episode,
    record_demonstration,
    save_demonstration,
)
from tdil.envs import has_unhealthy_termination, make_env, to_env_action
from tdil.imitation import METHODS, Imitator, RunResult, evaluate, run_bc, sac_config
from tdil.sac import SACConfig

HERE = Path(__file__).resolve().parent
EXPERT_SEED = 12345  # the expert's training seed, distinct from the imitation seeds


class Stopped(Exception):
    """--stop-after-minutes ran out: every running stage saved a checkpoint; --resume continues."""


def load_named_config(name: str) -> Config:
    path = HERE / "configs" / f"{name.replace('-', '_')}.py"
    if not path.exists():
        names = sorted(p.stem.replace("_", "-") for p in (HERE / "configs").glob("*.py") if not p.stem.startswith("_"))
        raise SystemExit(f"unknown config {name!r}; available: {', '.join(names)}")
    spec = importlib.util.spec_from_file_location(f"tdil_config_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # configs may import shared pieces (configs/_*.py)
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return dataclasses.replace(Config(), config=name, **mod.OVERRIDES)


def parse_config(argv: list[str] | None = None) -> Config:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default="quick")
    known, rest = pre.parse_known_args(argv)
    cfg = tyro.cli(Config, default=load_named_config(known.config), args=rest, description=__doc__)
    for m in cfg.methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}; expected some of {METHODS}")
    return cfg


def random_return(env, episodes: int, seed: int = 0) -> float:
    rng, total = np.random.default_rng(seed), 0.0
    for i in range(episodes):
        env.reset(seed=10_000 + i)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(to_env_action(env, rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)))
            total += float(r)
            done = term or trunc
    return total / episodes


def expert_config(cfg: Config) -> Config:
    """The config the SAC expert trains with: its own tau / batch / warm-up / width / learning rates where set (`expert_*`; paper
    configs: official config_files/sac.yml), auto-tuned alpha, and unhealthy termination (sac.yml) where the task has it."""
    def own(value, fallback):
        return fallback if value is None else value

    term = cfg.expert_terminate_when_unhealthy if has_unhealthy_termination(cfg.env_id) else cfg.terminate_when_unhealthy
    return dataclasses.replace(
        cfg, steps=cfg.expert_steps, eval_every=max(cfg.expert_steps // 5, 1), fixed_log_alpha=None, terminate_when_unhealthy=term,
        tau=own(cfg.expert_tau, cfg.tau), batch_size=own(cfg.expert_batch_size, cfg.batch_size),
        warmup_steps=own(cfg.expert_warmup_steps, cfg.warmup_steps), hidden=own(cfg.expert_hidden, cfg.hidden),
        actor_lr=own(cfg.expert_actor_lr, cfg.actor_lr), critic_lr=own(cfg.expert_critic_lr, cfg.critic_lr),
        alpha_lr=own(cfg.expert_alpha_lr, cfg.alpha_lr))


def expert_tag(cfg: Config, ecfg: Config) -> str:
    """The expert cache's file stem: its settings (ecfg = expert_config(cfg)) and the demonstration's reset seed.
    `-lr<actor>-<critic>-<alpha>` only where a rate is not SAC's default 3e-4, so earlier tags still name their files."""
    tag = (f"{cfg.env_id}-sac{cfg.expert_steps}-h{ecfg.hidden}x{ecfg.layers}-tau{ecfg.tau}-b{ecfg.batch_size}"
           f"-w{ecfg.warmup_steps}-demo{cfg.demo_seed}")
    lrs = sac_config(ecfg).lrs()
    if lrs != SACConfig().lrs():
        tag += "-lr" + "-".join(f"{v:g}" for v in lrs)
    if ecfg.terminate_when_unhealthy != cfg.terminate_when_unhealthy:
        tag += f"-expertterm{int(ecfg.terminate_when_unhealthy)}"
    return tag


def expert_and_demo(cfg: Config, deadline: float | None = None) -> tuple[object, dict]:
    """The one demonstration and the normaliser's expert / random levels (cached per env and setting).
    The expert's SAC run checkpoints to the cache every `checkpoint_every` steps and resumes from there;
    past `deadline` it saves and raises Stopped."""
    env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    n_eval = max(10, cfg.eval_episodes)
    if cfg.demo_path:
        loader = {"npz": lambda p: load_demonstration(p), "minari": lambda p: load_minari_episode(p, cfg.env_id, cfg.demo_episode),
                  "d4rl": lambda p: load_d4rl_episode(p, cfg.env_id, cfg.demo_episode)}[cfg.demo_format]
        demo = loader(cfg.demo_path)
        check_demonstration(demo, env, cfg.env_id)
        levels = {"expert": cfg.expert_return if cfg.expert_return is not None else demo.episode_return,
                  "random": random_return(env, n_eval), "demo_return": demo.episode_return, "source": cfg.demo_path}
        return demo, levels
    ecfg = expert_config(cfg)
    tag = expert_tag(cfg, ecfg)
    cache = HERE / cfg.cache_dir / "experts"
    cache.mkdir(parents=True, exist_ok=True)
    demo_file, levels_file = cache / f"{tag}.npz", cache / f"{tag}.json"
    if demo_file.exists() and levels_file.exists():
        print(f"expert: cached demonstration {demo_file}")
        demo = load_demonstration(demo_file)
        check_demonstration(demo, env, cfg.env_id)
        return demo, json.loads(levels_file.read_text())
    im, ckpt = Imitator("sac_env", ecfg, None, EXPERT_SEED), cache / f"{tag}-train.pt"
    if ckpt.exists():
        im.load(ckpt)
        print(f"expert: resumed SAC at step {im.t} from {ckpt}", flush=True)

    def log(s, r, _):
        bar.set_postfix(ret=f"{r:.1f}")
        if not cfg.progress:
            print(f"expert SAC step {s.t}: return {r:.1f}", flush=True)

    with tqdm(total=cfg.expert_steps, initial=im.t, desc="expert SAC (env reward)", disable=not cfg.progress) as bar:
        im.train(cfg.expert_steps, progress=bar.update, on_log=log, ckpt_path=ckpt, deadline=deadline)
    if im.t < cfg.expert_steps:
        raise Stopped(f"expert SAC at step {im.t} of {cfg.expert_steps} (checkpoint {ckpt})")
    (cache / f"{tag}-curve.json").write_text(json.dumps(im.result.__dict__))
    actor = im.agent.actor.cpu()

    def policy(o):
        with torch.no_grad():
            return to_env_action(env, actor.deterministic(torch.as_tensor(o, dtype=torch.float32)[None])[0].numpy())

    demo = record_demonstration(env, cfg.env_id, policy, cfg.demo_seed)
    levels = {"expert": cfg.expert_return if cfg.expert_return is not None else evaluate(actor, env, n_eval),
              "random": random_return(env, n_eval), "demo_return": demo.episode_return, "source": str(demo_file)}
    save_demonstration(demo_file, demo)
    torch.save(actor.state_dict(), cache / f"{tag}-actor.pt")
    levels_file.write_text(json.dumps(levels, indent=1))
    ckpt.unlink(missing_ok=True)
    return demo, levels


def normalise(ret: float, levels: dict) -> float:
    return (ret - levels["random"]) / (levels["expert"] - levels["random"])


def plot_curves(results: dict[str, list[RunResult]], levels: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, runs in results.items():
        if method == "bc":
            continue
        steps = np.array(runs[0].steps)
        ys = np.array([[normalise(r, levels) for r in run.returns] for run in runs])
        ax.plot(steps, ys.mean(0), label=method)
        ax.fill_between(steps, ys.min(0), ys.max(0), alpha=0.2)
    if "bc" in results:
        bc = np.mean([normalise(r.returns[-1], levels) for r in results["bc"]])
        ax.axhline(bc, ls="--", c="gray", label="bc (final)")
    ax.axhline(1.0, ls=":", c="k", label="expert")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("normalised return (expert = 1, random = 0)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Relative cost of one job, to start the longest first when jobs run in parallel (measured ms/step).
JOB_COST = {"tdil_irl": 18.0, "tdil": 15.0, "gail": 11.0, "airl": 12.0, "iq": 12.0, "pwil": 8.5, "sac_env": 8.5, "bc": 0.5}


def run_job(cfg: Config, method: str, seed: int, demo, run_dir: Path, report: Callable,
            deadline: float | None = None) -> RunResult | None:
    """One (method, seed) job from the demonstration; checkpoints to jobs/, writes jobs/<method>-<seed>.json.
    Past `deadline` it saves its checkpoint and returns None (unfinished).

    `report(kind, ...)` receives ("steps", n) progress and ("eval", method, seed, step, return, logs)."""
    done_file, ckpt = run_dir / "jobs" / f"{method}-{seed}.json", run_dir / "jobs" / f"{method}-{seed}.pt"
    if method == "bc":
        res, _ = run_bc(cfg, demo, seed, progress=lambda n: report("steps", n))
    else:
        im = Imitator(method, cfg, demo, seed)
        if ckpt.exists():
            im.load(ckpt)
            report("steps", im.t)
            print(f"{method} seed {seed}: resumed at step {im.t}", flush=True)
        res = im.train(cfg.steps, progress=lambda n: report("steps", n), ckpt_path=ckpt,
                       on_log=lambda s, ret, logs: report("eval", method, seed, s.t, ret, logs), deadline=deadline)
        if im.t < cfg.steps:
            print(f"{method} seed {seed}: stopped at step {im.t} (checkpoint {ckpt})", flush=True)
            return None
        torch.save(im.agent.actor.state_dict(), run_dir / "jobs" / f"{method}-{seed}-actor.pt")
        ckpt.unlink(missing_ok=True)
    done_file.write_text(json.dumps(res.__dict__))
    return res


_QUEUE = None  # a worker process's channel to the parent's progress bar / TensorBoard writer


def _init_worker(queue, threads: int) -> None:
    global _QUEUE
    _QUEUE = queue
    torch.set_num_threads(threads)


def _worker_job(cfg: Config, method: str, seed: int, demo, run_dir: Path, deadline: float | None) -> RunResult | None:
    pending = [0]

    def report(kind, *payload):
        if kind == "steps":  # batch progress messages: one per 100 steps
            pending[0] += payload[0]
            if pending[0] >= 100:
                _QUEUE.put(("steps", pending[0]))
                pending[0] = 0
        else:
            _QUEUE.put((kind, *payload))

    res = run_job(cfg, method, seed, demo, run_dir, report, deadline)
    _QUEUE.put(("steps", pending[0]))
    return res


def run_jobs(cfg: Config, todo: list[tuple[str, int]], demo, run_dir: Path, report: Callable, finished: Callable,
             deadline: float | None = None) -> None:
    """Run the (method, seed) jobs, `cfg.workers` at a time in separate processes (1: in this process).
    Every job seeds itself, so a job's result does not depend on where or in which order it runs."""
    if cfg.workers <= 1 or len(todo) <= 1:
        for method, seed in todo:
            finished(method, seed, run_job(cfg, method, seed, demo, run_dir, report, deadline))
        return
    import multiprocessing as mp
    import queue as queue_lib
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    order = sorted(todo, key=lambda j: -JOB_COST.get(j[0], 1.0) * (cfg.bc_steps if j[0] == "bc" else cfg.steps))
    with ProcessPoolExecutor(min(cfg.workers, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(q, cfg.torch_threads)) as ex:
        futures = {ex.submit(_worker_job, cfg, m, s, demo, run_dir, deadline): (m, s) for m, s in order}
        pending = set(futures)
        while pending:
            try:
                report(*q.get(timeout=0.2))
            except queue_lib.Empty:
                pass
            for f in [f for f in pending if f.done()]:
                pending.remove(f)
                finished(*futures[f], f.result())
        while not q.empty():
            report(*q.get())


def write_metrics(path: Path, results: dict[str, list[RunResult]], levels: dict) -> None:
    with open(path, "w") as f:
        f.write("method,seed,step,return,normalised_return\n")
        for m, runs in results.items():
            for r in runs:
                for st, ret in zip(r.steps, r.returns):
                    f.write(f"{m},{r.seed},{st},{ret:.3f},{normalise(ret, levels):.4f}\n")


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(argv)
    torch.set_num_threads(cfg.torch_threads)
    run_dir = Path(cfg.resume) if cfg.resume else HERE / cfg.out_dir / f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}"
    (run_dir / "jobs").mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    print(f"run directory: {run_dir}")
    writer = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))

    deadline = time.time() + 60 * cfg.stop_after_minutes if cfg.stop_after_minutes > 0 else None
    try:
        demo, levels = expert_and_demo(cfg, deadline)
    except Stopped as stop:
        print(f"stopped after {cfg.stop_after_minutes} min: {stop}; continue with: python train.py "
              f"--config {cfg.config} --resume {run_dir} (plus the same overrides)")
        return {"stopped": str(stop)}
    save_demonstration(run_dir / "demonstration.npz", demo)
    (run_dir / "levels.json").write_text(json.dumps(levels, indent=1))
    print(f"one demonstration: {len(demo)} transitions, return {demo.episode_return:.1f}; "
          f"normaliser: expert {levels['expert']:.1f}, random {levels['random']:.1f}")

    done: dict[tuple[str, int], RunResult] = {}
    todo = []
    for method in cfg.methods:
        for seed in cfg.seeds:
            done_file = run_dir / "jobs" / f"{method}-{seed}.json"
            if done_file.exists():
                done[(method, seed)] = RunResult(**json.loads(done_file.read_text()))
                print(f"{method} seed {seed}: loaded finished job")
            else:
                todo.append((method, seed))
    ordered = lambda: {m: [done[(m, s)] for s in cfg.seeds if (m, s) in done] for m in cfg.methods}  # noqa: E731
    total = sum(cfg.bc_steps if m == "bc" else cfg.steps for m, _ in todo)
    bar = tqdm(total=total, desc=f"{len(todo)} jobs ({', '.join(cfg.methods)} x {len(cfg.seeds)} seeds), {cfg.workers} at a time",
               disable=not cfg.progress)

    def report(kind, *payload):
        if kind == "steps":
            bar.update(payload[0])
            return
        method, seed, step, ret, logs = payload
        bar.set_postfix_str(f"{method} seed {seed} step {step}: {normalise(ret, levels):.2f}")
        if not cfg.progress:
            print(f"{method} seed {seed} step {step}: return {ret:.1f} (normalised {normalise(ret, levels):.3f})", flush=True)
        if writer:
            writer.add_scalar(f"{method}/seed{seed}/normalised_return", normalise(ret, levels), step)
            for k, v in logs.items():
                writer.add_scalar(f"{method}/seed{seed}/{k}", v, step)

    stopped = []

    def finished(method, seed, res):
        if res is None:
            stopped.append(f"{method}-{seed}")
            return
        done[(method, seed)] = res
        write_metrics(run_dir / "metrics.csv", ordered(), levels)
        bar.write(f"{method} seed {seed}: done, final normalised return {normalise(res.returns[-1], levels):.3f}")

    if deadline is not None and time.time() >= deadline and todo:
        print(f"stopped after {cfg.stop_after_minutes} min before the jobs; continue with: python train.py "
              f"--config {cfg.config} --resume {run_dir} (plus the same overrides)")
        return {"stopped": "before the jobs"}
    t0 = time.perf_counter()
    run_jobs(cfg, todo, demo, run_dir, report, finished, deadline)
    bar.close()
    if stopped:
        print(f"stopped after {cfg.stop_after_minutes} min with unfinished jobs {stopped} (checkpoints in {run_dir / 'jobs'}); "
              f"continue with: python train.py --config {cfg.config} --resume {run_dir} (plus the same overrides)")
        write_metrics(run_dir / "metrics.csv", ordered(), levels)
        return {"stopped": ", ".join(stopped)}
    print(f"{len(todo)} jobs in {time.perf_counter() - t0:.0f} s ({cfg.workers} worker processes)")
    results = ordered()
    write_metrics(run_dir / "metrics.csv", results, levels)

    table, summary = results_table(cfg, len(demo), results, levels)
    print("\n" + table)
    (run_dir / "results.md").write_text(table + "\n")
    plot_curves(results, levels, run_dir / "learning_curves.png", f"{cfg.env_id}: imitation from one demonstration")
    if writer:
        writer.close()
    return summary


def sample_efficiency(run: RunResult, levels: dict, budget: int) -> tuple[float, float]:
    """Defined before the measured runs, from the same learning curves:
    AUC  = mean normalised return over all evaluations (every eval_every steps up to the budget),
           i.e. the normalised area under the learning curve;
    half = normalised return at the evaluation closest to half the budget."""
    norm = [normalise(r, levels) for r in run.returns]
    half = int(np.argmin([abs(s - budget / 2) for s in run.steps]))
    return float(np.mean(norm)), norm[half]


def results_table(cfg: Config, demo_len: int, results: dict[str, list[RunResult]], levels: dict) -> tuple[str, dict]:
    ms = lambda x: f"{np.mean(x):.3f} ± {np.std(x):.3f}"  # noqa: E731
    lines = [
        f"## {cfg.env_id}, one demonstration ({demo_len} transitions), {len(cfg.seeds)} seeds, {cfg.steps} env steps, "
        f"{cfg.eval_episodes} evaluation episodes",
        "",
        "| method | normalised return, final (mean ± std over seeds) | per seed | raw return | mean of the last 3 evaluations "
        f"| AUC: mean over all evaluations | at {cfg.steps // 2} steps |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    summary = {}
    for method, runs in results.items():
        finals = np.array([r.returns[-1] for r in runs])
        norm = np.array([normalise(x, levels) for x in finals])
        last3 = [np.mean([normalise(x, levels) for x in r.returns[-3:]]) for r in runs]
        summary[method] = {"normalised_mean": float(norm.mean()), "normalised_std": float(norm.std()),
                           "normalised_per_seed": norm.tolist(), "return_mean": float(finals.mean()),
                           "normalised_last3": float(np.mean(last3))}
        auc = half = "n/a (no env steps)"
        if method != "bc":
            eff = np.array([sample_efficiency(r, levels, cfg.steps) for r in runs])
            auc, half = ms(eff[:, 0]), ms(eff[:, 1])
            summary[method] |= {"auc": float(eff[:, 0].mean()), "half_budget": float(eff[:, 1].mean())}
        lines.append(f"| {method} | {ms(norm)} | {', '.join(f'{x:.2f}' for x in norm)} | {finals.mean():.1f} | {ms(last3)} | {auc} | {half} |")
    lines.append(f"\nexpert = {levels['expert']:.1f}, uniform random = {levels['random']:.1f}, demonstration return = {levels['demo_return']:.1f}")
    return "\n".join(lines), summary


if __name__ == "__main__":
    main(sys.argv[1:])
