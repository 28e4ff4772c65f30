"""How many neurons M-SMoE's weight matching moves when it aligns each expert to the layer's expert 0.

    python scripts/check_alignment.py --run runs/quick-<time>

Uses the trained toy models of a finished `train.py` run (runs/.../seed<N>/moe). 0 everywhere means the experts'
neurons are already aligned (as after sparse upcycling), so `m-smoe` and `m-smoe:freq` merge identically.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hcsmoe.families import moe_blocks  # noqa: E402
from hcsmoe.merging import weight_matching_permutation  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a train.py run directory")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = p.parse_args()
    from transformers import AutoModelForCausalLM

    for seed in a.seeds:
        m = AutoModelForCausalLM.from_pretrained(os.path.join(a.run, f"seed{seed}", "moe"))
        moved = [int((weight_matching_permutation(b.experts, 0, e) != torch.arange(b.experts.down_proj.shape[-1])).sum())
                 for _, b in moe_blocks(m) for e in range(1, b.experts.gate_up_proj.shape[0])]
        print(f"seed {seed}: neurons moved by weight matching per (layer, expert 1..E-1): {moved}")


if __name__ == "__main__":
    main()
