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
from tdil.envs import make_env, to_env_action
from tdil.imitation import METHODS, Imitator, RunResult, evaluate, run_bc

HERE = Path(__file__).resolve().parent
EXPERT_SEED = 12345  # the expert's training seed, distinct from the imitation seeds


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


def expert_and_demo(cfg: Config) -> tuple[object, dict]:
    """The one demonstration and the normaliser's expert / random levels (cached per env and setting)."""
    env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    n_eval = max(10, cfg.eval_episodes)
    if cfg.demo_path:
        loader = {"npz": lambda p: load_demonstration(p), "minari": lambda p: load_minari_episode(p, cfg.env_id),
                  "d4rl": lambda p: load_d4rl_episode(p, cfg.env_id)}[cfg.demo_format]
        demo = loader(cfg.demo_path)
        check_demonstration(demo, env, cfg.env_id)
        levels = {"expert": cfg.expert_return if cfg.expert_return is not None else demo.episode_return,
                  "random": random_return(env, n_eval), "demo_return": demo.episode_return, "source": cfg.demo_path}
        return demo, levels
    tag = f"{cfg.env_id}-sac{cfg.expert_steps}-h{cfg.hidden}x{cfg.layers}-tau{cfg.tau}-demo{cfg.demo_seed}"
    cache = HERE / cfg.cache_dir / "experts"
    cache.mkdir(parents=True, exist_ok=True)
    demo_file, levels_file = cache / f"{tag}.npz", cache / f"{tag}.json"
    if demo_file.exists() and levels_file.exists():
        print(f"expert: cached demonstration {demo_file}")
        demo = load_demonstration(demo_file)
        check_demonstration(demo, env, cfg.env_id)
        return demo, json.loads(levels_file.read_text())
    ecfg = dataclasses.replace(cfg, steps=cfg.expert_steps, eval_every=max(cfg.expert_steps // 5, 1), fixed_log_alpha=None)
    im = Imitator("sac_env", ecfg, None, EXPERT_SEED)
    with tqdm(total=cfg.expert_steps, desc="expert SAC (env reward)", disable=not cfg.progress) as bar:
        im.train(cfg.expert_steps, progress=bar.update, on_log=lambda s, r, _: bar.set_postfix(ret=f"{r:.1f}"))
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

    demo, levels = expert_and_demo(cfg)
    save_demonstration(run_dir / "demonstration.npz", demo)
    (run_dir / "levels.json").write_text(json.dumps(levels, indent=1))
    print(f"one demonstration: {len(demo)} transitions, return {demo.episode_return:.1f}; "
          f"normaliser: expert {levels['expert']:.1f}, random {levels['random']:.1f}")

    results: dict[str, list[RunResult]] = {m: [] for m in cfg.methods}
    for method in cfg.methods:
        for seed in cfg.seeds:
            done_file, ckpt = run_dir / "jobs" / f"{method}-{seed}.json", run_dir / "jobs" / f"{method}-{seed}.pt"
            if done_file.exists():
                res = RunResult(**json.loads(done_file.read_text()))
                print(f"{method} seed {seed}: loaded finished job")
            else:
                total = cfg.bc_steps if method == "bc" else cfg.steps
                with tqdm(total=total, desc=f"{method} seed {seed}", disable=not cfg.progress) as bar:
                    if method == "bc":
                        res, _ = run_bc(cfg, demo, seed, progress=bar.update)
                    else:
                        im = Imitator(method, cfg, demo, seed)
                        if ckpt.exists():
                            im.load(ckpt)
                            bar.update(im.t)
                            print(f"{method} seed {seed}: resumed at step {im.t}")

                        def on_log(s, ret, logs, method=method, seed=seed, bar=bar):
                            bar.set_postfix(norm=f"{normalise(ret, levels):.2f}")
                            if not cfg.progress:
                                print(f"{method} seed {seed} step {s.t}: return {ret:.1f} (normalised {normalise(ret, levels):.3f})", flush=True)
                            if writer:
                                writer.add_scalar(f"{method}/seed{seed}/normalised_return", normalise(ret, levels), s.t)
                                for k, v in logs.items():
                                    writer.add_scalar(f"{method}/seed{seed}/{k}", v, s.t)

                        res = im.train(cfg.steps, progress=bar.update, ckpt_path=ckpt, on_log=on_log)
                        torch.save(im.agent.actor.state_dict(), run_dir / "jobs" / f"{method}-{seed}-actor.pt")
                        ckpt.unlink(missing_ok=True)
                done_file.write_text(json.dumps(res.__dict__))
            results[method].append(res)
            with open(run_dir / "metrics.csv", "w") as f:
                f.write("method,seed,step,return,normalised_return\n")
                for m, runs in results.items():
                    for r in runs:
                        for st, ret in zip(r.steps, r.returns):
                            f.write(f"{m},{r.seed},{st},{ret:.3f},{normalise(ret, levels):.4f}\n")

    rows = []
    for method, runs in results.items():
        finals = np.array([r.returns[-1] for r in runs])
        norm = np.array([normalise(x, levels) for x in finals])
        last3 = np.array([np.mean([normalise(x, levels) for x in r.returns[-3:]]) for r in runs])
        rows.append((method, norm.mean(), norm.std(), finals.mean(), len(runs), last3.mean(), last3.std()))
    budget = f"{cfg.steps} env steps" if any(m != "bc" for m in cfg.methods) else ""
    lines = [
        f"## {cfg.env_id}, one demonstration ({len(demo)} transitions), {len(cfg.seeds)} seeds, {budget}",
        "",
        "| method | normalised return, final evaluation (mean ± std over seeds) | raw return | mean of the last 3 evaluations, normalised | seeds |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {m} | {mu:.3f} ± {sd:.3f} | {raw:.1f} | {l3:.3f} ± {l3sd:.3f} | {n} |" for m, mu, sd, raw, n, l3, l3sd in rows]
    lines.append(f"\nexpert = {levels['expert']:.1f}, uniform random = {levels['random']:.1f}, demonstration return = {levels['demo_return']:.1f}")
    table = "\n".join(lines)
    print("\n" + table)
    (run_dir / "results.md").write_text(table + "\n")
    plot_curves(results, levels, run_dir / "learning_curves.png", f"{cfg.env_id}: imitation from one demonstration")
    if writer:
        writer.close()
    return {m: {"normalised_mean": mu, "normalised_std": sd, "return_mean": raw, "normalised_last3": l3} for m, mu, sd, raw, _, l3, _ in rows}


if __name__ == "__main__":
    main(sys.argv[1:])
