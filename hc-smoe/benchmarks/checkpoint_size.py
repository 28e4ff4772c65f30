"""Parameters and bytes on disk before/after reduction, and the save -> AutoModelForCausalLM.from_pretrained round trip.

For each supported family: a tiny model from its transformers config (random weights, E experts), saved with
save_pretrained; reduced E -> k by HC-SMoE (merged: remote layout) and by F-prune (pruned: native layout);
saved with save_reduced; loaded back with transformers' own from_pretrained; the largest |logit difference| to
the in-memory reduced model is printed (0 = identical).

    python benchmarks/checkpoint_size.py [--hidden 128 --ffn 256 --experts 8 --k 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hcsmoe-modules-"))

from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.utils import logging  # noqa: E402

from hcsmoe.calibration import collect_stats  # noqa: E402
from hcsmoe.checkpoint import checkpoint_bytes, count_parameters, save_reduced  # noqa: E402
from hcsmoe.methods import ReduceConfig, reduce_model  # noqa: E402
from hcsmoe.toy import TINY_FAMILIES, build_tiny  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--ffn", type=int, default=256)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--k", type=int, default=4)
    a = p.parse_args(argv)
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.set_num_threads(1)
    ids = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(0))
    print(f"tiny models: d={a.hidden}, d_ff={a.ffn}, 2 layers, E={a.experts} -> k={a.k}, float32\n")
    print("| family | method | layout | params before | params after | bytes on disk before | after | bytes saved "
          "| max abs logit diff after from_pretrained |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for family in TINY_FAMILIES:
            for method in ("hc-smoe", "f-prune"):
                model = build_tiny(family, seed=0, hidden=a.hidden, ffn=a.ffn, experts=a.experts)
                src, out = os.path.join(tmp, f"{family}-src"), os.path.join(tmp, f"{family}-{method}")
                model.save_pretrained(src)
                before = count_parameters(model)["params"]
                reduce_model(model, collect_stats(model, [ids], progress=False),
                             ReduceConfig(method=method, num_experts=a.k))
                after = count_parameters(model)["params"]
                layout = save_reduced(model, out)
                loaded = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=layout == "remote").eval()
                with torch.no_grad():
                    diff = (loaded(input_ids=ids).logits - model(input_ids=ids).logits).abs().max().item()
                b0, b1 = checkpoint_bytes(src), checkpoint_bytes(out)
                print(f"| {family} | {method} | {layout} | {before:,} | {after:,} | {b0:,} | {b1:,} | "
                      f"{100 * (b0 - b1) / b0:.1f}% | {diff:.1e} |")


if __name__ == "__main__":
    main()
