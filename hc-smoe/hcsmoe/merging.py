"""Merging a group of experts into one, and the reduced expert module that replaces `mlp.experts`.

Router unchanged (paper, method section): all E router outputs stay; `expert_to_cluster` maps each to its
cluster's merged expert, so a token whose top-k picks two members of one cluster sends the SUM of
their routing weights to the merged expert:

    y(x) = sum_c ( sum_{i in topk(x), c(i) = c} w_i(x) ) * E'_c(x)

Merged weights (paper, method section: frequency-weighted average, the default):

    W'_c = sum_{i in c} f_i W_i / sum_{i in c} f_i       for W in {gate, up, down}

with f_i expert i's top-k selection frequency on the calibration set. Also: plain average
(alpha_i = 1/|c|) and fix-dom (permute each member's intermediate neurons to best match the
cluster's dominant = most frequent expert, then the frequency-weighted average).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from scipy.optimize import linear_sum_assignment

from .calibration import expert_activations

MERGES = ("freq", "average", "fix-dom")


class MergedExperts(nn.Module):
    """k expert weight sets (fused layout of transformers 5.x) + a length-E router-output -> expert map."""

    def __init__(self, gate_up_proj: torch.Tensor, down_proj: torch.Tensor, act_fn: nn.Module,
                 expert_to_cluster: torch.Tensor):
        super().__init__()
        self.gate_up_proj = nn.Parameter(gate_up_proj)
        self.down_proj = nn.Parameter(down_proj)
        self.act_fn = act_fn
        self.register_buffer("expert_to_cluster", expert_to_cluster.long().clone())
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


def cluster_weights(labels: np.ndarray, freq: np.ndarray, merge: str) -> np.ndarray:
    """alpha_i for each expert: f_i / sum_{j in c(i)} f_j (freq) or 1/|c(i)| (average); sums to 1 per cluster."""
    labels = np.asarray(labels)
    freq = np.asarray(freq, dtype=np.float64)
    alpha = np.zeros(len(labels))
    for c in np.unique(labels):
        m = labels == c
        if merge == "average" or freq[m].sum() <= 0:        # a never-selected cluster falls back to uniform
            alpha[m] = 1.0 / m.sum()
        else:
            alpha[m] = freq[m] / freq[m].sum()
    return alpha


def _align_to(experts, dom: int, other: int, inputs: torch.Tensor | None) -> torch.Tensor:
    """Permutation p of `other`'s intermediate neurons so that neuron p[j] of `other` matches neuron j of `dom`.

    Similarity: correlation of neuron activations on the calibration inputs (or, without inputs, cosine of
    the neurons' weight vectors [gate row, up row, down column]); matching by the Hungarian algorithm.
    """
    f = experts.down_proj.shape[-1]
    if inputs is not None and inputs.shape[0] > 1:
        x = inputs.to(experts.gate_up_proj.dtype)
        a = expert_activations(experts, dom, x).double()
        b = expert_activations(experts, other, x).double()
        a = (a - a.mean(0)) / (a.std(0) + 1e-8)
        b = (b - b.mean(0)) / (b.std(0) + 1e-8)
        sim = (a.T @ b) / x.shape[0]
    else:
        def neurons(e):
            gu = experts.gate_up_proj[e]
            v = torch.cat([gu[:f], gu[f:], experts.down_proj[e].T], dim=1).double()
            return v / (v.norm(dim=1, keepdim=True) + 1e-12)
        sim = neurons(dom) @ neurons(other).T
    row, col = linear_sum_assignment(-sim.cpu().numpy())
    perm = np.empty(f, dtype=np.int64)
    perm[row] = col
    return torch.as_tensor(perm)


def permute_expert(gate_up: torch.Tensor, down: torch.Tensor, perm: torch.Tensor):
    """The same expert function with intermediate neurons reordered: gate/up rows and down columns by perm."""
    f = down.shape[-1]
    return torch.cat([gate_up[:f][perm], gate_up[f:][perm]]), down[:, perm]


@torch.no_grad()
def merge_experts(experts, labels: np.ndarray, freq: np.ndarray, merge: str = "freq",
                  inputs: torch.Tensor | None = None) -> MergedExperts:
    """A MergedExperts holding one merged expert per cluster of `labels` (E,) with values 0..k-1."""
    if merge not in MERGES:
        raise ValueError(f"unknown merge {merge!r}; choose one of {MERGES}")
    labels = np.asarray(labels)
    k = int(labels.max()) + 1
    alpha = cluster_weights(labels, freq, "average" if merge == "average" else "freq")
    gu, dn = experts.gate_up_proj.data, experts.down_proj.data
    new_gu = torch.zeros((k,) + gu.shape[1:], dtype=torch.float32, device=gu.device)
    new_dn = torch.zeros((k,) + dn.shape[1:], dtype=torch.float32, device=dn.device)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        dom = members[np.argmax(np.asarray(freq)[members])]
        for i in members:
            w_gu, w_dn = gu[i].float(), dn[i].float()
            if merge == "fix-dom" and i != dom:
                w_gu, w_dn = permute_expert(w_gu, w_dn, _align_to(experts, int(dom), int(i), inputs))
            new_gu[c] += alpha[i] * w_gu
            new_dn[c] += alpha[i] * w_dn
    return MergedExperts(new_gu.to(gu.dtype), new_dn.to(dn.dtype), experts.act_fn, torch.as_tensor(labels))


@torch.no_grad()
def prune_block(block, keep) -> None:
    """Keep only experts `keep` and their router rows (NAEE-style pruning): top-k is taken among the kept."""
    keep = torch.as_tensor(sorted(int(i) for i in keep), device=block.gate.weight.device)
    ex = block.experts
    block.gate.weight = nn.Parameter(block.gate.weight.data[keep].clone())
    block.gate.num_experts = len(keep)
    block.gate.top_k = min(int(block.gate.top_k), len(keep))
    block.experts = MergedExperts(ex.gate_up_proj.data[keep].clone(), ex.down_proj.data[keep].clone(), ex.act_fn,
                                  torch.arange(len(keep)))
