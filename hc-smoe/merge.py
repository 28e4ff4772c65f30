"""Reduce the experts of a real MoE checkpoint without retraining (HC-SMoE) and save the smaller model.

    python merge.py --model Qwen/Qwen1.5-MoE-A2.7B-Chat --experts 45 --device cuda --dtype bfloat16 \\
        --calib-source c4 --out merged/qwen-45
    python merge.py --model runs/quick-.../seed0/moe --tokenizer bytes --experts 4 --out merged/toy

The model is loaded on the CPU; calibration runs layer by layer on --device, so only one decoder
layer is ever on the GPU. With --device auto the model is placed by accelerate's device_map="auto"
(--max-memory, --offload-folder: layers that do not fit go to CPU RAM or disk) and reduced layer by layer.
The result is a Hugging Face checkpoint: `AutoModelForCausalLM.from_pretrained(out)` for pruned models
(native layout), `from_pretrained(out, trust_remote_code=True)` for merged ones (remote layout), or
`hcsmoe.checkpoint.load_reduced(out)` for either.

--stock-out DIR also (or, without --out, only) writes a STOCK checkpoint of the family: every router output keeps
its own expert slot holding its cluster's merged weights, so `AutoModelForCausalLM.from_pretrained(DIR)` and tools
that read only the stock architecture (e.g. vLLM; not tried here) load it with no remote code and route exactly as
the merged model. It has NO size reduction (as large as the original): it is for compatibility.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from hcsmoe.calibration import collect_stats
from hcsmoe.checkpoint import checkpoint_bytes, count_parameters, save_reduced, save_stock
from hcsmoe.clustering import LINKAGES
from hcsmoe.data import c4_blocks, encode, load_corpus, random_blocks
from hcsmoe.merging import MERGES
from hcsmoe.methods import CLUSTERINGS, FEATURES, LAYER_BUDGETS, METHODS, ReduceConfig, check_num_experts, reduce_model


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="hub id or local path of a Mixtral / Qwen2-MoE / Qwen3-MoE / OLMoE model")
    p.add_argument("--experts", type=int, required=True, help="k experts kept per MoE layer")
    p.add_argument("--out", default="", help="output directory of the reduced checkpoint (config.json, hcsmoe.json, "
                   "model.safetensors); k experts per layer")
    p.add_argument("--stock-out", default="", help="output directory of a stock checkpoint of the family (E expert slots, "
                   "slot i = its cluster's merged expert; loads without remote code; NO size reduction)")
    p.add_argument("--method", default="hc-smoe", choices=METHODS)
    p.add_argument("--clustering", default="hierarchical", choices=CLUSTERINGS)
    p.add_argument("--linkage", default="average", choices=LINKAGES)
    p.add_argument("--feature", default="expert-output", choices=FEATURES)
    p.add_argument("--merge", default="", choices=("",) + MERGES,
                   help="default: the method's own (m-smoe: weight-matching, the others: freq)")
    p.add_argument("--layer-budget", default="", choices=("",) + LAYER_BUDGETS,
                   help="uniform: k experts in every layer; global: M-SMoE's per-layer counts averaging k (default: m-smoe global)")
    p.add_argument("--max-combos", type=int, default=100_000, help="O-prune subsets evaluated per layer")
    p.add_argument("--tokenizer", default="", help="tokenizer path/id (default: --model); 'bytes' = UTF-8 bytes (toy models)")
    p.add_argument("--calib-source", default="local", help="local (bundled KJV text) | c4 (needs datasets + internet) | a .txt file")
    p.add_argument("--calib-blocks", type=int, default=32, help="calibration blocks (paper: 32)")
    p.add_argument("--calib-seq-len", type=int, default=2048, help="tokens per calibration block (paper: 2048)")
    p.add_argument("--calib-batch", type=int, default=1, help="calibration blocks per forward")
    p.add_argument("--max-stored-tokens", type=int, default=8192, help="MoE inputs kept per layer (O-prune, fix-dom)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where each layer runs during calibration: cpu | cuda | auto (device_map='auto' over all GPUs)")
    p.add_argument("--max-memory", default="", help='with --device auto: JSON per device, e.g. \'{"0": "70GiB", "cpu": "120GiB"}\'')
    p.add_argument("--offload-folder", default="", help="with --device auto: where layers that fit nowhere are offloaded")
    p.add_argument("--dtype", default="bfloat16" if torch.cuda.is_available() else "float32")
    a = p.parse_args(argv)
    if not (a.out or a.stock_out):
        p.error("give --out (reduced checkpoint), --stock-out (stock checkpoint) or both")
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok_name = a.tokenizer or a.model
    tokenizer = None if tok_name == "bytes" else AutoTokenizer.from_pretrained(tok_name)
    encode_fn = encode if tokenizer is None else (lambda s: tokenizer(s, add_special_tokens=False)["input_ids"])
    placement = {}
    if a.device == "auto":                            # accelerate: spread over GPUs, the rest offloaded to CPU / disk
        placement = {"device_map": "auto", **({"offload_folder": a.offload_folder} if a.offload_folder else {}),
                     **({"max_memory": {int(k) if k.isdigit() else k: v for k, v in json.loads(a.max_memory).items()}}
                        if a.max_memory else {})}
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype), **placement).eval()
    check_num_experts(model, a.experts)              # a bad k or an unsupported architecture fails before calibration
    before = count_parameters(model)
    rng = np.random.default_rng(a.seed)
    if a.calib_source == "c4":
        calib = c4_blocks(tokenizer, a.calib_blocks, a.calib_seq_len, a.seed)
    else:
        text = open(a.calib_source).read() if a.calib_source.endswith(".txt") else load_corpus()[0][:2_000_000]
        calib = random_blocks(np.asarray(encode_fn(text), dtype=np.int64), a.calib_blocks, a.calib_seq_len, rng)
    t = time.time()
    stats = collect_stats(model, list(calib.split(a.calib_batch)), device=a.device, max_stored_tokens=a.max_stored_tokens)
    t_cal = time.time() - t
    rc = ReduceConfig(method=a.method, num_experts=a.experts, clustering=a.clustering, linkage=a.linkage,
                      feature=a.feature, merge=a.merge, layer_budget=a.layer_budget, seed=a.seed, max_combos=a.max_combos,
                      device=("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    t = time.time()
    info = reduce_model(model, stats, rc)
    t_red = time.time() - t
    after = count_parameters(model)
    extra = {"method": vars(a), "groups": {str(k): v for k, v in info.items()}}
    report = {"params_before": before["params"], "params_after": after["params"],
              "expert_params_before": before["expert_params"], "expert_params_after": after["expert_params"],
              "bytes_before_on_disk": checkpoint_bytes(a.model) if os.path.isdir(a.model) else None,
              "param_bytes_before": before["param_bytes"], "calibration_s": round(t_cal, 2), "reduce_s": round(t_red, 2)}
    if a.out:
        layout = save_reduced(model, a.out, extra=extra)
        report.update({"bytes_after_on_disk": checkpoint_bytes(a.out), "layout": layout, "load": (
            f"AutoModelForCausalLM.from_pretrained({a.out!r}{', trust_remote_code=True' if layout == 'remote' else ''})")})
    if a.stock_out:                                   # after save_reduced: expands the experts in memory (to_stock)
        save_stock(model, a.stock_out, extra=extra)
        report.update({"stock_params": count_parameters(model)["params"],
                       "stock_bytes_on_disk": checkpoint_bytes(a.stock_out),
                       "stock_load": f"AutoModelForCausalLM.from_pretrained({a.stock_out!r})"})
    if tokenizer is not None:
        for d in (a.out, a.stock_out):
            if d:
                tokenizer.save_pretrained(d)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
