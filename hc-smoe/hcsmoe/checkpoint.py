"""Saving and loading a reduced model: config.json + hcsmoe.json (per-layer structure) + model.safetensors.

The safetensors file holds only the k merged experts per layer (plus the E -> k map), so the size
reduction is real on disk. Loading rebuilds the transformers model from its own config class,
reshapes each reduced layer as recorded, then loads the weights (strict: every tensor must match).
"""
from __future__ import annotations

import json
import os

import torch
import torch.nn as nn
from safetensors.torch import load_model, save_model
from transformers import AutoConfig, AutoModelForCausalLM

from .families import moe_blocks, router_outputs
from .merging import MergedExperts

STRUCTURE_FILE = "hcsmoe.json"
WEIGHTS_FILE = "model.safetensors"


def reduced_structure(model) -> dict:
    out = {}
    for i, block in moe_blocks(model):
        if isinstance(block.experts, MergedExperts):
            out[str(i)] = {"router_outputs": router_outputs(block), "num_experts": block.experts.num_experts,
                           "top_k": int(block.gate.top_k)}
    return out


def save_reduced(model, path: str, extra: dict | None = None) -> str:
    os.makedirs(path, exist_ok=True)
    model.config.save_pretrained(path)
    with open(os.path.join(path, STRUCTURE_FILE), "w") as f:
        json.dump({"layers": reduced_structure(model), **(extra or {})}, f, indent=1)
    save_model(model, os.path.join(path, WEIGHTS_FILE))
    return path


def load_reduced(path: str, dtype: torch.dtype | None = None):
    config = AutoConfig.from_pretrained(path)
    model = AutoModelForCausalLM.from_config(config, **({"dtype": dtype} if dtype is not None else {}))
    with open(os.path.join(path, STRUCTURE_FILE)) as f:
        layers = json.load(f)["layers"]
    for i, block in moe_blocks(model):
        spec = layers.get(str(i))
        if spec is None:
            continue
        r, k = spec["router_outputs"], spec["num_experts"]
        w = block.gate.weight
        block.gate.weight = nn.Parameter(torch.empty(r, w.shape[1], dtype=w.dtype))
        block.gate.num_experts = r
        block.gate.top_k = spec["top_k"]
        ex = block.experts
        block.experts = MergedExperts(torch.empty((k,) + ex.gate_up_proj.shape[1:], dtype=ex.gate_up_proj.dtype),
                                      torch.empty((k,) + ex.down_proj.shape[1:], dtype=ex.down_proj.dtype),
                                      ex.act_fn, torch.zeros(r, dtype=torch.long))
    load_model(model, os.path.join(path, WEIGHTS_FILE), strict=True)
    model.eval()
    return model


def count_parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    experts = sum(p.numel() for _, b in moe_blocks(model) for p in b.experts.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"params": total, "expert_params": experts, "param_bytes": nbytes}
