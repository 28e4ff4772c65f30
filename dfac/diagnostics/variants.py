"""Shared by the diagnostics: train each variant `alg[:field=value;field=value]` (fields override the
`quick` micro settings, e.g. `ddn:updates_per_run=16`) for each seed, exactly as
`python train.py --phases micro --algs <alg> --seeds <seed>` would, and yield the trained learner."""
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from dfac.config import Config, parse_args
from dfac.envs import make_env
from dfac.run import train_job

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train import settings  # noqa: E402  (the project root: train.py's JobSettings builder)


def variant_config(spec: str, seed: int, t_max: int) -> Config:
    alg, _, opts = spec.partition(":")
    argv = ["--phases", "micro", "--algs", alg, "--seeds", str(seed), "--t_max", str(t_max), "--progress", "false"]
    for kv in filter(None, opts.split(";")):
        k, v = kv.split("=", 1)
        argv += [f"--{k}", v]
    return parse_args(argv)


def run_variants(variants: str, seeds: str, t_max: int,
                 before_job: Optional[Callable[[Config], None]] = None) -> Iterator[tuple]:
    """Yields (spec, seed, learner, history, wall seconds) per variant and seed; `before_job(cfg)` runs
    before each job is built (the diagnostics use it to instrument Learner.train_step)."""
    for seed in [int(x) for x in seeds.split(",")]:
        for spec in variants.split(","):
            cfg = variant_config(spec, seed, t_max)
            alg = spec.partition(":")[0]
            if before_job is not None:
                before_job(cfg)
            env = make_env(cfg.env, map_name=cfg.map, n_envs=cfg.n_envs, seed=seed)
            t0 = time.time()
            learner, _, hist = train_job(alg, seed, env, settings(cfg, alg, cfg.t_max), progress=False)
            env.close()
            yield spec, seed, learner, hist, time.time() - t0

