"""Saving a reduced model as a Hugging Face checkpoint that holds only the k experts per layer.

Two layouts, both written by transformers' own `save_pretrained` (safetensors, sharded when large) and both
read back by `AutoModelForCausalLM.from_pretrained`:

  native   every sparse layer has k router outputs and k experts (the pruning methods, or nothing merged),
           with one k and one top_k for the whole model: the config's expert count is set to k and the
           experts are the family's own module, so it is a stock checkpoint of the family
           (`AutoModelForCausalLM.from_pretrained(path)`).
  remote   merged experts (E router outputs -> k experts) or a k that differs between layers: the family's
           config cannot express this, so the checkpoint carries `modeling_hcsmoe.py` (reduced_modeling.py)
           and `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` loads it.

`load_reduced(path)` loads either layout without trusting remote code (it uses this package's copy of the
same classes). `hcsmoe.json` records the layout, the per-layer structure and how the model was reduced.

A third layout is for compatibility only, with NO size reduction (`save_stock`):

  stock    every router output keeps its own expert slot, and slot i holds the merged weights of its cluster c(i)
           (E slots, k distinct weight sets per layer), router unchanged; the config keeps E, so it is a stock
           checkpoint of the family that transformers' own class (and tools reading only stock architectures)
           loads without remote code. It routes exactly as the merged model: a token whose top-k hits two members
           of one cluster gets w_i E'_c(x) + w_j E'_c(x) = (w_i + w_j) E'_c(x), the merged model's summed weight
           (equal up to float rounding, tested). It is as large on disk as the original model.
"""
from __future__ import annotations

import json
import os
import shutil

import torch
import torch.nn as nn
from transformers import AutoConfig, AutoModelForCausalLM

from .families import family_of, moe_blocks, num_experts, router_outputs, top_k
from .reduced_modeling import REDUCED_CLASSES, MergedExperts

STRUCTURE_FILE = "hcsmoe.json"
MODELING_FILE = "modeling_hcsmoe.py"
EXPERT_COUNT_ATTRS = ("num_local_experts", "num_experts")      # Mixtral | Qwen2-MoE, Qwen3-MoE, OLMoE


def reduced_structure(model) -> dict:
    """{layer: {router_outputs, num_experts, top_k}} for every sparse layer whose experts were reduced."""
    out = {}
    for i, block in moe_blocks(model):
        if isinstance(block.experts, MergedExperts):
            out[str(i)] = {"router_outputs": router_outputs(block), "num_experts": block.experts.num_experts,
                           "top_k": top_k(block)}
    return out


def native_shape(model) -> tuple[int, int] | None:
    """(k, top_k) when the model is exactly a stock model of its family with k experts in every sparse layer."""
    shapes = set()
    for _, block in moe_blocks(model):
        k = num_experts(block)
        if router_outputs(block) != k:
            return None
        ex = block.experts
        if isinstance(ex, MergedExperts) and not torch.equal(ex.expert_to_cluster.cpu(), torch.arange(k)):
            return None
        shapes.add((k, top_k(block)))
    return shapes.pop() if len(shapes) == 1 else None


def set_expert_count(config, k: int, top_k_: int | None = None) -> None:
    for attr in EXPERT_COUNT_ATTRS:
        if hasattr(config, attr):
            setattr(config, attr, k)
    if top_k_ is not None:
        config.num_experts_per_tok = top_k_


def _family_experts(block, config, gate_up_proj: torch.Tensor, down_proj: torch.Tensor,
                    requires_grad: bool = True) -> nn.Module:
    """The family's own experts module (expert count from `config`) holding the given fused tensors."""
    with torch.device("meta"):
        native = type(block)(config).experts
    native.gate_up_proj = nn.Parameter(gate_up_proj, requires_grad=requires_grad)
    native.down_proj = nn.Parameter(down_proj, requires_grad=requires_grad)
    return native


@torch.no_grad()
def to_native(model):
    """IN PLACE: a model whose every sparse layer has k router outputs -> k experts becomes a stock model of its
    family with k experts (config expert count = k; MergedExperts -> the family's own experts module, same tensors)."""
    shape = native_shape(model)
    if shape is None:
        raise ValueError("merged experts (E router outputs -> k < E experts) or a k that differs between layers "
                         "have no native config; save them with the remote-code layout (save_reduced does)")
    k, tk = shape
    set_expert_count(model.config, k, tk)
    for _, block in moe_blocks(model):
        ex = block.experts
        if isinstance(ex, MergedExperts):                           # the family's experts module, k experts
            block.experts = _family_experts(block, model.config, ex.gate_up_proj.data, ex.down_proj.data,
                                            ex.gate_up_proj.requires_grad)
        block.gate.num_experts = k
    return model


