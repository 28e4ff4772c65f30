"""Reducing every sparse MoE layer from E to k experts: HC-SMoE and the paper's baselines.

    hc-smoe   hierarchical clustering (or K-means) of per-expert features, then merge   (the paper)
    m-smoe    M-SMoE's merge step (Li et al. 2024, "Merge, then compress"; its low-rank + sparse compression
              step, MC-SMoE, is not implemented): the most frequent experts are dominant; how many per layer is
              chosen globally over all layers (`global_layer_budget`); each other expert joins the dominant
              expert whose router-logit column is most similar (cosine); neurons aligned by weight matching,
              then the frequency-weighted merge                                         (merging.py)
    random    a uniformly random partition into k non-empty groups, then merge          (control)
    o-prune   keep the subset S of k experts minimising ||MoE(X) - MoE_S(X)||^2 on calibration inputs;
              all C(E,k) subsets when <= max_combos, else max_combos random ones        (NAEE, Lu et al. 2024)
    f-prune   keep the k most frequently selected experts
    s-prune   keep the k experts with the highest summed router probability
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .calibration import LayerStats, expert_forward
from .clustering import LINKAGES, hierarchical_cluster, kmeans, relabel
from .families import family_of, moe_blocks, num_experts
from .merging import MERGES, merge_experts, prune_block
from .offload import onload

METHODS = ("hc-smoe", "m-smoe", "random", "o-prune", "f-prune", "s-prune")
FEATURES = ("expert-output", "router-logits", "weight")
CLUSTERINGS = ("hierarchical", "kmeans")
LAYER_BUDGETS = ("uniform", "global")       # k experts in every layer | M-SMoE's adaptive per-layer counts
METHOD_DEFAULTS = {"m-smoe": {"merge": "weight-matching", "layer_budget": "global"}}   # as M-SMoE does it


@dataclass
class ReduceConfig:
    method: str = "hc-smoe"
    num_experts: int = 4            # k experts kept per layer
    clustering: str = "hierarchical"
    linkage: str = "average"
    feature: str = "expert-output"
    merge: str = ""                 # "" = the method's own: weight-matching for m-smoe, freq for the others
    layer_budget: str = ""          # "" = the method's own: global for m-smoe, uniform (k per layer) for the others
    seed: int = 0
    max_combos: int = 100_000       # O-prune search budget (paper: 1e5 sampled for Qwen)
    device: str = "cpu"             # where O-prune evaluates its candidate subsets (cuda for real models)

    def __post_init__(self):
        defaults = METHOD_DEFAULTS.get(self.method, {})
        self.merge = self.merge or defaults.get("merge", "freq")
        self.layer_budget = self.layer_budget or defaults.get("layer_budget", "uniform")

    def validate(self):
        for name, val, allowed in [("method", self.method, METHODS), ("clustering", self.clustering, CLUSTERINGS),
                                   ("linkage", self.linkage, LINKAGES), ("feature", self.feature, FEATURES),
                                   ("merge", self.merge, MERGES), ("layer_budget", self.layer_budget, LAYER_BUDGETS)]:
            if val not in allowed:
                raise ValueError(f"unknown {name} {val!r}; choose one of {allowed}")


def expert_features(stats: LayerStats, experts, feature: str) -> np.ndarray:
    if feature == "expert-output":
        return stats.expert_output_mean.double().numpy()          # (E, d): mean output over all tokens
    if feature == "router-logits":
        return stats.router_logits.T.double().numpy()             # (E, N): each expert's logit on each token
    if feature == "weight":
        e = experts.gate_up_proj.shape[0]
        return torch.cat([experts.gate_up_proj.reshape(e, -1), experts.down_proj.reshape(e, -1)], 1).detach().double().cpu().numpy()
    raise ValueError(f"unknown feature {feature!r}; choose one of {FEATURES}")


def m_smoe_groups(stats: LayerStats, k: int) -> np.ndarray:
    freq = stats.freq.numpy()
    centres = np.argsort(-freq, kind="stable")[:k]
    cols = stats.router_logits.double()
    cols = cols / (cols.norm(dim=0, keepdim=True) + 1e-12)
    sim = (cols.T @ cols).numpy()                                 # cosine similarity of router-logit columns
    labels = np.empty(len(freq), dtype=np.int64)
    for i in range(len(freq)):
        labels[i] = centres[np.argmax(sim[i, centres])] if i not in centres else i
    return relabel(labels)


def global_layer_budget(freqs: dict[int, np.ndarray], k: int) -> dict[int, int]:
    """M-SMoE's adaptive layer-wise merging ratio (MC-SMoE's "globally group"): the k x L dominant experts of all L
    sparse layers are chosen at once by their per-layer normalised frequency f_i / sum_j f_j, each layer's most used
    expert always among them (every layer keeps >= 1); a layer keeps as many experts as it has dominant ones.
    Layers with evenly used experts keep more, layers dominated by a few experts keep fewer; the total is k x L.
    (MC-SMoE thresholds the sorted frequencies, which can give fewer than k x L on ties; here ties are broken by
    layer then expert order so that the total is exact.)"""
    entries = []
    for layer, f in freqs.items():
        f = np.asarray(f, dtype=np.float64)
        p = f / f.sum() if f.sum() > 0 else np.full(len(f), 1.0 / len(f))
        top = int(np.argmax(p))
        entries += [(np.inf if i == top else float(v), layer, i) for i, v in enumerate(p)]
    entries.sort(key=lambda t: -t[0])                                 # stable sort: ties keep layer, expert order
    budget = {layer: 0 for layer in freqs}
    for _, layer, _ in entries[: k * len(freqs)]:
        budget[layer] += 1
    return budget


def random_groups(e: int, k: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.concatenate([np.arange(k), rng.integers(0, k, e - k)])   # every group non-empty
    return relabel(rng.permutation(labels))


class _ExpertView:
    """One expert's weights (possibly copied to another device) in the fused layout expert_forward expects."""

    def __init__(self, gate_up, down, act_fn):
        self.gate_up_proj, self.down_proj, self.act_fn = gate_up[None], down[None], act_fn


