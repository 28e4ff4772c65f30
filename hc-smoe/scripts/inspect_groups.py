"""Which experts each method groups or keeps, and how well each reduced MoE layer reproduces the
original layer's output on calibration tokens (relative squared error).

    python scripts/inspect_groups.py --run runs/quick-<time> --seed 0 [--k 4]

Uses the trained toy model of a finished `train.py` run (runs/.../seed<N>/moe).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hcsmoe.calibration import collect_stats  # noqa: E402
from hcsmoe.data import encode, load_corpus, random_blocks  # noqa: E402
from hcsmoe.families import moe_blocks  # noqa: E402
from hcsmoe.methods import reduce_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a train.py run directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--methods", nargs="+", default=["hc-smoe", "hc-smoe:single", "hc-smoe:ward", "hc-smoe:router-logits",
                                                    "hc-smoe:weight", "m-smoe", "m-smoe:uniform:freq", "random", "o-prune", "f-prune",
                                                    "s-prune"])
    a = p.parse_args()
    from transformers import AutoModelForCausalLM

    import train

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(os.path.join(a.run, f"seed{a.seed}", "moe")).eval()
    calib = random_blocks(encode(load_corpus()[0]), 32, 128, np.random.default_rng(a.seed))
    stats = collect_stats(model, list(calib.split(8)), progress=False)
    for i, st in stats.items():
        print(f"layer {i}: top-k frequency per expert {[round(float(f), 3) for f in st.freq]}")
    print("\n| method | layer 0 | layer 1 | rel. output error L0 | L1 |\n|---|---|---|---|---|")
    cfg = train.parse_args([])
    cfg.target_experts = a.k
    for spec in a.methods:
        m = copy.deepcopy(model)
        info = reduce_model(m, stats, train.method_config(spec, cfg, a.seed))
        errs = []
        for (i, b), (_, b0) in zip(moe_blocks(m), moe_blocks(model)):
            x = stats[i].inputs[None]
            with torch.no_grad():
                errs.append(((b(x) - b0(x)).pow(2).sum() / b0(x).pow(2).sum()).item())
        desc = [str(v.get("groups", v.get("kept"))) for v in info.values()]
        print(f"| {spec} | {' | '.join(desc)} | {' | '.join(f'{e:.3f}' for e in errs)} |")


if __name__ == "__main__":
    main()