def stock_structure(model) -> dict:
    """{layer: {router_outputs, distinct_experts, expert_to_cluster}} for every sparse layer (before to_stock)."""
    out = {}
    for i, block in moe_blocks(model):
        ex = block.experts
        mapping = ex.expert_to_cluster.cpu().tolist() if isinstance(ex, MergedExperts) else list(range(num_experts(block)))
        out[str(i)] = {"router_outputs": router_outputs(block), "distinct_experts": num_experts(block),
                       "expert_to_cluster": mapping}
    return out


@torch.no_grad()
def to_stock(model):
    """IN PLACE: every reduced layer gets back one expert slot per router output, slot i holding its cluster's merged
    weights (E'_{c(i)}), in the family's own experts module; the router is not touched. The result is a stock model of
    its family with as many experts as router outputs: no size reduction, for loaders that need the stock architecture.

    Needs one router-output count and one top_k in all sparse layers (any merge of HC-SMoE / M-SMoE / random grouping,
    with a uniform or global per-layer budget; pruning to one k); pruning to different k per layer has none."""
    blocks = moe_blocks(model)
    shapes = {(router_outputs(b), top_k(b)) for _, b in blocks}
    if len(shapes) != 1:
        raise ValueError(f"router outputs / top_k differ between sparse layers ({sorted(shapes)}): no single stock config "
                         "(pruned to a different k per layer); save it with save_reduced (remote-code layout)")
    (r, tk), = shapes
    set_expert_count(model.config, r, tk)
    for i, block in blocks:
        ex = block.experts
        if isinstance(ex, MergedExperts):
            idx = ex.expert_to_cluster.to(ex.gate_up_proj.device)
            block.experts = _family_experts(block, model.config, ex.gate_up_proj.data[idx].contiguous(),
                                            ex.down_proj.data[idx].contiguous(),      # slot i <- E'_{c(i)} (copies)
                                            ex.gate_up_proj.requires_grad)
        elif num_experts(block) != r:
            raise ValueError(f"layer {i}: {num_experts(block)} experts for {r} router outputs and no E -> k map")
        block.gate.num_experts = r
    for attr in ("hcsmoe_layers", "auto_map"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    return model


def save_reduced(model, path: str, extra: dict | None = None) -> str:
    """Write the reduced model to `path` (native layout when possible, else remote-code layout). Returns the layout."""
    family_of(model)
    os.makedirs(path, exist_ok=True)
    structure = reduced_structure(model)
    if native_shape(model) is not None:
        layout = "native"
        to_native(model)
        for attr in ("hcsmoe_layers", "auto_map"):
            if hasattr(model.config, attr):
                delattr(model.config, attr)
    else:
        layout = "remote"
        model.config.hcsmoe_layers = structure
        cls = REDUCED_CLASSES[model.config.model_type]
        model.config.auto_map = {"AutoModelForCausalLM": f"{MODELING_FILE[:-3]}.{cls.__name__}"}
        shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reduced_modeling.py"),
                        os.path.join(path, MODELING_FILE))
    model.save_pretrained(path)
    with open(os.path.join(path, STRUCTURE_FILE), "w") as f:
        json.dump({"layout": layout, "layers": structure, **(extra or {})}, f, indent=1)
    return layout


def save_stock(model, path: str, extra: dict | None = None) -> dict:
    """Write the reduced model as a STOCK checkpoint of its family (to_stock, IN PLACE; no size reduction):
    `AutoModelForCausalLM.from_pretrained(path)` loads it with no remote code. Returns the per-layer map written to
    hcsmoe.json (which router outputs share one merged expert)."""
    family_of(model)
    structure = stock_structure(model)
    to_stock(model)
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    with open(os.path.join(path, STRUCTURE_FILE), "w") as f:
        json.dump({"layout": "stock", "layers": structure, **(extra or {})}, f, indent=1)
    return structure


def load_reduced(path: str, dtype: torch.dtype | None = None, **kwargs):
    """Load a checkpoint written by save_reduced (either layout) without trusting remote code."""
    config = AutoConfig.from_pretrained(path)
    kw = {**({"dtype": dtype} if dtype is not None else {}), **kwargs}
    if getattr(config, "hcsmoe_layers", None):
        model = REDUCED_CLASSES[config.model_type].from_pretrained(path, config=config, **kw)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, config=config, **kw)
    return model.eval()


def checkpoint_bytes(path: str) -> int:
    """Bytes of the weight files (*.safetensors) in a checkpoint directory."""
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))


def count_parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    experts = sum(p.numel() for _, b in moe_blocks(model) for p in b.experts.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"params": total, "expert_params": experts, "param_bytes": nbytes}
