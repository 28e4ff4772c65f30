"""DFAC main job. `python train.py` (config `quick`, CPU):

1. the two-step matrix game with stochastic rewards: VDN, QMIX, DDN, DMIX trained with uniform exploration
   (QMIX's study of the game) and with PyMARL's annealed epsilon; table of greedy policy, learned vs true joint
   values, and a plot of learned vs true return quantiles;
2. a short micromanagement run (SMAX 3m, no StarCraft II): the same algorithms, same budget and seeds;
   win-rate curves and a table.

Outputs in runs/<config>-<time>/: config.json, env.json (versions, CPU, start time), metrics.csv, TensorBoard events, checkpoints/, *.png, results.md.
`--resume runs/<dir>` continues every job from its checkpoint. `--help` lists every option.
"""
import csv
import json
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from dfac.config import parse_args, to_json
from dfac.envs import make_env, reward_scale_factor
from dfac.matrix_eval import matrix_report
from dfac.run import JobSettings, train_job

FIELDS = ["phase", "alg", "seed", "t_env", "episodes", "epsilon", "test_return", "test_win_rate", "loss", "grad_norm",
          "q_taken_mean", "train_return", "wall_s"]


class Logger:
    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        path = run_dir / "metrics.csv"
        new = not path.exists()
        self.f = open(path, "a", newline="")
        self.csv = csv.DictWriter(self.f, FIELDS, extrasaction="ignore", restval="")
        if new:
            self.csv.writeheader()
        self.tb = SummaryWriter(str(run_dir / "tb"))

    def __call__(self, phase, t0):
        def log(row):
            row = {"phase": phase, "wall_s": round(time.time() - t0, 1), **row}
            self.csv.writerow(row)
            self.f.flush()
            for k in ("test_return", "test_win_rate", "loss", "q_taken_mean"):
                if k in row:
                    self.tb.add_scalar(f"{phase}/{row['alg']}-s{row['seed']}/{k}", row[k], row["t_env"])
        return log


