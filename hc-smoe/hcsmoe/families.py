"""Model-family adapters: where a transformers 5.x model keeps its sparse MoE blocks.

In transformers 5.x, Mixtral, Qwen2-MoE, Qwen3-MoE and OLMoE share one layout:

    layer.mlp.gate     top-k router: weight (E, d); forward -> (logits, top-k weights, top-k indices)
    layer.mlp.experts  FUSED expert weights: gate_up_proj (E, 2*d_ff, d), down_proj (E, d, d_ff), act_fn

so an adapter only says how to find the decoder layers, which of them are sparse, and how the
router normalises its top-k weights. Checked against the modeling files of transformers 5.24: every router is
softmax(logits in float32) -> torch.topk(top_k) -> (Mixtral always, the others when `norm_topk_prob`) divide the
top-k probabilities by their sum; every experts class is wrapped by `use_experts_implementation` with the
default layout flags (gate and up CONCATENATED as [gate; up] along dim 1, not transposed, no bias, no
post-expert norm; gpt-oss, for one, is interleaved, transposed and biased), which
`check_expert_layout` asserts for every block, so a family stored differently fails loudly instead of being
merged along the wrong axis. `tests/test_router_adapters.py` compares our top-k counts with the routers' own.
A new family with this layout is a few lines: add a `Family(...)` to FAMILIES. Shared experts (Qwen2-MoE `mlp.shared_expert`) are never touched.
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


# the layout flags transformers' `use_experts_implementation` sets on an experts module, and the values this code reads
EXPECTED_LAYOUT = {"is_transposed": False, "is_concatenated": True, "has_bias": False, "has_gate": True,
                   "has_post_expert_norm": False}


def check_expert_layout(i: int, block: nn.Module) -> None:
    """Raise UnsupportedArchitecture unless block.experts holds gate_up_proj (E, 2 d_ff, d) = [gate; up] and
    down_proj (E, d, d_ff), the layout expert_forward and merging read."""
    ex = block.experts
    for attr, want in EXPECTED_LAYOUT.items():
        if getattr(ex, attr, want) != want:
            raise UnsupportedArchitecture(
                f"layer {i}: {type(ex).__name__}.{attr} = {getattr(ex, attr)!r}, expected {want!r}; this code reads fused "
                f"experts as gate_up_proj (E, 2*d_ff, d) = [gate; up] and down_proj (E, d, d_ff)")
    gu, dn = getattr(ex, "gate_up_proj", None), getattr(ex, "down_proj", None)
    d = block.gate.weight.shape[1]
    if (gu is None or dn is None or gu.dim() != 3 or dn.dim() != 3 or gu.shape[0] != dn.shape[0]
            or gu.shape[2] != d or dn.shape[1] != d or gu.shape[1] != 2 * dn.shape[2]):
        raise UnsupportedArchitecture(
            f"layer {i}: experts of shape gate_up_proj {tuple(gu.shape) if gu is not None else None}, down_proj "
            f"{tuple(dn.shape) if dn is not None else None}; expected (E, 2*d_ff, {d}) and (E, {d}, d_ff)")


def moe_blocks(model: nn.Module) -> list[tuple[int, nn.Module]]:
    """(layer index, sparse MoE block) for every sparse layer (Qwen's dense `mlp_only_layers` are skipped)."""
    fam = family_of(model)
    blocks = [(i, layer.mlp) for i, layer in enumerate(fam.layers(model)) if is_sparse_block(layer.mlp)]
    if not blocks:
        raise UnsupportedArchitecture(f"{type(model).__name__} has no sparse MoE block (mlp.gate + mlp.experts)")
    for i, block in blocks:
        check_expert_layout(i, block)
    return blocks


def num_experts(block: nn.Module) -> int:
    """Number of distinct expert weight sets the block holds now (E before merging, k after)."""
    return block.experts.gate_up_proj.shape[0]


def router_outputs(block: nn.Module) -> int:
    return block.gate.weight.shape[0]


def top_k(block: nn.Module) -> int:
    return int(block.gate.top_k)
