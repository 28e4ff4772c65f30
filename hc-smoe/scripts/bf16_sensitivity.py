"""Why two placements of one bf16 model can give different reduced models: the CPU half of the question.

    python scripts/bf16_sensitivity.py            # tiny random Mixtral-class model in bfloat16, CPU only

1. Paths: the same bf16 model calibrated and reduced (HC-SMoE) in memory (`collect_stats(model)`) and with its
   decoder layers offloaded to disk by accelerate (`device_map`, `collect_stats(model, device="auto")`). Prints
   whether the frequencies, the merged expert weights and the reduced model's logits are bit-identical.
2. Sensitivity: the same in-memory run, but with ONE entry of the bf16 rotary cos table moved by one bf16 ulp
   (the size of difference that two devices' cos/sin routines can make before the table is rounded to bf16).
   Prints how many router top-k decisions, frequencies, merged weights and logits change.
3. How often such a difference arises from the routine alone: the model's cos/sin table computed by torch on this
   CPU in fp32 vs the correctly rounded one (fp64 then fp32), counted before and after rounding to bf16.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hcsmoe.calibration import collect_stats  # noqa: E402
from hcsmoe.families import moe_blocks  # noqa: E402
from hcsmoe.methods import ReduceConfig, reduce_model  # noqa: E402
from hcsmoe.toy import build_tiny  # noqa: E402


def topk_sets(stats, k):
    return torch.sort(stats.router_logits.topk(k, dim=-1).indices, dim=-1).values


def merged(model):
    return {i: (b.experts.gate_up_proj.detach(), b.experts.down_proj.detach()) for i, b in moe_blocks(model)}


def compare(name, stats_a, stats_b, model_a, model_b, info_a, info_b, ids):
    flips = [int((topk_sets(stats_a[i], stats_a[i].top_k) != topk_sets(stats_b[i], stats_b[i].top_k)).any(-1).sum())
             for i in stats_a]
    dfreq = [float((stats_a[i].freq - stats_b[i].freq).abs().max()) for i in stats_a]
    ma, mb = merged(model_a), merged(model_b)
    n_diff = sum(int((x != y).sum()) for i in ma for x, y in zip(ma[i], mb[i]))
    n_all = sum(x.numel() for i in ma for x in ma[i])
    with torch.no_grad():
        la, lb = model_a(input_ids=ids).logits.float(), model_b(input_ids=ids).logits.float()
    print(f"{name}:\n  tokens whose top-k expert set differs, per layer: {flips} of {stats_a[0].n_tokens}"
          f"\n  max |freq difference| per layer: {['%.2g' % d for d in dfreq]}"
          f"\n  groups identical: {sum(info_a[i] == info_b[i] for i in info_a)}/{len(info_a)} layers"
          f"\n  merged expert weights differing: {n_diff} of {n_all} bf16 entries ({100 * n_diff / n_all:.3f}%)"
          f"\n  reduced model's logits: max |a - b| = {(la - lb).abs().max().item():.3g} (logit std {la.std().item():.3g}),"
          f" bit-identical: {bool(torch.equal(la, lb))}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--ffn", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--blocks", type=int, default=8, help="calibration blocks")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--position", type=int, default=-1, help="rotary table row perturbed (default: seq_len // 2)")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM

    work = tempfile.mkdtemp(prefix="hcsmoe-bf16-")
    build_tiny("mixtral", hidden=a.hidden, ffn=a.ffn, layers=a.layers, heads=4, kv_heads=2, experts=a.experts, top_k=2,
               max_len=a.seq_len).to(torch.bfloat16).save_pretrained(work)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (1, a.seq_len), generator=g) for _ in range(a.blocks)]
    ids = torch.randint(0, 256, (2, 128), generator=g)
    cfg = ReduceConfig(method="hc-smoe", num_experts=a.experts // 2)
    print(f"tiny Mixtral, bf16, hidden {a.hidden}, {a.layers} layers x {a.experts} experts (top-2) -> "
          f"{a.experts // 2}; calibration {a.blocks} x {a.seq_len} tokens; torch {torch.__version__}, CPU", flush=True)

    ref = AutoModelForCausalLM.from_pretrained(work, dtype=torch.bfloat16).eval()
    stats_a = collect_stats(ref, batches, progress=False)
    model_a = copy.deepcopy(ref)
    info_a = reduce_model(model_a, stats_a, cfg)

    # 1. the same model with decoder layers 1.. offloaded to disk (accelerate), calibrated on its execution device
    dmap = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu",
            **{f"model.layers.{i}": ("cpu" if i == 0 else "disk") for i in range(a.layers)}}
    off = AutoModelForCausalLM.from_pretrained(work, dtype=torch.bfloat16, device_map=dmap,
                                               offload_folder=os.path.join(work, "offload")).eval()
    stats_b = collect_stats(off, batches, device="auto", progress=False)
    info_b = reduce_model(off, stats_b, cfg)
    compare("1. in memory vs decoder layers offloaded to disk (both on this CPU, bf16)",
            stats_a, stats_b, model_a, off, info_a, info_b, ids)

    # 2. one bf16 ulp in one entry of the rotary cos table
    pos = a.position if a.position >= 0 else a.seq_len // 2

    def nudge(module, args, out):
        cos, sin = out
        cos = cos.clone()
        cos[..., pos, 0:1].view(torch.int16).add_(1)                 # the next bf16 value (same sign)
        return cos, sin

    h = ref.model.rotary_emb.register_forward_hook(nudge)
    try:
        stats_c = collect_stats(ref, batches, progress=False)
    finally:
        h.remove()
    model_c = copy.deepcopy(ref)
    info_c = reduce_model(model_c, stats_c, cfg)
    compare(f"2. calibration with cos[position {pos}, dim 0] one bf16 ulp away (everything else identical)",
            stats_a, stats_c, model_a, model_c, info_a, info_c, ids)

    # 3. how often a different (but accurate) cos/sin routine changes the bf16 table
    rot = ref.model.rotary_emb
    freqs = torch.arange(a.seq_len)[:, None].float() * rot.inv_freq.float()
    for fn in ("cos", "sin"):
        x32, x64 = getattr(torch, fn)(freqs), getattr(torch, fn)(freqs.double()).float()
        print(f"3. {fn} table ({a.seq_len} positions x {freqs.shape[1]}): torch fp32 vs correctly rounded: "
              f"{int((x32 != x64).sum())} fp32 entries differ, {int((x32.bfloat16() != x64.bfloat16()).sum())} after "
              f"rounding to bf16 (of {x32.numel()})", flush=True)
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