@torch.no_grad()
def moe_output(logits: torch.Tensor, expert_out: torch.Tensor, subset, top_k: int, renormalize: bool) -> torch.Tensor:
    """The MoE block output on tokens with router logits (n, E) when only experts `subset` exist:
    softmax over the kept experts' logits, top-k among them, optional renormalisation."""
    sub = torch.as_tensor(list(subset), device=logits.device)
    probs = logits[:, sub].softmax(-1)
    w, idx = probs.topk(min(top_k, len(sub)), dim=-1)
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    y = expert_out[sub][idx, torch.arange(logits.shape[0], device=logits.device)[:, None]]    # (n, top_k, d)
    return (w[..., None] * y).sum(1)


@torch.no_grad()
def o_prune_subset(stats: LayerStats, experts, k: int, max_combos: int, rng: np.random.Generator,
                   device: str | torch.device = "cpu"):
    x = stats.inputs.to(device, experts.gate_up_proj.dtype)
    if x.shape[0] == 0:
        raise ValueError("O-prune needs stored calibration inputs (max_stored_tokens > 0)")
    e = stats.num_experts
    one = lambda i: _ExpertView(experts.gate_up_proj[i].to(device), experts.down_proj[i].to(device), experts.act_fn)
    out = torch.stack([expert_forward(one(i), 0, x).float() for i in range(e)])           # (E, n, d)
    logits = stats.router_logits[: x.shape[0]].to(device)
    full = moe_output(logits, out, range(e), stats.top_k, stats.renormalize)
    if math.comb(e, k) <= max_combos:
        candidates = itertools.combinations(range(e), k)
    else:
        candidates = (tuple(sorted(rng.choice(e, k, replace=False))) for _ in range(max_combos))
    best, best_err = None, float("inf")
    for s in candidates:
        err = (moe_output(logits, out, s, stats.top_k, stats.renormalize) - full).pow(2).sum().item()
        if err < best_err:
            best, best_err = s, err
    return list(best), best_err


def check_num_experts(model, k) -> None:
    """k experts per layer must satisfy 1 <= k <= E in every sparse layer (checked before any calibration work)."""
    for i, block in moe_blocks(model):
        e = num_experts(block)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1 or k > e:
            raise ValueError(f"num_experts k={k!r} must satisfy 1 <= k <= E={e} (layer {i})")


@torch.no_grad()
def reduce_model(model, stats: dict[int, LayerStats], cfg: ReduceConfig) -> dict:
    """Reduce every sparse MoE layer of `model` IN PLACE from E to cfg.num_experts experts. Returns per-layer groups.

    Layer by layer: a layer that accelerate offloaded (weights on `meta`) is loaded for good just before it is
    reduced (offload.onload), so only the reduced model, never the original, has to fit in memory."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    info = {}
    layers = family_of(model).layers(model)
    blocks = moe_blocks(model)
    check_num_experts(model, cfg.num_experts)
    for i, block in blocks:
        if i not in stats:
            raise ValueError(f"no calibration statistics for sparse layer {i}")
    budget = ({i: cfg.num_experts for i, _ in blocks} if cfg.layer_budget == "uniform"
              else global_layer_budget({i: stats[i].freq.numpy() for i, _ in blocks}, cfg.num_experts))
    for i, block in blocks:
        onload(layers[i])
        e, k, st = num_experts(block), budget[i], stats[i]
        freq = st.freq.numpy()
        if cfg.method in ("o-prune", "f-prune", "s-prune"):
            if cfg.method == "f-prune":
                keep = np.argsort(-freq, kind="stable")[:k]
            elif cfg.method == "s-prune":
                keep = np.argsort(-st.prob_sum.numpy(), kind="stable")[:k]
            else:
                keep, _ = o_prune_subset(st, block.experts, k, cfg.max_combos, rng, cfg.device)
            prune_block(block, keep)
            info[i] = {"kept": sorted(int(j) for j in keep)}
            continue
        if cfg.method == "hc-smoe":
            feats = expert_features(st, block.experts, cfg.feature)
            labels = (hierarchical_cluster(feats, k, cfg.linkage) if cfg.clustering == "hierarchical"
                      else kmeans(feats, k, seed=int(rng.integers(2**31))))
        elif cfg.method == "m-smoe":
            labels = m_smoe_groups(st, k)
        else:
            labels = random_groups(e, k, rng)
        block.experts = merge_experts(block.experts, labels, freq, cfg.merge, st.inputs)   # (weight-matching: M-SMoE's)
        info[i] = {"groups": [[int(j) for j in np.flatnonzero(labels == c)] for c in range(k)]}
    return info
