"""Per-seed table and mean +- std over seeds from several run directories of the same config.

Seeds run as separate processes (one per GPU, or one per locked command on a shared CPU) each write their own
runs/<config>-<time>/; this reads their metrics.csv files and prints one markdown table per algorithm.

    python summarise.py runs/brax-inverted-pendulum-cpu-A runs/brax-inverted-pendulum-cpu-B --at 10000 20000 --reach 1000

Columns: deterministic evaluation return (stochastic in brackets) at each --at step and at the end; the first
evaluation whose deterministic return is >= --reach, and the evaluation from which it stays >= --reach to the end;
training wall (the wall_s of the last evaluation: compiles, warm-up and evaluations included) and env steps/s (the
last evaluation's env steps / that wall). The last row is the
mean +- std over the seeds (std with ddof 0, as train.py's results.md).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
import tyro

# config.json fields that may differ between runs that are otherwise the same experiment
PER_RUN_FIELDS = ("seeds", "out_dir", "resume", "progress", "tensorboard")


@dataclasses.dataclass
class Args:
    runs: tyro.conf.Positional[tuple[str, ...]]
    """run directories (each with config.json and metrics.csv)"""
    at: tuple[int, ...] = ()
    """environment steps at which to report the evaluation return"""
    reach: float | None = None
    """return threshold for the 'first >=' and 'stays >=' columns"""


def load(runs) -> tuple[dict, dict]:
    """-> (shared config, {(algo, seed): rows sorted by env_steps}); rejects runs of different configs and repeated seeds."""
    if not runs:
        raise ValueError("give at least one run directory")
    shared, curves = None, {}
    for run in runs:
        cfg = json.load(open(os.path.join(run, "config.json")))
        common = {k: v for k, v in cfg.items() if k not in PER_RUN_FIELDS}
        if shared is None:
            shared = common
        elif common != shared:
            diff = sorted(k for k in set(common) | set(shared) if common.get(k) != shared.get(k))
            raise ValueError(f"{run}: config differs from {runs[0]} in {diff}")
        found = {}
        for r in csv.DictReader(open(os.path.join(run, "metrics.csv"))):
            found.setdefault((r["algo"], int(r["seed"])), []).append(r)
        for key, rows in found.items():
            if key in curves:
                raise ValueError(f"{run}: {key[0]} seed {key[1]} already in another run directory")
            curves[key] = sorted(rows, key=lambda r: int(r["env_steps"]))
    return shared, curves


def _first(steps, det, reach, stay):
    ok = det >= reach
    if stay:
        ok = np.flip(np.logical_and.accumulate(np.flip(ok)))
    return int(steps[np.argmax(ok)]) if ok.any() else None


def seed_row(rows, at, reach) -> dict:
    steps = np.array([int(r["env_steps"]) for r in rows])
    det = np.array([float(r["eval_return"]) for r in rows])
    sto = np.array([float(r["eval_return_stochastic"]) for r in rows])
    out = {}
    for s in at:
        if s not in steps:
            raise ValueError(f"no evaluation at {s} steps (evaluations at {steps.min()}..{steps.max()})")
        i = int(np.flatnonzero(steps == s)[0])
        out[f"at {s:,}"] = (det[i], sto[i])
    out[f"end ({steps[-1]:,})"] = (det[-1], sto[-1])
    if reach is not None:
        out[f"first >= {reach:g}"] = _first(steps, det, reach, stay=False)
        out[f"stays >= {reach:g} from"] = _first(steps, det, reach, stay=True)
    out["training wall (s)"] = float(rows[-1]["wall_s"])
    out["env steps/s"] = steps[-1] / float(rows[-1]["wall_s"])
    return out


def _cell(v) -> str:
    if v is None:
        return "never"
    if isinstance(v, tuple):
        return f"{v[0]:.1f} ({v[1]:.1f})"
    return f"{v:,}" if isinstance(v, int) else f"{v:.0f}"


def _mean_cell(vals) -> str:
    if any(v is None for v in vals):
        return f"{sum(v is None for v in vals)} of {len(vals)} never"
    x = np.array([v[0] if isinstance(v, tuple) else v for v in vals], float)
    if isinstance(vals[0], tuple):
        y = np.array([v[1] for v in vals], float)
        return f"{x.mean():.1f} +- {x.std():.1f} ({y.mean():.1f} +- {y.std():.1f})"
    return f"{x.mean():,.0f} +- {x.std():,.0f}"


def table(curves, at=(), reach=None) -> str:
    lines = []
    for algo in sorted({a for a, _ in curves}):
        seeds = sorted(s for a, s in curves if a == algo)
        rows = {s: seed_row(curves[(algo, s)], at, reach) for s in seeds}
        cols = list(rows[seeds[0]])
        lines += [f"**{algo}** ({len(seeds)} seeds: {', '.join(map(str, seeds))})", "",
                  "| seed | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        lines += [f"| {s} | " + " | ".join(_cell(rows[s][c]) for c in cols) + " |" for s in seeds]
        lines += [f"| mean +- std | " + " | ".join(_mean_cell([rows[s][c] for s in seeds]) for c in cols) + " |", ""]
    return "\n".join(lines)


def main(argv=None) -> str:
    args = tyro.cli(Args, args=argv)
    shared, curves = load(args.runs)
    text = f"## {shared['env_id']} ({shared['backend']}), config {shared['name']}, runs: {', '.join(args.runs)}\n\n"
    text += table(curves, args.at, args.reach)
    print(text)
    return text


if __name__ == "__main__":
    main()
