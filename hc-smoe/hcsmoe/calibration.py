"""Calibration: run the ORIGINAL model on calibration text and record, for each sparse MoE layer,
everything the grouping and merging methods need (paper, method section: calibration and expert-output features).

Layer-by-layer: the hidden states entering decoder layer 0 are captured once, then each decoder
layer is moved to `device`, run on all calibration batches, and moved back. Only one layer is ever
on the accelerator, so a model that fits in CPU RAM but not on the GPU can be calibrated (Mixtral-
8x7B on one GPU). The hidden states passed on are the original layer's outputs: every layer's
features come from the unmerged model, as in the paper.

Per layer (E experts, N calibration tokens, d hidden size):
  expert_output_mean  (E, d)  HC-SMoE's feature: every expert applied to EVERY token, averaged:
                              o_i = (1/N) sum_t E_i(x_t)  -- independent of routing decisions
  freq                (E,)    top-k selection frequency with the router's real top_k: f_i = #{t: i in topk(t)} / N
  prob_sum            (E,)    summed router probabilities (S-prune)
  router_logits       (N, E)  per-token router logits (M-SMoE and the router-logits feature)
  inputs              (n, d)  the first n <= max_stored_tokens MoE inputs (O-prune, fix-dom)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .families import family_of, moe_blocks, num_experts, top_k
from .offload import execution_device, module_tensor


@dataclass
class LayerStats:
    layer: int
    top_k: int
    renormalize: bool
    n_tokens: int
    expert_output_mean: torch.Tensor
    freq: torch.Tensor
    prob_sum: torch.Tensor
    router_logits: torch.Tensor
    inputs: torch.Tensor

    @property
    def num_experts(self) -> int:
        return self.freq.numel()


class _StopForward(Exception):
    pass


def _to(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(_to(o, device) for o in obj)
    if isinstance(obj, list):
        return [_to(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def expert_forward(experts, e: int, x: torch.Tensor) -> torch.Tensor:
    """Output of expert e of a fused-expert module on tokens x (n, d): down(act(gate x) * up x)."""
    gate, up = F.linear(x, experts.gate_up_proj[e]).chunk(2, dim=-1)
    return F.linear(experts.act_fn(gate) * up, experts.down_proj[e])


def expert_activations(experts, e: int, x: torch.Tensor) -> torch.Tensor:
    """Intermediate neurons act(gate x) * up x (n, d_ff) of expert e (for neuron alignment in fix-dom)."""
    gate, up = F.linear(x, experts.gate_up_proj[e]).chunk(2, dim=-1)
    return experts.act_fn(gate) * up


@dataclass
class ExpertWeights:
    """Fused expert weights in the layout expert_forward reads (a block's experts, loaded if accelerate offloaded them)."""
    gate_up_proj: torch.Tensor
    down_proj: torch.Tensor
    act_fn: object


class _Accumulator:
    def __init__(self, block, renormalize: bool, max_stored_tokens: int, chunk: int = 4096):
        self.block, self.renormalize, self.max_stored, self.chunk = block, renormalize, max_stored_tokens, chunk
        # the block's weights, read from accelerate's offload store when they are on `meta` (one layer at a time)
        self.gate_weight = module_tensor(block, "gate.weight")
        self.experts = ExpertWeights(module_tensor(block, "experts.gate_up_proj"),
                                     module_tensor(block, "experts.down_proj"), block.experts.act_fn)
        self.E, self.k = num_experts(block), top_k(block)
        self.n = 0
        self.out_sum = None
        self.counts = torch.zeros(self.E, dtype=torch.float64)
        self.prob_sum = torch.zeros(self.E, dtype=torch.float64)
        self.logits, self.inputs, self.stored = [], [], 0

    @torch.no_grad()
    def __call__(self, module, args, kwargs):
        hs = args[0] if args else kwargs["hidden_states"]
        x = hs.reshape(-1, hs.shape[-1])
        logits = F.linear(x, self.gate_weight).float()                      # router logits (N, E)
        probs = logits.softmax(-1)
        idx = probs.topk(self.k, dim=-1).indices
        self.counts += torch.bincount(idx.flatten().cpu(), minlength=self.E).double()
        self.prob_sum += probs.sum(0).double().cpu()
        self.logits.append(logits.cpu())
        if self.out_sum is None:
            self.out_sum = torch.zeros(self.E, x.shape[-1], dtype=torch.float64)
        for s in range(0, x.shape[0], self.chunk):                             # every expert on every token
            xs = x[s:s + self.chunk]
            for e in range(self.E):
                self.out_sum[e] += expert_forward(self.experts, e, xs).double().sum(0).cpu()
        if self.stored < self.max_stored:
            take = x[: self.max_stored - self.stored].float().cpu()
            self.inputs.append(take)
            self.stored += take.shape[0]
        self.n += x.shape[0]

    def finish(self, layer: int) -> LayerStats:
        return LayerStats(
            layer=layer, top_k=self.k, renormalize=self.renormalize, n_tokens=self.n,
            expert_output_mean=(self.out_sum / self.n).float(),
            freq=(self.counts / self.n).float(),
            prob_sum=self.prob_sum.float(),
            router_logits=torch.cat(self.logits),
            inputs=torch.cat(self.inputs) if self.inputs else torch.zeros(0, self.out_sum.shape[1]),
        )


def pre_layer_modules(model, layers: nn.ModuleList) -> list[nn.Module]:
    """The modules next to the decoder layers in the base model (embeddings, rotary embedding, final norm):
    what runs before decoder layer 0."""
    for m in model.modules():
        children = list(m.children())
        if any(c is layers for c in children):
            return [c for c in children if c is not layers]
    raise RuntimeError("the decoder layers are not a child of any module of the model")


@torch.no_grad()
def collect_stats(model, batches: list[torch.Tensor], device: str | torch.device | None = None,
                  max_stored_tokens: int = 4096, progress: bool = True) -> dict[int, LayerStats]:
    """Layer-by-layer calibration of every sparse MoE layer on `batches` (a list of (B, S) token-id tensors).

    device: where each layer runs (it is moved there and back); None = where the model is;
    "auto" = leave every layer where it is and run it on its execution device: a model placed by accelerate's
    device_map (spread over GPUs, or with layers offloaded to CPU RAM or disk; see offload.py).
    """
    if len(batches) == 0 or sum(b.numel() for b in batches) == 0:
        raise ValueError("empty calibration set: pass at least one non-empty batch of token ids")
    fam = family_of(model)
    layers = fam.layers(model)
    sparse = dict(moe_blocks(model))
    model_device = execution_device(model.get_input_embeddings())
    auto = device == "auto"
    device = None if auto else torch.device(device) if device is not None else model_device
    was_training = model.training
    model.eval()

    # 1. capture what enters decoder layer 0 (hidden states + mask / rotary embeddings kwargs), computed on the device
    #    the layers will run on: the rotary cos/sin tables are rounded to the model's dtype, and a table computed on
    #    the CPU can differ from one computed on the GPU in a few bf16 entries (different cos/sin routines), which
    #    would make `--device cuda` and `--device auto` calibrate on different hidden states
    captured = []

    def grab(module, args, kwargs):
        captured.append((args, kwargs))
        raise _StopForward

    first_device = model_device if auto else device
    moved = [] if first_device == model_device else pre_layer_modules(model, layers)
    h = layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for m in moved:
            m.to(first_device)
        for ids in batches:
            try:
                model(input_ids=ids.to(first_device), use_cache=False)
            except _StopForward:
                pass
    finally:
        h.remove()
        for m in moved:
            m.to(model_device)
    hidden = [_to(a[0] if a else kw.pop("hidden_states"), "cpu") for a, kw in captured]
    kwargs = [{k: v for k, v in kw.items()} for _, kw in captured]
    for a, kw in captured:
        if len(a) > 1:
            raise RuntimeError("decoder layer called with extra positional arguments; not supported")

    # 2. one layer at a time: run it, record the MoE input statistics, pass its output on
    stats: dict[int, LayerStats] = {}
    it = tqdm(range(len(layers)), desc="calibration", disable=not progress, leave=False)
    for i in it:
        layer = layers[i]
        dev = execution_device(layer) if auto else device
        if not auto:
            layer.to(dev)
        acc = None
        if i in sparse:
            acc = _Accumulator(sparse[i], fam.renormalize(sparse[i].gate), max_stored_tokens)
            hook = sparse[i].register_forward_pre_hook(acc, with_kwargs=True)
        try:
            for b in range(len(hidden)):
                out = layer(hidden[b].to(dev), **_to(kwargs[b], dev))
                hidden[b] = (out[0] if isinstance(out, tuple) else out).cpu()
        finally:
            if acc is not None:
                hook.remove()
        if acc is not None:
            stats[i] = acc.finish(i)
        if not auto:
            layer.to(model_device)
    model.train(was_training)
    return stats
