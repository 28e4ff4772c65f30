"""Merging a group of experts into one; the result replaces `mlp.experts` as a MergedExperts (reduced_modeling.py).

Router unchanged (paper, method section): all E router outputs stay; `expert_to_cluster` maps each to its
cluster's merged expert, so a token whose top-k picks two members of one cluster sends the SUM of
their routing weights to the merged expert:

    y(x) = sum_c ( sum_{i in topk(x), c(i) = c} w_i(x) ) * E'_c(x)

Merged weights (paper, method section: frequency-weighted average, the default):

    W'_c = sum_{i in c} f_i W_i / sum_{i in c} f_i       for W in {gate, up, down}

with f_i expert i's top-k selection frequency on the calibration set. Also (the paper's ablations): plain
average (alpha_i = 1/|c|), fix-dom (permute each member's intermediate neurons to best match the
cluster's dominant = most frequent expert, then the frequency-weighted average) and zipit (ZipIt-style
zipping of correlated neurons across and within the members; `zip_cluster`). M-SMoE's own merge (Li et al.
2024, "Merge, then compress") is `weight-matching`: its permutation alignment (every expert's neurons aligned to
the layer's expert 0 by weight matching, `weight_matching_permutation`), then the frequency-weighted average.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from scipy.optimize import linear_sum_assignment

from .calibration import expert_activations
from .clustering import hierarchical_cluster
from .reduced_modeling import MergedExperts  # the reduced layer (self-contained: copied into checkpoints)

MERGES = ("freq", "average", "fix-dom", "zipit", "weight-matching")


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


def _neuron_vectors(experts, e: int) -> torch.Tensor:
    """(d_ff, 3d): each intermediate neuron j of expert e as [gate row j, up row j, down column j]."""
    f = experts.down_proj.shape[-1]
    gu = experts.gate_up_proj[e]
    return torch.cat([gu[:f], gu[f:], experts.down_proj[e].T], dim=1).double()


def _assignment(sim: torch.Tensor) -> torch.Tensor:
    """perm with perm[j] = the neuron of `other` matched to neuron j of the reference (Hungarian, maximising sim).

    Solved as the minimum-cost assignment of -sim: scipy's `maximize=True` does exactly this inside its C++ solver
    (it zero-fills a new buffer, copies the matrix into it and negates every entry, then runs the same minimiser),
    so the two give the same permutation, ties included (tests/test_merging.py); numpy's one negation pass skips the
    extra fill and copy of a d_ff x d_ff float64 matrix (2 x 1.6 GB passes at Mixtral's d_ff = 14336)."""
    row, col = linear_sum_assignment(-sim.detach().cpu().double().numpy())
    perm = np.empty(sim.shape[0], dtype=np.int64)
    perm[row] = col
    return torch.as_tensor(perm)


def weight_matching_permutation(experts, ref: int, other: int) -> torch.Tensor:
    """M-SMoE's expert permutation alignment (weight matching, Ainsworth et al. 2023, as in MC-SMoE's code with
    include_wo): the permutation p of `other`'s neurons maximising

        sum_j <gate_ref[j], gate_other[p j]> + <up_ref[j], up_other[p j]> + <down_ref[:, j], down_other[:, p j]>

    i.e. minimising ||W_ref - P W_other||^2 over all three projections (Hungarian algorithm)."""
    return _assignment(_neuron_vectors(experts, ref) @ _neuron_vectors(experts, other).T)


def _align_to(experts, dom: int, other: int, inputs: torch.Tensor | None) -> torch.Tensor:
    """fix-dom's permutation p of `other`'s intermediate neurons so that neuron p[j] of `other` matches neuron j of `dom`.

    Similarity: correlation of neuron activations on the calibration inputs (or, without inputs, cosine of
    the neurons' weight vectors [gate row, up row, down column]); matching by the Hungarian algorithm.
    """
    if inputs is not None and inputs.shape[0] > 1:
        x = inputs.to(experts.gate_up_proj.dtype)
        a = expert_activations(experts, dom, x).double()
        b = expert_activations(experts, other, x).double()
        a = (a - a.mean(0)) / (a.std(0) + 1e-8)
        b = (b - b.mean(0)) / (b.std(0) + 1e-8)
        return _assignment((a.T @ b) / x.shape[0])
    unit = lambda v: v / (v.norm(dim=1, keepdim=True) + 1e-12)
    return _assignment(unit(_neuron_vectors(experts, dom)) @ unit(_neuron_vectors(experts, other)).T)


def permute_expert(gate_up: torch.Tensor, down: torch.Tensor, perm: torch.Tensor):
    """The same expert function with intermediate neurons reordered: gate/up rows and down columns by perm."""
    f = down.shape[-1]
    return torch.cat([gate_up[:f][perm], gate_up[f:][perm]]), down[:, perm]


@torch.no_grad()
def zip_cluster(experts, members, alpha: np.ndarray, inputs: torch.Tensor, max_tokens: int = 2048):
    """ZipIt-style merge of one cluster into one expert (Stoica et al. 2023; the paper's ZipIt ablation).

    Pool the |c| x d_ff intermediate neurons act(gate x) * up x of all members, group them into d_ff groups by
    the correlation of their activations on the calibration inputs -- across AND within experts, ZipIt's
    "zip" -- and give each group one neuron of the merged expert:

        gate/up row of g  = sum_{(i,j) in g} alpha_i w_ij / sum_{(i,j) in g} alpha_i      (ZipIt's merge matrix)
        down column of g  = sum_{(i,j) in g} alpha_i down_i[:, j]                          (unmerge, then the
                                                                                            alpha-weighted expert sum)
    Grouping, ZipIt's greedy matching: repeatedly zip the two most correlated features, a zipped feature's
    correlation to any other being the MINIMUM over its members (ZipIt's update), until d_ff remain. That is
    complete-linkage agglomeration, run here (clustering.py) on the standardised activations z, whose squared
    Euclidean distance 2N (1 - correlation) is monotone in the correlation. ZipIt's alpha/beta budget on
    same-model merges is not used. A neuron alone in its group keeps its row and its alpha-scaled column.
    """
    if inputs is None or inputs.shape[0] < 2:
        raise ValueError("zipit merging needs calibration inputs (LayerStats.inputs, max_stored_tokens >= 2)")
    f = experts.down_proj.shape[-1]
    x = inputs[:max_tokens].to(experts.gate_up_proj.device, experts.gate_up_proj.dtype)
    acts = torch.cat([expert_activations(experts, int(i), x) for i in members], dim=1).double()   # (N, |c| f)
    z = (acts - acts.mean(0)) / (acts.std(0) + 1e-8)
    groups = hierarchical_cluster(z.T.cpu().numpy(), f, "complete")                                 # (|c| f,)
    rows = torch.cat([torch.cat([experts.gate_up_proj[i][:f], experts.gate_up_proj[i][f:]], 1).float()
                      for i in members])                                                            # (|c| f, 2d): [gate | up]
    cols = torch.cat([experts.down_proj[i].float() for i in members], 1)                           # (d, |c| f)
    a = torch.as_tensor(np.repeat(np.asarray(alpha)[members], f), dtype=torch.float32, device=rows.device)
    m = torch.zeros(f, len(a), device=rows.device)
    m[torch.as_tensor(groups, device=rows.device), torch.arange(len(a), device=rows.device)] = a  # alpha-weighted membership
    merged_rows = (m @ rows) / m.sum(1, keepdim=True).clamp_min(1e-12)
    d = experts.down_proj.shape[1]
    return torch.cat([merged_rows[:, :d], merged_rows[:, d:]]), cols @ m.T


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
        if merge == "zipit":
            new_gu[c], new_dn[c] = zip_cluster(experts, members, alpha, inputs)
            continue
        for i in members:
            w_gu, w_dn = gu[i].float(), dn[i].float()
            if merge == "fix-dom" and i != dom:
                w_gu, w_dn = permute_expert(w_gu, w_dn, _align_to(experts, int(dom), int(i), inputs))
            if merge == "weight-matching" and i != 0 and len(members) > 1:     # M-SMoE: align to the layer's expert 0
                w_gu, w_dn = permute_expert(w_gu, w_dn, weight_matching_permutation(experts, 0, int(i)))
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
