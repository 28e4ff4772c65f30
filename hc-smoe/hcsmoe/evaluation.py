"""Evaluation on local data: perplexity and log-likelihood multiple-choice scoring (lm-eval style).

acc      = mean[ argmax_j sum_t log p(choice_j tokens | context) == label ]
acc_norm = the same with each choice's log-likelihood divided by its length in bytes (lm-eval's acc_norm)

`lm_eval_zero_shot` runs the paper's eight tasks with lm-eval's HFLM on an in-memory model; it needs
the [full] extra, a tokenizer, internet (task data) and in practice a GPU.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .data import encode

PAPER_TASKS = ("arc_challenge", "arc_easy", "boolq", "hellaswag", "mmlu", "openbookqa", "rte", "winogrande")


@torch.no_grad()
def perplexity(model, blocks: torch.Tensor, batch_size: int = 16) -> float:
    model.eval()
    device = next(model.parameters()).device
    nll, n = 0.0, 0
    for s in range(0, len(blocks), batch_size):
        ids = blocks[s:s + batch_size].to(device)
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum").item()
        n += ids[:, 1:].numel()
    return math.exp(nll / n)


@torch.no_grad()
def choice_loglik(model, context: str, choices: list[str], encode_fn=encode) -> list[float]:
    device = next(model.parameters()).device
    ctx = np.asarray(encode_fn(context), dtype=np.int64)
    seqs = [np.concatenate([ctx, np.asarray(encode_fn(c), dtype=np.int64)]) for c in choices]
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    for j, s in enumerate(seqs):
        ids[j, : len(s)] = torch.as_tensor(s)
    logp = model(input_ids=ids.to(device), use_cache=False).logits.float().log_softmax(-1).cpu()
    out = []
    for j, s in enumerate(seqs):
        t = torch.arange(len(ctx), len(s))
        out.append(logp[j, t - 1, ids[j, t]].sum().item())
    return out


def multiple_choice_accuracy(model, items: list[dict], encode_fn=encode) -> dict:
    model.eval()
    acc, acc_norm = [], []
    for it in items:
        ll = choice_loglik(model, it["context"], it["choices"], encode_fn)
        acc.append(int(np.argmax(ll)) == it["label"])
        norm = [l / len(c.encode("utf-8")) for l, c in zip(ll, it["choices"])]
        acc_norm.append(int(np.argmax(norm)) == it["label"])
    return {"acc": float(np.mean(acc)), "acc_norm": float(np.mean(acc_norm))}


def lm_eval_zero_shot(model, tokenizer, tasks=PAPER_TASKS, batch_size: int = 16) -> dict:  # pragma: no cover
    """Zero-shot lm-eval on an in-memory model (paper Table 2/3 metric: `acc`). Needs `pip install .[full]`."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    res = simple_evaluate(model=lm, tasks=list(tasks), num_fewshot=0)
    return {t: res["results"][t].get("acc,none") for t in tasks}
