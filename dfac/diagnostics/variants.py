"""Shared by the diagnostics: `instrument` records a diagnosis every k-th learner update, and `run_variants`
trains each variant `alg[:field=value;field=value]` (fields override the
`quick` micro settings, e.g. `ddn:updates_per_run=16`) for each seed, exactly as
`python train.py --phases micro --algs <alg> --seeds <seed>` would, and yield the trained learner."""
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from dfac.config import Config, parse_args
from dfac.envs import make_env
from dfac.learner import Learner
from dfac.run import train_job

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train import settings  # noqa: E402  (the project root: train.py's JobSettings builder)


def grad_norm(grads) -> float:
    """Euclidean norm of a list of gradients (None entries, from unused parameters, count as zero)."""
    return float(torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.zeros(()))))


def instrument(every: int, diagnose: Callable[[Learner, dict], dict]) -> None:
    """Wraps Learner.train_step (once per process): every `every`-th update, `diagnose(learner, batch)` runs on
    the sampled batch before the update, the step's change of the agent parameters is added as
    `dtheta_agent` and the update index as `update`; records collect in `learner._diag`."""
    if getattr(Learner.train_step, "__wrapped_diag__", False):
        return
    original = Learner.train_step

    def train_step(self, batch):
        k = getattr(self, "_diag_k", 0)
        self._diag_k = k + 1
        if k % every:
            return original(self, batch)
        rec = diagnose(self, batch)
        before = [p.detach().clone() for p in self.agent.parameters()]
        out = original(self, batch)
        rec["dtheta_agent"] = grad_norm([p.detach() - p0 for p, p0 in zip(self.agent.parameters(), before)])
        rec["update"] = k
        self.__dict__.setdefault("_diag", []).append(rec)
        return out

    train_step.__wrapped_diag__ = True
    Learner.train_step = train_step


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
            learner, _, hist = train_job(alg, seed, env, settings(cfg, alg, cfg.t_max, env), progress=False)
            env.close()
            yield spec, seed, learner, hist, time.time() - t0

