"""Model-family adapters: where a transformers 5.x model keeps its sparse MoE blocks.

In transformers 5.x, Mixtral, Qwen2-MoE, Qwen3-MoE and OLMoE share one layout:

    layer.mlp.gate     top-k router: weight (E, d); forward -> (logits, top-k weights, top-k indices)
    layer.mlp.experts  FUSED expert weights: gate_up_proj (E, 2*d_ff, d), down_proj (E, d, d_ff), act_fn

so an adapter only says how to find the decoder layers, which of them are sparse, and how the
router normalises its top-k weights. A new family with this layout is a few lines: add a
`Family(...)` to FAMILIES. Shared experts (Qwen2-MoE `mlp.shared_expert`) are never touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class Family:
    model_type: str                                     # config.model_type
    renormalize: Callable[[nn.Module], bool]            # does the router renormalise top-k weights?
    layers: Callable[[nn.Module], nn.ModuleList] = lambda model: model.model.layers
    shared_expert_attrs: tuple[str, ...] = ()           # left untouched by merging; listed for docs


FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in [
        Family("mixtral", renormalize=lambda router: True),
        Family("qwen2_moe", renormalize=lambda router: bool(router.norm_topk_prob),
               shared_expert_attrs=("shared_expert", "shared_expert_gate")),
        Family("qwen3_moe", renormalize=lambda router: bool(router.norm_topk_prob)),
        Family("olmoe", renormalize=lambda router: bool(router.norm_topk_prob)),
    ]
}


class UnsupportedArchitecture(ValueError):
    pass


def family_of(model: nn.Module) -> Family:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        raise UnsupportedArchitecture(
            f"unsupported architecture {model_type!r} ({type(model).__name__}); supported model_type values: "
            f"{sorted(FAMILIES)}. Add a Family(...) in hcsmoe/families.py for a new MoE layout.")
    return FAMILIES[model_type]


def is_sparse_block(mlp: nn.Module) -> bool:
    return hasattr(mlp, "gate") and hasattr(mlp, "experts") and hasattr(mlp.gate, "weight")


def moe_blocks(model: nn.Module) -> list[tuple[int, nn.Module]]:
    """(layer index, sparse MoE block) for every sparse layer (Qwen's dense `mlp_only_layers` are skipped)."""
    fam = family_of(model)
    blocks = [(i, layer.mlp) for i, layer in enumerate(fam.layers(model)) if is_sparse_block(layer.mlp)]
    if not blocks:
        raise UnsupportedArchitecture(f"{type(model).__name__} has no sparse MoE block (mlp.gate + mlp.experts)")
    return blocks


def num_experts(block: nn.Module) -> int:
    """Number of distinct expert weight sets the block holds now (E before merging, k after)."""
    return block.experts.gate_up_proj.shape[0]


def router_outputs(block: nn.Module) -> int:
    return block.gate.weight.shape[0]


def top_k(block: nn.Module) -> int:
    return int(block.gate.top_k)