def write_env(run_dir: Path) -> Path:
    """Record what ran this run: the same command and seed draw differently on another machine or package versions.
    env.json on a new run; the n-th `--resume` writes env_resume_<n>.json and leaves the earlier records as they are."""
    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
              if line.startswith("model name")]
    env = {"python": platform.python_version(), **{p: version(p) for p in ("torch", "jax", "jaxlib", "jaxmarl", "numpy")},
           "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
           "cpu": models[0] if models else platform.processor(),
           "start_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path, n = run_dir / "env.json", 0
    while path.exists():
        n += 1
        path = run_dir / f"env_resume_{n}.json"
    path.write_text(json.dumps(env, indent=2) + "\n")
    return path


def settings(cfg, alg, t_max, env, **kw) -> JobSettings:
    """The JobSettings of one (alg, env) job; `--reward_scale smac` resolves to the factor for `env`."""
    base = dict(t_max=t_max, batch_size=cfg.batch_size, buffer_size=cfg.buffer_size, lr=cfg.lr, gamma=cfg.gamma,
                grad_clip=cfg.grad_clip, target_update_interval=cfg.target_update_interval,
                epsilon_start=cfg.epsilon_start, epsilon_finish=cfg.epsilon_finish, epsilon_anneal_time=cfg.epsilon_anneal_time,
                rnn_hidden=cfg.per_alg("rnn_hidden_overrides", alg, cfg.rnn_hidden), mixing_embed_dim=cfg.mixing_embed_dim,
                hypernet_embed=cfg.hypernet_embed, n_quantiles=cfg.per_alg("n_quantiles", alg, 8),
                n_act_quantiles=cfg.n_act_quantiles, n_greedy_quantiles=cfg.n_greedy_quantiles, kappa=cfg.kappa, device=cfg.device, updates_per_run=cfg.updates_per_run,
                test_interval=cfg.test_interval, test_episodes=cfg.test_episodes, save_interval=cfg.save_interval,
                save_buffer=cfg.save_buffer, qplex_attention=cfg.qplex_attention, n_head=cfg.n_head,
                attend_reg_coef=cfg.attend_reg_coef, optimizer=cfg.optimizer, double_q=cfg.double_q,
                dfac_double_q=cfg.dfac_double_q, agent=cfg.agent, reward_scale=reward_scale_factor(cfg.reward_scale, env),
                qmix_state_value=cfg.qmix_state_value)
    base.update(kw)
    return JobSettings(**base)


def matrix_phase(cfg, run_dir, logger):
    """The two-step game, 8 parallel games, under each exploration regime of cfg.matrix_exploration:
    uniform (epsilon = 1 throughout, as in QMIX's study of the game) and/or annealed (epsilon 1 ->
    matrix_epsilon_finish over the first matrix_epsilon_anneal_frac of the episodes, PyMARL's schedule)."""
    results = {}
    for explore in cfg.matrix_explorations():
        eps_finish = 1.0 if explore == "uniform" else cfg.matrix_epsilon_finish
        for alg in cfg.alg_list():
            for seed in cfg.seed_list():
                env = make_env("matrix", n_envs=8, seed=seed, noise=cfg.matrix_noise, noise_scale=cfg.matrix_noise_scale)
                s = settings(cfg, alg, 2 * cfg.matrix_episodes, env, epsilon_start=1.0, epsilon_finish=eps_finish,
                             epsilon_anneal_time=max(1, int(2 * cfg.matrix_episodes * cfg.matrix_epsilon_anneal_frac)),
                             buffer_size=500, batch_size=min(cfg.batch_size, 500), target_update_interval=100,
                             n_quantiles=cfg.matrix_n_quantiles, lr=cfg.matrix_lr, test_interval=2 * cfg.matrix_episodes,
                             test_episodes=8, save_interval=0)
                t0 = time.time()
                learner, _, _ = train_job(alg, seed, env, s, logger(f"matrix-{explore}", t0),
                                          run_dir / "checkpoints" / f"matrix-{explore}-{alg}-s{seed}.pt", resume=bool(cfg.resume),
                                          progress=cfg.progress, desc=f"matrix {explore} {alg} s{seed}")
                results[(explore, alg, seed)] = {**matrix_report(learner, cfg.matrix_noise, cfg.matrix_noise_scale, cfg.gamma),
                                                 "wall_s": time.time() - t0}
    lines = ["| exploration | alg | seed | greedy joint actions (state 1 -> 2) | E[return] of greedy | optimal | "
             "learned Q_jt(2B) [[00,01],[10,11]] | E[Z_jt(s1)] learned / true | W1(Z_jt(s1), true) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (explore, alg, seed), r in results.items():
        q = r["q_jt_2B"]
        lines.append(f"| {explore} | {alg} | {seed} | {tuple(r['first'])} -> {tuple(r['second'])} | {r['greedy_expected_return']:.0f} | "
                     f"{'yes' if r['optimal'] else 'no'} | [[{q[0,0]:.2f}, {q[0,1]:.2f}], [{q[1,0]:.2f}, {q[1,1]:.2f}]] | "
                     f"{r['mean_state1']:.2f} / {r['true_mean_state1']:.2f} | {r['w1_state1']:.3f} |")
    plot_quantiles(results, cfg, run_dir / "matrix_quantiles.png")
    return "\n".join(lines), results


def plot_quantiles(results, cfg, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    explores = list(dict.fromkeys(e for e, _, _ in results))
    algs = list(dict.fromkeys(a for _, a, _ in results))
    fig, axes = plt.subplots(len(explores), len(algs), figsize=(4 * len(algs), 3.4 * len(explores)), squeeze=False)
    for row, explore in zip(axes, explores):
        for ax, alg in zip(row, algs):
            drawn = False
            for (e, a, seed), r in results.items():
                if (e, a) != (explore, alg):
                    continue
                K = len(r["true_state1_optimal"])
                taus = (np.arange(K) + 0.5) / K
                if len(r["z_state1"]) == K:
                    ax.plot(taus, r["z_state1"], "o-", ms=3, label=f"learned Z_jt, seed {seed}")
                else:
                    ax.axhline(r["z_state1"][0], ls="-", label=f"learned Q_jt, seed {seed}")
                if not r["optimal"]:
                    ax.step(taus, r["true_state1_greedy"], ":", color="gray", where="mid",
                            label="true, learned policy" if not drawn else None)
                    drawn = True
            ax.step(taus, r["true_state1_optimal"], "k--", where="mid", label="true, optimal policy")
            ax.set_title(f"{alg}, {explore} exploration: return at state 1", fontsize=9)
            ax.set_xlabel("tau")
            ax.legend(fontsize=7)
        row[0].set_ylabel("quantile of the return")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def micro_phase(cfg, run_dir, logger):
    histories, rows, scale = {}, [], None
    for seed in cfg.seed_list():
        env = make_env(cfg.env, map_name=cfg.map, n_envs=cfg.n_envs, seed=seed)
        scale = reward_scale_factor(cfg.reward_scale, env)
        for alg in cfg.alg_list():
            s = settings(cfg, alg, cfg.t_max, env)
            t0 = time.time()
            _, _, hist = train_job(alg, seed, env, s, logger("micro", t0), run_dir / "checkpoints" / f"{cfg.env}-{cfg.map}-{alg}-s{seed}.pt",
                                   resume=bool(cfg.resume), progress=cfg.progress, desc=f"{cfg.map} {alg} s{seed}")
            histories[(alg, seed)] = hist
            last = hist[-1]
            rows.append({"alg": alg, "seed": seed, "t_env": last["t_env"], "final_win": last["test_win_rate"],
                         "best_win": max(h["test_win_rate"] for h in hist), "final_return": last["test_return"],
                         "wall_s": time.time() - t0, **{k: round(v, 1) for k, v in s.timing.items() if k.endswith("_s")}})
        env.close()
    lines = ["| alg | seed | env steps | final greedy win rate | best win rate | final return | wall s (runner / learner) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['alg']} | {r['seed']} | {r['t_env']} | {r['final_win']:.2f} | {r['best_win']:.2f} | {r['final_return']:.2f} | "
                     f"{r['wall_s']:.0f} ({r.get('runner_s', 0):.0f} / {r.get('learner_s', 0):.0f}) |")
    plot_curves(histories, cfg, run_dir / "micro_win_rate.png")
    lines.append(f"\nLearner's targets use r x {scale:g} (--reward_scale {cfg.reward_scale}); win rates and returns are "
                 f"in the environment's own units.")
    return "\n".join(lines), rows


def plot_curves(histories, cfg, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (alg, seed), hist in histories.items():
        ax.plot([h["t_env"] for h in hist], [h["test_win_rate"] for h in hist], marker="o", ms=3, label=f"{alg} s{seed}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("greedy test win rate")
    ax.set_title(f"{cfg.env.upper()} {cfg.map}")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    cfg = parse_args(argv)
    torch.set_num_threads(cfg.threads)
    if cfg.resume:
        run_dir = Path(cfg.resume)
        if not (run_dir / "config.json").exists():
            raise SystemExit(f"--resume {run_dir}: no config.json there")
    else:
        run_dir = Path(cfg.out_dir) / f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(to_json(cfg))
    write_env(run_dir)
    logger = Logger(run_dir)
    report = [f"# DFAC run `{run_dir.name}`", "", "```", json.dumps({"config": cfg.config, "algs": cfg.algs, "seeds": cfg.seeds}), "```"]
    phases = cfg.phases.split(",")
    if "matrix" in phases:
        table, _ = matrix_phase(cfg, run_dir, logger)
        report += ["", f"## Two-step matrix game (noise {cfg.matrix_noise}, scale {cfg.matrix_noise_scale}, "
                   f"{cfg.matrix_episodes} episodes per job)", "", table]
        print("\n" + report[-1])
    if "micro" in phases:
        table, _ = micro_phase(cfg, run_dir, logger)
        report += ["", f"## {cfg.env.upper()} {cfg.map} ({cfg.t_max} env steps per job)", "", table]
        print("\n" + report[-1])
    (run_dir / "results.md").write_text("\n".join(report) + "\n")
    print(f"\nwrote {run_dir}/ (results.md, metrics.csv, tb/, checkpoints/, *.png)")
    return run_dir


if __name__ == "__main__":
    main()
