"""Print a run's TensorBoard scalars (the value logged at each evaluation step), one line per tag.

    python benchmarks/tb_scalars.py runs/halfcheetah-cpu-seed2 --prefix tdil

train.py logs, per method and seed at each evaluation: normalised_return and the last update's logs
(TDIL: disc_loss, tdil_reward = the batch mean of the raw r(s') = sum_j D_target(s', s'_E,j), expert_reward
= the expert batch's reward as the critic sees it, actor_loss, critic_loss, bc_loss, alpha).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--prefix", default="", help="only tags starting with this (e.g. tdil, gail/seed0)")
    a = p.parse_args()
    data: dict[str, dict[int, float]] = {}
    for f in sorted((a.run_dir / "tb").glob("events*")):  # a resumed run writes one file per command
        ea = EventAccumulator(str(f))
        ea.Reload()
        for tag in ea.Tags()["scalars"]:
            if tag.startswith(a.prefix):
                data.setdefault(tag, {}).update({e.step: e.value for e in ea.Scalars(tag)})
    for tag in sorted(data):
        steps = sorted(data[tag])
        print(f"{tag:36s} steps {steps[0]}..{steps[-1]}: " + " ".join(f"{data[tag][s]:.3g}" for s in steps))


if __name__ == "__main__":
    main()
