"""MEow vs SAC: train, evaluate, plot, print a results table.

    python train.py                              # the CPU default (config `quick`): Pendulum-v1, 3 seeds + MultiGoal demo
    python train.py --config paper-hopper        # the paper's Hopper-v5 protocol (GPU/CPU hours)
    python train.py --config quick --meow.alpha 0.1 --seeds 1 2     # any field can be overridden
    python train.py --resume runs/quick-20260101-120000             # continue a run from its checkpoints

Outputs go to runs/<config>-<time>/: config.json, metrics.csv, tb/ (TensorBoard), ckpt_<algo>.pkl,
learning_curves.png, multigoal_density.png, results.md.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import pickle
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from tqdm import tqdm

from configs import CONFIGS
from meow_rl.config import Config, validate
from meow_rl.envs import make_gym_env, make_jax_env, require_brax
from meow_rl.loop import GymTrainer, JaxTrainer, fresh_copy, jit_act
from meow_rl.meow import make_meow
from meow_rl.sac import make_sac

GYM_TWINS = {"Pendulum-v1": "Pendulum-v1"}
METRIC_FIELDS = ["algo", "seed", "env_steps", "eval_return", "eval_return_stochastic", "train_return", "loss", "q", "wall_s"]


def parse_args(argv) -> Config:
    name = "quick"
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            sys.exit("--config needs a name: " + ", ".join(CONFIGS))
        name = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if name not in CONFIGS:
        sys.exit(f"unknown config {name!r}; choose from: {', '.join(CONFIGS)}")
    desc = (__doc__ or "") + "\n--config NAME selects a named config (" + ", ".join(CONFIGS) + "); default quick."
    return tyro.cli(Config, default=CONFIGS[name], args=argv, description=desc)


def make_agent(algo: str, cfg: Config, obs_dim: int, act_dim: int):
    return make_meow(cfg.meow, obs_dim, act_dim) if algo == "meow" else make_sac(cfg.sac, obs_dim, act_dim)


def save_ckpt(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(jax.device_get(payload), f)
    os.replace(tmp, path)


def load_ckpt(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


class Logger:
    def __init__(self, run_dir, tensorboard: bool):
        self.path = os.path.join(run_dir, "metrics.csv")
        new = not os.path.exists(self.path)
        self.f = open(self.path, "a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=METRIC_FIELDS)
        if new:
            self.w.writeheader()
        self.tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(os.path.join(run_dir, "tb"))

    def log(self, row):
        self.w.writerow(row)
        self.f.flush()
        if self.tb is not None:
            tag = f"{row['algo']}/seed{row['seed']}"
            for k in ("eval_return", "eval_return_stochastic", "train_return", "loss", "q"):
                if row[k] == row[k] and row[k] is not None:  # skip NaN
                    self.tb.add_scalar(f"{tag}/{k}", row[k], row["env_steps"])

    def close(self):
        self.f.close()
        if self.tb is not None:
            self.tb.close()


def train_jax(algo, cfg: Config, run_dir, logger, history):
    """All seeds at once (vmapped); the collect+update loop of a chunk is one jit'd loop."""
    env = make_jax_env(cfg.env_id, cfg.backend, cfg.brax_pipeline, cfg.max_episode_steps)
    agent = make_agent(algo, cfg, env.obs_dim, env.act_dim)
    buffer_size = cfg.buffer_size
    tr = JaxTrainer(agent, env, num_envs=cfg.num_envs, batch_size=cfg.batch_size, buffer_size=buffer_size,
                    warmup=cfg.warmup, updates_per_step=cfg.updates_per_step, eval_episodes=cfg.eval_episodes,
                    chunk=cfg.eval_every // cfg.num_envs)
    seeds = jnp.asarray(cfg.seeds)
    ckpt_path = os.path.join(run_dir, f"ckpt_{algo}.pkl")
    ck = load_ckpt(ckpt_path)
    carry = fresh_copy(ck["carry"]) if ck else tr.init(jax.vmap(jax.random.PRNGKey)(seeds))
    if ck:
        history[algo] = ck["history"]
    steps = int(carry["env_steps"])
    t0 = time.time() - (history[algo][-1]["wall_s"] if history[algo] else 0.0)
    bar = tqdm(total=cfg.total_steps, initial=steps, desc=f"{algo} {cfg.env_id} x{len(cfg.seeds)} seeds",
               disable=not cfg.progress, unit="step")
    while steps < cfg.total_steps:
        carry, metrics = tr.run_chunk(carry)
        steps = int(carry["env_steps"])
        ek = jax.vmap(jax.random.PRNGKey)(seeds * 100_003 + steps)
        det = np.asarray(tr.evaluate(carry["agent"], ek, True))
        sto = np.asarray(tr.evaluate(carry["agent"], ek, False)) if cfg.stochastic_eval else np.full(len(cfg.seeds), np.nan)
        train_ret = np.asarray(carry["last_return"]).mean(axis=-1)
        for i, seed in enumerate(cfg.seeds):
            row = {"algo": algo, "seed": seed, "env_steps": steps, "eval_return": float(det[i]),
                   "eval_return_stochastic": float(sto[i]), "train_return": float(train_ret[i]),
                   "loss": float(np.asarray(metrics["loss"])[i]), "q": float(np.asarray(metrics["q"])[i]),
                   "wall_s": round(time.time() - t0, 1)}
            logger.log(row)
            history[algo].append(row)
        save_ckpt(ckpt_path, {"carry": carry, "history": history[algo]})
        bar.update(cfg.eval_every)
        bar.set_postfix(eval=f"{det.mean():.1f}")
    bar.close()
    return jax.device_get(carry["agent"]), env, agent


def train_gym(algo, cfg: Config, run_dir, logger, history):
    """One Gymnasium env per seed, seeds one after another (the paper's protocol, UTD 1)."""
    states = []
    for seed in cfg.seeds:
        env_fn = lambda s=seed: make_gym_env(cfg.env_id)  # noqa: E731
        probe = make_gym_env(cfg.env_id)
        obs_dim, act_dim = int(np.prod(probe.observation_space.shape)), int(np.prod(probe.action_space.shape))
        probe.close()
        agent = make_agent(algo, cfg, obs_dim, act_dim)
        tr = GymTrainer(agent, env_fn, batch_size=cfg.batch_size, buffer_size=cfg.buffer_size,
                        warmup=cfg.warmup, eval_episodes=cfg.eval_episodes)
        ckpt_path = os.path.join(run_dir, f"ckpt_{algo}_seed{seed}.pkl")
        ck = load_ckpt(ckpt_path)
        if ck:
            carry = ck["carry"]
            carry["agent"], carry["buffer"] = fresh_copy((carry["agent"], carry["buffer"]))
            carry["obs"] = np.asarray(tr.env.reset(seed=seed + carry["env_steps"])[0], np.float32)  # env restarts
            carry["ep_return"] = 0.0
        else:
            carry = tr.init(jax.random.PRNGKey(seed), seed)
        rows = [r for r in history[algo] if r["seed"] == seed] if not ck else ck["history"]
        history[algo] = [r for r in history[algo] if r["seed"] != seed] + rows
        t0 = time.time() - (rows[-1]["wall_s"] if rows else 0.0)
        bar = tqdm(total=cfg.total_steps, initial=carry["env_steps"], desc=f"{algo} {cfg.env_id} seed {seed}",
                   disable=not cfg.progress, unit="step")
        while carry["env_steps"] < cfg.total_steps:
            carry, metrics = tr.run_chunk(carry, cfg.eval_every)
            key = jax.random.PRNGKey(seed * 100_003 + carry["env_steps"])
            det = tr.evaluate(carry["agent"], key, True)
            sto = tr.evaluate(carry["agent"], key, False) if cfg.stochastic_eval else float("nan")
            m = metrics or {"loss": np.nan, "q": np.nan}
            row = {"algo": algo, "seed": seed, "env_steps": carry["env_steps"], "eval_return": det,
                   "eval_return_stochastic": sto, "train_return": carry["last_return"], "loss": float(m["loss"]),
                   "q": float(m["q"]), "wall_s": round(time.time() - t0, 1)}
            logger.log(row)
            history[algo].append(row)
            rows.append(row)
            save_ckpt(ckpt_path, {"carry": {k: v for k, v in carry.items()}, "history": rows})
            bar.update(cfg.eval_every)
            bar.set_postfix(eval=f"{det:.1f}")
        bar.close()
        states.append(jax.device_get(carry["agent"]))
    return states, None, None


def gym_check(agent, states, cfg: Config):
    """Evaluate the final (JAX-trained) policies in the real Gymnasium env, deterministic actions."""
    twin = GYM_TWINS.get(cfg.env_id)
    if twin is None:
        return None
    out = []
    act = jit_act(agent)  # shared in the process: a repeated main() in the tests does not trace it again
    for i, seed in enumerate(cfg.seeds):
        st = jax.tree_util.tree_map(lambda x: x[i], states)
        env = make_gym_env(twin)
        rets = []
        for ep in range(cfg.eval_episodes):
            obs, _ = env.reset(seed=50_000 + ep)
            done, ret = False, 0.0
            while not done:
                a = np.asarray(act(st, jnp.asarray(obs, jnp.float32)[None], jax.random.PRNGKey(0), True)[0])
                obs, r, term, trunc, _ = env.step(a)
                ret += float(r)
                done = term or trunc
            rets.append(ret)
        out.append(float(np.mean(rets)))
    return out


def plot_curves(history, cfg: Config, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if cfg.stochastic_eval else 1, figsize=(11, 4), squeeze=False)
    for j, key in enumerate(["eval_return", "eval_return_stochastic"][: axes.shape[1]]):
        ax = axes[0, j]
        for algo, rows in history.items():
            steps = sorted({r["env_steps"] for r in rows})
            vals = np.array([[r[key] for r in rows if r["env_steps"] == s] for s in steps])
            mean, std = vals.mean(axis=1), vals.std(axis=1)
            ax.plot(steps, mean, label=f"{algo.upper()} ({vals.shape[1]} seeds)")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("return")
        ax.set_title(f"{cfg.env_id}: {'deterministic' if j == 0 else 'stochastic'} evaluation")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def results_table(history, cfg: Config, checks, wall):
    lines = [f"## {cfg.env_id} ({cfg.backend}), {cfg.total_steps} steps, seeds {list(cfg.seeds)}", "",
             "| algo | final eval return (det.) mean +- std | per seed | final stochastic | best det. | "
             f"{'Gymnasium check (det.)' if any(c is not None for c in checks.values()) else 'n/a'} | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for algo, rows in history.items():
        last = [r for r in rows if r["env_steps"] == max(x["env_steps"] for x in rows)]
        det = np.array([r["eval_return"] for r in last])
        sto = np.array([r["eval_return_stochastic"] for r in last])
        sto_s = f"{sto.mean():.1f}" if np.isfinite(sto).all() else "-"
        best = max(r["eval_return"] for r in rows)
        chk = checks.get(algo)
        chk_s = " / ".join(f"{c:.1f}" for c in chk) if chk else "-"
        lines.append(f"| {algo.upper()} | {det.mean():.1f} +- {det.std():.1f} | {' / '.join(f'{d:.1f}' for d in det)} | "
                     f"{sto_s} | {best:.1f} | {chk_s} | {wall[algo]:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_args(argv)
    if cfg.resume:  # the saved config, except a --total-steps given now (to extend a run)
        run_dir = cfg.resume.rstrip("/")
        with open(os.path.join(run_dir, "config.pkl"), "rb") as f:
            saved = pickle.load(f)
        total = cfg.total_steps if "--total-steps" in argv else saved.total_steps
        cfg = dataclasses.replace(saved, resume=run_dir, total_steps=total)
    else:
        run_dir = os.path.join(cfg.out_dir, f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    validate(cfg)
    if cfg.backend == "brax":
        require_brax()  # a clear ImportError before anything is written
    os.makedirs(run_dir, exist_ok=True)  # (validated before anything is written)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=2)
    with open(os.path.join(run_dir, "config.pkl"), "wb") as f:
        pickle.dump(dataclasses.replace(cfg, resume=""), f)
    print(f"run dir: {run_dir}  (jax {jax.__version__}, devices {jax.devices()})")

    logger = Logger(run_dir, cfg.tensorboard)
    history, checks, wall = {a: [] for a in cfg.algos}, {}, {}
    for algo in cfg.algos:
        t0 = time.time()
        if cfg.backend == "gym":
            train_gym(algo, cfg, run_dir, logger, history)
            checks[algo] = None
        else:
            states, env, agent = train_jax(algo, cfg, run_dir, logger, history)
            checks[algo] = gym_check(agent, states, cfg) if cfg.gym_check else None
        wall[algo] = history[algo][-1]["wall_s"] if history[algo] else time.time() - t0
    logger.close()
    plot_curves(history, cfg, os.path.join(run_dir, "learning_curves.png"))
    table = results_table(history, cfg, checks, wall)

    if cfg.multigoal.enabled:
        from meow_rl.demo import mode_report, plot_multigoal, report_table, train_multigoal

        t0 = time.time()
        res = train_multigoal(cfg, seeds=cfg.seeds)
        rows, ref = mode_report(res, cfg.multigoal, cfg.seeds, jax.random.PRNGKey(7))
        plot_multigoal(rows, ref, os.path.join(run_dir, "multigoal_density.png"))
        d = cfg.multigoal
        table += (f"\n\n## MultiGoal demo ({d.steps} steps, seeds {list(cfg.seeds)}, {time.time() - t0:.0f} s): "
                  f"at s = (0, 0); {d.rollouts} stochastic rollouts from (0, 0) of <= {d.rollout_steps} steps\n\n"
                  + report_table(rows, ref) + "\n")
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(table + "\n")
    print("\n" + table)
    print(f"\noutputs: {run_dir}")
    return history


if __name__ == "__main__":
    main()
