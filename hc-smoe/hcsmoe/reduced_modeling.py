"""The reduced MoE layer (k merged experts behind an unchanged E-output router) and model classes that
transformers' own `from_pretrained` loads.

SELF-CONTAINED (torch + transformers only): `save_reduced` copies this file into a checkpoint as
`modeling_hcsmoe.py` when the reduced model cannot be written in the family's native config, i.e. when
merged experts keep all E router outputs and map them to k < E experts, or when k differs between layers.
Its config.json then carries

    "hcsmoe_layers": {"<layer>": {"router_outputs": E, "num_experts": k, "top_k": t}, ...}
    "auto_map": {"AutoModelForCausalLM": "modeling_hcsmoe.HCSMoE<Family>ForCausalLM"}

and `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` builds the family's class, gives
each listed layer its reduced shape (below), and loads the weights with transformers' own loader.

Router unchanged (paper, method section): all E router outputs stay; `expert_to_cluster` maps each to its
cluster's merged expert, so a token whose top-k picks two members of one cluster sends the SUM of their
routing weights to the merged expert:

    y(x) = sum_c ( sum_{i in topk(x), c(i) = c} w_i(x) ) * E'_c(x)
"""
from __future__ import annotations

import torch
import torch.nn as nn
from transformers import MixtralForCausalLM, OlmoeForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM


class MergedExperts(nn.Module):
    """k expert weight sets (fused layout of transformers 5.x) + a length-E router-output -> expert map."""

    def __init__(self, gate_up_proj: torch.Tensor, down_proj: torch.Tensor, act_fn: nn.Module,
                 expert_to_cluster: torch.Tensor):
        super().__init__()
        self.gate_up_proj = nn.Parameter(gate_up_proj)
        self.down_proj = nn.Parameter(down_proj)
        self.act_fn = act_fn
        # the map lives where the weights do (a CPU map indexed by GPU routing indices fails in forward)
        self.register_buffer("expert_to_cluster", expert_to_cluster.to(gate_up_proj.device, torch.long).clone())
        self.num_experts = gate_up_proj.shape[0]

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor) -> torch.Tensor:
        k = self.num_experts
        cluster = self.expert_to_cluster[top_k_index]                                   # (T, top_k)
        combine = torch.zeros(hidden_states.shape[0], k, dtype=top_k_weights.dtype, device=hidden_states.device)
        combine.scatter_add_(1, cluster, top_k_weights)                                 # summed weight per merged expert
        hit = torch.zeros_like(combine, dtype=torch.bool).scatter_(1, cluster, True)
        out = torch.zeros_like(hidden_states)
        for c in hit.any(0).nonzero().flatten().tolist():
            tok = hit[:, c].nonzero().flatten()
            gate, up = nn.functional.linear(hidden_states[tok], self.gate_up_proj[c]).chunk(2, dim=-1)
            y = nn.functional.linear(self.act_fn(gate) * up, self.down_proj[c])
            out.index_add_(0, tok, (y * combine[tok, c, None]).to(out.dtype))
        return out


def reshape_reduced_layers(model: nn.Module, layers: dict) -> None:
    """Give each listed sparse layer an E-output router and a k-expert MergedExperts (empty; weights load next)."""
    for key, spec in layers.items():
        block = model.model.layers[int(key)].mlp
        r, k = int(spec["router_outputs"]), int(spec["num_experts"])
        w, ex = block.gate.weight, block.experts
        block.gate.weight = nn.Parameter(torch.empty(r, w.shape[1], dtype=w.dtype, device=w.device))
        block.gate.num_experts = r
        block.gate.top_k = int(spec["top_k"])
        gu, dn = ex.gate_up_proj, ex.down_proj
        block.experts = MergedExperts(torch.empty((k,) + tuple(gu.shape[1:]), dtype=gu.dtype, device=gu.device),
                                      torch.empty((k,) + tuple(dn.shape[1:]), dtype=dn.dtype, device=dn.device),
                                      ex.act_fn, torch.zeros(r, dtype=torch.long, device=gu.device))


def _reduced_class(base: type) -> type:
    class Reduced(base):
        def __init__(self, config):
            super().__init__(config)
            reshape_reduced_layers(self, getattr(config, "hcsmoe_layers", None) or {})

    Reduced.__name__ = Reduced.__qualname__ = "HCSMoE" + base.__name__
    return Reduced


HCSMoEMixtralForCausalLM = _reduced_class(MixtralForCausalLM)
HCSMoEQwen2MoeForCausalLM = _reduced_class(Qwen2MoeForCausalLM)
HCSMoEQwen3MoeForCausalLM = _reduced_class(Qwen3MoeForCausalLM)
HCSMoEOlmoeForCausalLM = _reduced_class(OlmoeForCausalLM)

REDUCED_CLASSES = {"mixtral": HCSMoEMixtralForCausalLM, "qwen2_moe": HCSMoEQwen2MoeForCausalLM,
                   "qwen3_moe": HCSMoEQwen3MoeForCausalLM, "olmoe": HCSMoEOlmoeForCausalLM}
