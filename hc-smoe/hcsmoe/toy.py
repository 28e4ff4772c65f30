"""Tiny MoE language models built from transformers' own config classes, and sparse upcycling.

No pretrained MoE can be downloaded here, so the default run builds one the way Mixtral and
Qwen1.5-MoE were built (Komatsuzaki et al., sparse upcycling): train a dense model (the same
class with ONE expert and top-1 routing, which is exactly a dense FFN), copy its FFN into every
expert with small noise, then continue training as an MoE. Merging by weight averaging relies on
experts sharing this origin.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm
from transformers import MixtralConfig, MixtralForCausalLM, OlmoeConfig, OlmoeForCausalLM
from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM

from .families import moe_blocks

TINY_FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")


def tiny_config(family: str = "mixtral", vocab_size: int = 256, hidden: int = 64, ffn: int = 128, layers: int = 2,
                heads: int = 4, kv_heads: int = 2, experts: int = 8, top_k: int = 2, max_len: int = 512):
    common = dict(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=kv_heads, max_position_embeddings=max_len, num_experts_per_tok=top_k,
                  tie_word_embeddings=False, router_aux_loss_coef=0.01)
    if family == "mixtral":
        return MixtralConfig(intermediate_size=ffn, num_local_experts=experts, **common), MixtralForCausalLM
    if family == "qwen2_moe":
        return Qwen2MoeConfig(intermediate_size=ffn, moe_intermediate_size=ffn, shared_expert_intermediate_size=ffn,
                              num_experts=experts, norm_topk_prob=False, decoder_sparse_step=1, **common), Qwen2MoeForCausalLM
    if family == "qwen3_moe":
        return Qwen3MoeConfig(intermediate_size=ffn, moe_intermediate_size=ffn, num_experts=experts, head_dim=hidden // heads,
                              norm_topk_prob=True, decoder_sparse_step=1, **common), Qwen3MoeForCausalLM
    if family == "olmoe":
        return OlmoeConfig(intermediate_size=ffn, num_experts=experts, norm_topk_prob=False, **common), OlmoeForCausalLM
    raise ValueError(f"unknown tiny family {family!r}; choose one of {TINY_FAMILIES}")


def _set_experts(config, e: int, top_k: int):
    config = copy.deepcopy(config)
    if hasattr(config, "num_local_experts"):
        config.num_local_experts = e
    if hasattr(config, "num_experts"):
        config.num_experts = e
    config.num_experts_per_tok = top_k
    return config


def build_tiny(family: str = "mixtral", seed: int = 0, **kw) -> nn.Module:
    config, cls = tiny_config(family, **kw)
    torch.manual_seed(seed)
    return cls(config).eval()


def build_dense(family: str = "mixtral", seed: int = 0, **kw) -> nn.Module:
    """The same class with one expert and top-1 routing: softmax over one logit is 1, so it is a dense FFN."""
    config, cls = tiny_config(family, **kw)
    torch.manual_seed(seed)
    return cls(_set_experts(config, 1, 1))


@torch.no_grad()
def sparse_upcycle(dense: nn.Module, experts: int, top_k: int, noise: float = 0.01, seed: int = 0) -> nn.Module:
    """Copy the dense FFN into every expert (+ relative Gaussian noise) and draw a fresh small router."""
    config = _set_experts(dense.config, experts, top_k)
    torch.manual_seed(seed)
    moe = type(dense)(config)
    sd = {k: v for k, v in dense.state_dict().items()}
    for name, p in moe.state_dict().items():
        if name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
            src = sd[name][0]
            p.copy_(src.expand_as(p) + noise * src.std() * torch.randn_like(p))
        elif name.endswith("gate.weight") and sd[name].shape != p.shape:
            p.normal_(0.0, 0.02)
        else:
            p.copy_(sd[name])
    return moe


def train_lm(model: nn.Module, ids: np.ndarray, steps: int, batch_size: int, seq_len: int, lr: float, seed: int,
             desc: str = "train", log: list | None = None, progress: bool = True) -> list[float]:
    """AdamW next-token training (+ the model's own load-balancing loss when it has several experts)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    moe = any(b.experts.gate_up_proj.shape[0] > 1 for _, b in moe_blocks(model))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / max(steps, 1)))
    model.train()
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        starts = rng.integers(0, len(ids) - seq_len - 1, batch_size)
        x = torch.as_tensor(np.stack([ids[s:s + seq_len] for s in starts]))
        out = model(input_ids=x, labels=x, output_router_logits=moe, use_cache=False)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(out.loss.item())
        if log is not None:
            log.append({"stage": desc, "step": step, "loss": out.loss.item()})
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    model.eval()
    return losses
